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

The number of threads is bounded: a mount that hangs holds at most that many threads, and the
calls queued behind them wait without holding the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Worker threads of one :class:`Offload` unless told otherwise.
DEFAULT_THREADS = 4
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
        self._running = 0  # calls given and not yet delivered (counted on the loop only)
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """A future of ``call()``'s result (or exception), called in a worker thread.

        Cancelling the future does not stop a call already started; its result is dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        self._running += 1
        threads = len(self._threads)
        if not threads or (self._running > threads and threads < self._limit):
            self._start_thread()  # a thread more only while all of them are busy
        self._calls.put((future, call))
        return future

    def _start_thread(self) -> None:
        name = f"{self._name}-{len(self._threads)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        calls = self._calls
        while True:
            item = calls.get()
            if item is None:
                return
            future, call = item
            try:
                result, error = call(), None
            except BaseException as exc:  # handed to the awaiting task, as to_thread does
                result, error = None, exc
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
        for _ in threads:
            self._calls.put(None)
        for thread in threads:
            # a thread stuck in a hung mount is a daemon: it does not hold the exit
            await asyncio.to_thread(thread.join, CLOSE_WAIT)
