"""Redis calls issued in one turn of the event loop, sent together as one pipeline."""

from __future__ import annotations

import asyncio
from typing import Any

from redis import asyncio as aioredis

Batch = list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]


class Batcher:
    """Sends the commands issued in one turn of the event loop as one pipeline.

    Concurrent WOPI requests each make one Redis call; sent one by one, each pays redis-py's
    per-call costs (pool checkout, retry wrapper, one socket write and one wake-up). Collected
    over one loop turn, they share one connection, one write and one read loop. Each command
    keeps its own reply or error; a lone command goes out as a plain call.

    One timer per batch bounds its calls: past ``timeout`` their callers get ``TimeoutError``
    while the batch itself runs on (it ends when Redis answers or the connection breaks), so
    no call pays for a timer of its own and redis-py is never cancelled mid-connect.
    """

    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._pending: Batch = []
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((args, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._send(batch))
        timer = loop.call_later(self._timeout, _expire, batch)
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            timer.cancel()

        task.add_done_callback(finished)

    async def _send(self, batch: Batch) -> None:
        try:
            if len(batch) == 1:
                command = batch[0][0]
                replies: list[Any] = [await self._client.execute_command(*command)]  # type: ignore[no-untyped-call]
            else:
                pipe = self._client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every caller learns it
            replies = [exc] * len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up (timeout, cancellation)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _expire(batch: Batch) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(TimeoutError())
