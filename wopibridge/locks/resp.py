"""A lean, pipelined Redis connection for the lock store's hot path.

Every WOPI Lock, Unlock, RefreshLock, GetLock and PutFile makes one Redis call, so the call's
client-side cost is paid on each of them. redis-py's asyncio client spends about 100 µs of
Python per command (connection-pool checkout, option handling, response callbacks); this
connection writes each command as it comes and matches replies in order (Redis answers in
order on one connection), which costs a fraction of that and lets concurrent requests share one
socket. Replies are parsed by hiredis straight from the protocol's ``data_received`` and
resolve their callers' futures there, with no reader task in between. It speaks only what the
lock store needs: RESP2 replies, AUTH, SELECT, TLS and Unix sockets. A lost or timed-out
connection fails every pending call with ``ConnectionError`` and is opened again by the next
call; one watchdog timer per connection enforces the reply timeout, so a call pays for no
timer of its own.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


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


class _Protocol(asyncio.Protocol):
    """One Redis connection: writes commands, hands each reply to the oldest waiting caller.

    Redis answers in order on one connection, so a FIFO of futures is all the matching needed.
    The connection is given up (every waiting caller fails with ``ConnectionError``) when it
    is lost, when Redis sends something unparsable or unasked for, or when the oldest call has
    waited longer than ``timeout`` (its reply could otherwise answer the wrong caller later).
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._parser = hiredis.Reader(replyError=ReplyError)
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.error: ConnectionError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, whatever its class: uvloop's are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        if self.error is not None or self._transport is None:
            raise self.error or ConnectionError("Redis connection closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((future, loop.time() + self._timeout))
        self._transport.write(encode(args))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check_deadline)
        return future

    def _check_deadline(self) -> None:
        self._watchdog = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        deadline = self._pending[0][1]
        if loop.time() >= deadline:
            self.fail(ConnectionError("Redis did not answer in time"))
        else:
            self._watchdog = loop.call_at(deadline, self._check_deadline)

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        while True:
            try:
                reply = self._parser.gets()
            except hiredis.ProtocolError as exc:
                self.fail(ConnectionError(f"unexpected reply from Redis: {exc}"))
                return
            if reply is False:
                return
            if not self._pending:
                self.fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            future, _ = self._pending.popleft()
            if future.done():  # the caller was cancelled
                continue
            if isinstance(reply, ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"lost the Redis connection: {exc or 'closed by Redis'}"))

    def fail(self, error: ConnectionError) -> None:
        """Give the connection up and fail every call still waiting on it."""
        if self.error is None:
            self.error = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.close()
        while self._pending:
            future, _ = self._pending.popleft()
            if not future.done():
                future.set_exception(error)


class RespConnection:
    def __init__(self, endpoint: Endpoint, *, connect_timeout: float = 2, timeout: float = 5):
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> _Protocol:
        ep = self.endpoint
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            return _Protocol(self._timeout)

        async with asyncio.timeout(self._connect_timeout):
            if ep.path:
                _, protocol = await loop.create_unix_connection(factory, ep.path)
            else:
                context = ssl.create_default_context() if ep.tls else None
                _, protocol = await loop.create_connection(factory, ep.host, ep.port, ssl=context)
            setup: list[tuple[Any, ...]] = []
            if ep.password:
                setup.append(
                    ("AUTH", ep.username, ep.password) if ep.username else ("AUTH", ep.password)
                )
            if ep.db:
                setup.append(("SELECT", ep.db))
            for command in setup:
                try:
                    await protocol.send(command)
                except ReplyError as reply:
                    protocol.fail(ConnectionError("Redis connection closed"))
                    raise ConnectionError(f"Redis refused {command[0]}: {reply}") from None
                except BaseException:  # the connect timeout or a cancellation: no socket left
                    protocol.fail(ConnectionError("Redis connection closed"))
                    raise
        return protocol

    async def call(self, *args: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.error is not None:
            async with self._opening:
                protocol = self._protocol
                if protocol is None or protocol.error is not None:
                    protocol = self._protocol = await self._open()
        return await protocol.send(args)

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.fail(ConnectionError("Redis connection closed"))
            self._protocol = None
