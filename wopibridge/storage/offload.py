"""Blocking calls off the event loop, for less than a thread hop usually costs.

A ``stat`` of a local file takes microseconds, but the folder a fleet shares is an NFS or
CephFS mount, where one stat can take seconds: made on the event loop, it stalls every request
of the instance, ``/health`` included. ``asyncio.to_thread`` moves it off the loop for about
35 us of CPU a call (a ``concurrent.futures`` future chained to an asyncio one, a context copy,
a wake-up of the loop per call), which is a third of what CheckFileInfo costs in all.

:class:`Offload` does the same job for about 5 us: a few worker threads take calls from a
queue, and their results go back to the loop in batches, with one wake-up for every result
that finished while the loop was busy. Under load, when calls come in faster than one at a
time, most results share a wake-up.

One thread serves the calls while they run quickly: every further thread would wake for a
call and contend with the loop for the GIL, which costs more CPU than the stat it runs (four
threads made CheckFileInfo about 20 us dearer than one). A call that has run for
:data:`STUCK_AFTER` while others wait behind it (a hung or slow mount) gets them a thread of
their own, up to ``threads``: a mount that hangs holds at most that many threads, and the
calls queued behind them wait without holding the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Worker threads of one :class:`Offload` unless told otherwise.
DEFAULT_THREADS = 4
#: Seconds a call may run while others wait behind it before they get another thread.
STUCK_AFTER = 0.02
#: Seconds :meth:`Offload.close` waits for each thread.
CLOSE_WAIT = 5.0

_Call = tuple[asyncio.Future[Any], Callable[[], Any]]
_Done = tuple[asyncio.Future[Any], Any, BaseException | None]


class Offload:
    """Runs blocking calls in ``threads`` worker threads; see the module docstring.

    A thread starts when a call finds every thread busy, up to ``threads``; they stop at
    :meth:`close`. One instance serves one
    event loop at a time (the loop of its first call after a close)."""

    def __init__(self, name: str, threads: int = DEFAULT_THREADS) -> None:
        self._name = name
        self._limit = threads
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._done: collections.deque[_Done] = collections.deque()
        # read and set under the GIL only; see _finished for why no lock is needed
        self._wake_pending = False
        self._threads: list[threading.Thread] = []
        #: When each thread started its current call (0.0: waiting for one); written by the
        #: thread, read by the loop, under the GIL.
        self._started: list[float] = []
        self._running = 0  # calls given and not yet delivered (counted on the loop only)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.TimerHandle | None = None

    def run(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """A future of ``call()``'s result (or exception), called in a worker thread.

        Cancelling the future does not stop a call already started; its result is dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._watch = None
        future: asyncio.Future[T] = loop.create_future()
        self._running += 1
        self._calls.put((future, call))
        threads = len(self._threads)
        if not threads:
            self._start_thread()
        elif self._running > threads and threads < self._limit and self._watch is None:
            # calls wait behind busy threads: look again shortly whether those are stuck
            self._watch = loop.call_later(STUCK_AFTER, self._look)
        return future

    def _look(self) -> None:
        """Give the waiting calls another thread when every thread is stuck on one call."""
        self._watch = None
        threads = len(self._threads)
        if self._running <= threads or threads >= self._limit or self._loop is None:
            return
        now = time.monotonic()
        if all(started and now - started >= STUCK_AFTER for started in self._started):
            self._start_thread()
            threads += 1
        if self._running > threads and threads < self._limit:
            self._watch = self._loop.call_later(STUCK_AFTER, self._look)

    def _start_thread(self) -> None:
        index = len(self._threads)
        thread = threading.Thread(
            target=self._work, args=(index,), name=f"{self._name}-{index}", daemon=True
        )
        self._threads.append(thread)
        self._started.append(0.0)
        thread.start()

    def _work(self, index: int) -> None:
        calls = self._calls
        started = self._started
        while True:
            item = calls.get()
            if item is None:
                return
            future, call = item
            started[index] = time.monotonic()
            try:
                result, error = call(), None
            except BaseException as exc:  # handed to the awaiting task, as to_thread does
                result, error = None, exc
            started[index] = 0.0
            self._finished((future, result, error))

    def _finished(self, done: _Done) -> None:
        # The result is queued before the flag is read, and _deliver clears the flag before
        # it empties the queue: a result that finds a wake-up pending is taken by it, and one
        # that finds none schedules its own. Two threads both scheduling one costs a wake-up
        # that finds nothing, never a lost result.
        self._done.append(done)
        if self._wake_pending:
            return
        self._wake_pending = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        self._wake_pending = False
        done = self._done
        while done:
            future, result, error = done.popleft()
            self._running -= 1
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    async def close(self) -> None:
        """Stop the threads once the calls queued before this have run."""
        threads, self._threads = self._threads, []
        self._started = []
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for _ in threads:
            self._calls.put(None)
        for thread in threads:
            # a thread stuck in a hung mount is a daemon: it does not hold the exit
            await asyncio.to_thread(thread.join, CLOSE_WAIT)
