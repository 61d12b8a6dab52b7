"""Redis calls pipelined on one redis-py connection: written as they come, answered in order.

Every WOPI Lock, Unlock, RefreshLock, GetLock and PutFile makes one Redis call, so its
client-side cost is paid on each of them. Through redis-py's command API each call checks a
connection out of the pool and back in, runs a retry wrapper and records observability data,
and redis-py's own pipeline waits for a batch's replies before it sends the next batch
(stop-and-wait): with four concurrent callers the lock store managed 29% of the Lock+Unlock
cycles/s of a connection that keeps writing while replies are due (``bench/lock_clients.py``).

So :class:`Pipeline` keeps one connection of the client's pool (redis-py still connects,
authenticates, selects the database, follows the Sentinel primary, turns a demoted primary's
``READONLY`` into a connection error and parses with hiredis; hiredis also packs the
commands) and drives it with two tasks:

- the **writer** sends, in one write, every command queued since its last write, without
  waiting for earlier replies; a call on an idle connection (no reply due) is written at once
  by its caller instead, one turn of the event loop sooner;
- the **reader** reads replies as they come, and hands each to the oldest caller still
  waiting: Redis answers in order on one connection, so a FIFO is all the matching needed.
  An error reply (``NOSCRIPT``...) is that caller's answer, and the next replies still match.

Bounds: every call has a deadline (``timeout`` after it was queued), kept by one timer per
connection. When the oldest call is late (Redis hung, a connect that does not end) the
connection is given up: every caller still waiting fails with ``TimeoutError``, and the next
call takes a fresh connection. A connection that breaks fails its waiting callers with the
error. Nothing is cancelled inside redis-py: a late connect is released when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import hiredis
from redis import asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

Call = tuple[tuple[Any, ...], "asyncio.Future[Any]", float]


def _pack(connection: AbstractConnection, args: tuple[Any, ...]) -> bytes:
    """One command in RESP, by hiredis (0.55 us against 4.0 us with redis-py's packer, which
    its asyncio client uses); what hiredis does not take, redis-py packs or refuses."""
    try:
        packed: bytes = hiredis.pack_command(args)
        return packed
    except (TypeError, UnicodeError):
        return b"".join(connection.pack_command(*args))


class _Link:
    """One connection and the calls sent on it or queued for it."""

    def __init__(self, owner: Pipeline, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self.loop = loop
        self.outbox: list[Call] = []
        self.sent: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.failed: BaseException | None = None
        self._connection: AbstractConnection | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[None] | None = None
        self.writer = loop.create_task(self._write())

    def submit(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        deadline = self.loop.time() + self._owner.timeout
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(deadline, self._check_deadline)
        if self._write_now(args, future, deadline):
            return future
        self.outbox.append((args, future, deadline))
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return future

    def _write_now(
        self, args: tuple[Any, ...], future: asyncio.Future[Any], deadline: float
    ) -> bool:
        """Write a lone call from its caller's turn; ``False``: the writer is to send it.

        With no reply due and nothing queued there is nothing to batch it with, and waking the
        writer would cost one more turn of the event loop before the command leaves: what a
        WOPI request making one Redis call at a time pays on each. The write goes to the
        StreamWriter redis-py keeps for the connection (``_writer``: when a redis-py version
        names it otherwise, every call takes the writer's way). Calls that come while replies
        are due still go to the writer, batched.
        """
        connection = self._connection
        if self.sent or self.outbox or connection is None or self._reader is None:
            return False
        if self.failed is not None:
            return False
        stream = getattr(connection, "_writer", None)
        if not isinstance(stream, asyncio.StreamWriter) or stream.transport.is_closing():
            return False
        if stream.transport.get_write_buffer_size():
            return False
        try:
            packed = _pack(connection, args)
        except Exception:  # the writer packs it again, and fails as it does
            return False
        self.sent.append((future, deadline))  # listed first: the reply may come at once
        stream.write(packed)
        return True

    async def _write(self) -> None:
        try:
            await self._pump()
        except Exception as exc:
            self.fail(exc)
        except BaseException:  # cancelled (the loop ends): nobody is left waiting
            self.fail(ConnectionError("the Redis connection was closed"))
            raise
        finally:
            await self._release()

    async def _pump(self) -> None:
        """Connect, start the reader, then write what is queued until the link fails."""
        connection = self._connection = await self._owner.pool.get_connection()  # type: ignore[no-untyped-call]
        if self.failed is not None:  # given up while connecting
            return
        self._reader = self.loop.create_task(self._read(connection))
        while self.failed is None:
            if not self.outbox:
                self._wakeup = self.loop.create_future()
                await self._wakeup
                continue
            batch, self.outbox = self.outbox, []
            live = [call for call in batch if not call[1].done()]
            if not live:
                continue
            # listed as sent before the write: a reply may come before the write returns
            self.sent.extend((future, deadline) for _, future, deadline in live)
            packed = [_pack(connection, args) for args, _, _ in live]
            await connection.send_packed_command(packed, check_health=False)

    async def _read(self, connection: AbstractConnection) -> None:
        while self.failed is None:
            try:
                reply: Any = await connection.read_response()
            except ResponseError as error:  # an error reply: this command's answer
                reply = error
            except Exception as exc:
                self.fail(exc)
                return
            if not self.sent:
                self.fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            future, _ = self.sent.popleft()
            if future.done():  # its caller gave up (timeout, cancellation)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _check_deadline(self) -> None:
        self._watchdog = None
        oldest = self._oldest_deadline()
        if oldest is None:
            return
        if self.loop.time() >= oldest:
            self.fail(TimeoutError())
        else:
            self._watchdog = self.loop.call_at(oldest, self._check_deadline)

    def _oldest_deadline(self) -> float | None:
        """The earliest deadline of a call still waiting (sent calls were queued first)."""
        for future, deadline in self.sent:
            if not future.done():
                return deadline
        for _, future, deadline in self.outbox:
            if not future.done():
                return deadline
        return None

    def fail(self, error: BaseException) -> None:
        """Give the connection up: every caller still waiting fails with ``error``."""
        if self.failed is not None:
            return
        self.failed = error
        self._owner.forget(self)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting = [future for future, _ in self.sent]
        waiting += [future for _, future, _ in self.outbox]
        self.sent.clear()
        self.outbox = []
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)  # the writer ends, and gives the connection back

    async def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # ends the reader's read, if it is still in one
        await connection.disconnect(nowait=True)
        if self._reader is not None and not self._reader.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), self._owner.timeout)
        await self._owner.pool.release(connection)

    async def close(self) -> None:
        self.fail(ConnectionError("the Redis connection was closed"))
        await asyncio.wait((self.writer,), timeout=self._owner.timeout)


class Pipeline:
    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self.pool = client.connection_pool
        self.timeout = timeout
        self._link: _Link | None = None
        self._links: set[_Link] = set()

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; its future has the reply, or the error (``TimeoutError`` past
        the timeout, the connection's error, or the command's error reply)."""
        link, loop = self._link, asyncio.get_running_loop()
        if link is None or link.loop is not loop:
            if link is not None:  # its loop has ended (a test's, a restarted runner's)
                with contextlib.suppress(RuntimeError):  # "Event loop is closed"
                    link.fail(ConnectionError("the event loop of the Redis connection ended"))
            link = self._link = _Link(self, loop)
            self._links.add(link)
            link.writer.add_done_callback(lambda _: self._links.discard(link))
        return link.submit(args)

    def forget(self, link: _Link) -> None:
        if self._link is link:
            self._link = None

    async def close(self) -> None:
        """Fail what still waits and give the connections back (``aclose`` then closes them)."""
        for link in list(self._links):
            await link.close()
