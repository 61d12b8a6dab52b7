"""Redis calls issued while the previous ones are on the wire, sent together on one connection.

Every WOPI Lock, Unlock, RefreshLock, GetLock and PutFile makes one Redis call, so its
client-side cost is paid on each of them. Through redis-py's command API each call checks a
connection out of the pool and back in, runs a retry wrapper and records observability
data: more than the call itself costs Redis. The :class:`Batcher` keeps one connection of the
client's pool (redis-py still connects, authenticates, selects the database, follows the
Sentinel primary and parses with hiredis) and writes the commands queued since the last write
in one go, then reads their replies in order. Under load the queue grows while a write is in
flight, so the cost per call falls as the load rises.

Bounds: a timer per batch, started by its first command, fails the callers still waiting
after ``timeout`` with ``TimeoutError``; if that batch was on the wire, its connection is
dropped (Redis did not answer in time) and the next batch takes a fresh one. No call is ever
cancelled inside redis-py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis import asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

Batch = list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]


class Batcher:
    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self._pool = client.connection_pool
        self._timeout = timeout
        self._pending: Batch = []
        self._timer: asyncio.TimerHandle | None = None
        self._connection: AbstractConnection | None = None
        self._sending: asyncio.Task[None] | None = None

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            self._timer = loop.call_later(self._timeout, self._expire, self._pending)
            if self._sending is None:
                loop.call_soon(self._flush)
        self._pending.append((args, future))
        return future

    def _flush(self) -> None:
        if self._sending is not None or not self._pending:
            return
        batch, self._pending = self._pending, []
        timer, self._timer = self._timer, None
        self._sending = asyncio.get_running_loop().create_task(self._send(batch, timer))

    def _expire(self, batch: Batch) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(TimeoutError())

    async def _send(self, batch: Batch, timer: asyncio.TimerHandle | None) -> None:
        live = [(args, future) for args, future in batch if not future.done()]
        try:
            if live:
                await self._exchange(live, timer)
        finally:
            if timer is not None:
                timer.cancel()
            self._sending = None
            self._flush()  # what queued up meanwhile

    async def _exchange(self, batch: Batch, timer: asyncio.TimerHandle | None) -> None:
        connection = self._connection
        replies: list[Any] = []
        loop = asyncio.get_running_loop()
        watchdog = None
        if timer is not None:  # the batch's deadline also ends a connection that hangs
            watchdog = loop.call_at(timer.when(), self._abandon)
        try:
            if connection is None:
                connection = self._connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            await connection.send_packed_command(connection.pack_commands(a for a, _ in batch))
            for _ in batch:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as error:  # an error reply: this command's answer
                    replies.append(error)
        except Exception as exc:  # the connection failed: the callers without a reply learn it
            replies += [exc] * (len(batch) - len(replies))
            await self._drop()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up (timeout, cancellation)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _abandon(self) -> None:
        """The batch on the wire is late: close its connection so its reads end."""
        connection = self._connection
        if connection is not None:
            task = asyncio.get_running_loop().create_task(connection.disconnect(nowait=True))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)
            await self._pool.release(connection)

    async def close(self) -> None:
        """Give the connection back (the client's ``aclose`` then closes it)."""
        if self._sending is not None:
            await asyncio.wait((self._sending,), timeout=self._timeout)
        await self._drop()
