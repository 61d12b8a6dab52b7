"""A lean, pipelined Redis connection for the lock store's hot path.

Every WOPI Lock, Unlock, RefreshLock, GetLock and PutFile makes one Redis call, so the call's
client-side cost is paid on each of them. redis-py's asyncio client spends about 100 µs of
Python per command (connection-pool checkout, option handling, response callbacks); this
connection writes each command as it comes and matches replies in order (Redis answers in
order on one connection), which costs a fraction of that and lets concurrent requests share one
socket. It speaks only what the lock store needs: RESP2 replies, AUTH, SELECT, TLS and Unix
sockets. A lost or timed-out connection fails every pending call with ``ConnectionError`` and
is opened again by the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class ReplyError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``)."""


@dataclass(frozen=True)
class Endpoint:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""
    db: int = 0
    username: str = ""
    password: str = ""
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        db_text = parts.path.strip("/") if parts.scheme != "unix" else ""
        db = int(db_text or query.get("db", ["0"])[0])
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            path=parts.path if parts.scheme == "unix" else "",
            db=db,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            tls=parts.scheme == "rediss",
        )


def encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def read_reply(reader: asyncio.StreamReader) -> Any:
    line = await reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        return (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        count = int(body)
        if count < 0:
            return None
        return [await read_reply(reader) for _ in range(count)]
    if kind == b"-":
        return ReplyError(body.decode(errors="replace"))
    raise ConnectionError(f"unexpected reply from Redis: {line[:40]!r}")


class RespConnection:
    def __init__(self, endpoint: Endpoint, *, connect_timeout: float = 2, timeout: float = 5):
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._reading: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> None:
        ep = self.endpoint
        if ep.path:
            opening = asyncio.open_unix_connection(ep.path)
        else:
            context = ssl.create_default_context() if ep.tls else None
            opening = asyncio.open_connection(ep.host, ep.port, ssl=context)
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await opening
            setup: list[tuple[Any, ...]] = []
            if ep.password:
                setup.append(
                    ("AUTH", ep.username, ep.password) if ep.username else ("AUTH", ep.password)
                )
            if ep.db:
                setup.append(("SELECT", ep.db))
            for command in setup:
                writer.write(encode(command))
                reply = await read_reply(reader)
                if isinstance(reply, ReplyError):
                    writer.close()
                    raise ConnectionError(f"Redis refused {command[0]}: {reply}")
        self._writer = writer
        self._reading = asyncio.create_task(self._read_loop(reader, writer))

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                reply = await read_reply(reader)
                if not self._pending:
                    raise ConnectionError("Redis sent a reply nobody asked for")
                future = self._pending.popleft()
                if not future.done():
                    if isinstance(reply, ReplyError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError) as exc:
            self._drop(writer, ConnectionError(f"lost the Redis connection: {exc}"))
        except asyncio.CancelledError:
            self._drop(writer, ConnectionError("Redis connection closed"))
            raise

    def _drop(self, writer: asyncio.StreamWriter, error: Exception) -> None:
        """Forget a connection and fail every call still waiting on it."""
        if self._writer is writer:
            self._writer = None
        writer.close()
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(error)

    async def call(self, *args: Any) -> Any:
        if self._writer is None:
            async with self._opening:
                if self._writer is None:
                    await self._open()
        writer = self._writer
        assert writer is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(future)
        writer.write(encode(args))
        try:
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError:
            # the reply may still come and would answer the wrong caller: start afresh
            self._drop(writer, ConnectionError("Redis did not answer in time"))
            raise ConnectionError("Redis did not answer in time") from None

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._reading
            self._reading = None
        if self._writer is not None:
            self._drop(self._writer, ConnectionError("Redis connection closed"))
