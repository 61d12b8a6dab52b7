"""The HTTP server around the app: aiohttp's, with a request-head deadline and error pages of
our own for requests aiohttp cannot parse.

Two things aiohttp's server does not do for a service on the open internet:

* **A deadline for the request head.** aiohttp closes an idle keep-alive connection, but a
  client that sends its request line and headers one byte at a time holds its connection (and
  a file descriptor) until the keep-alive timeout, 75 s. Here the head must be complete
  ``header_timeout`` seconds after its first byte (or after the connection opened); otherwise
  the client gets a 408 and the connection is closed.
* **A deadline for a stalled request body.** A client that sends headers announcing a body and
  then stops holds a handler waiting for bytes. When no byte of the body has arrived for
  ``read_timeout`` seconds while wopibridge waits for them, the connection is closed (the
  handler sees a lost connection, as when the client goes away). Time the server itself stops
  reading (flow control while a handler is busy) does not count.
* **A cap on connections** (:mod:`wopibridge.ops.connections`): past it, the longest-idle
  connection is closed to make room, or the new one is answered 503 when every connection is
  busy.
* **A shutdown that lets requests finish.** aiohttp's own shutdown stops reading from every
  connection at once, so an upload in flight never gets the rest of its body. Here
  :meth:`GuardedServer.close_idle` closes only idle connections, and the busy ones close once
  their request is answered (:mod:`wopibridge.ops.shutdown` runs the sequence).
* **Its own answer to a malformed request.** aiohttp answers a request it cannot parse with a
  page that quotes the parser's message, which quotes the offending bytes: the request line,
  with the ``access_token`` in its query. Here the answer is the status and one fixed sentence.

:class:`GuardedRunner` is an ``AppRunner`` whose connections are :class:`GuardedRequestHandler`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from wopibridge.ops.connections import RateLog

log = logging.getLogger("wopibridge.server")

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 36\r\n"
    b"Connection: close\r\n\r\n"
    b"The request took too long to arrive\n"
)
_BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 30\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n"
    b"The server has too much to do\n"
)


def error_text(status: int) -> str:
    """The fixed sentence answering a request that could not be handled: nothing from it."""
    if status == 500:
        return "Internal server error"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"{phrase}: the request could not be read"


class GuardedRequestHandler(RequestHandler):
    """One connection: aiohttp's protocol, plus the head deadline and fixed error bodies.

    It reads attributes of aiohttp's ``RequestHandler``: ``_request_count`` (requests parsed on
    this connection), ``_waiter`` (set while it waits for the next request),
    ``_current_request`` (the request being handled), ``_reading_paused`` (flow control),
    ``_request_in_progress`` and ``_messages`` (requests parsed, not yet handled), and sets
    ``_close`` (close once the current answer is sent).
    """

    def __init__(
        self, manager: Server, *, header_timeout: float, read_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        #: One timer per connection, not per request: it stays armed across requests and,
        #: when it fires, compares the head in progress (``_head_started``) with the deadline.
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started: float | None = None
        self._read_timeout = read_timeout
        self._body_deadline: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        #: Since when no byte has arrived and no request is being handled (None: busy).
        self.quiet_since: float | None = None
        self._close_after = False

    @property
    def quiet(self) -> bool:
        """Idle: no request being handled or queued, and no byte of a next one received."""
        return self.quiet_since is not None and not self._request_in_progress and not self._messages

    def close_after_request(self) -> None:
        """Close this connection once the request in progress is answered; until then it is
        read and written as usual (aiohttp's ``close`` would stop reading a body half-way)."""
        self._close_after = True

    def _arm(self) -> None:
        """A request head starts now: it must be complete ``header_timeout`` seconds later."""
        if self._header_timeout <= 0 or self._head_started is not None:
            return  # off, or a head already in progress keeps its own start
        self._head_started = self._loop.time()
        if self._head_deadline is None:
            self._head_deadline = self._loop.call_later(self._header_timeout, self._head_check)

    def _disarm(self) -> None:
        """The head is complete (the timer stays, for the next request's head)."""
        self._head_started = None

    def _stop_head_timer(self) -> None:
        self._head_started = None
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_check(self) -> None:
        self._head_deadline = None
        started = self._head_started
        if started is None:
            return  # no head in progress: the next one arms the timer again
        waited = self._loop.time() - started
        if waited >= self._header_timeout:
            self._head_late()
        else:
            remaining = self._header_timeout - waited
            self._head_deadline = self._loop.call_later(remaining, self._head_check)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.quiet_since = self._loop.time()
        super().connection_made(transport)
        manager = self._manager
        if isinstance(manager, GuardedServer) and not manager.admit(self):
            self._refuse(transport)
            return
        self._arm()

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        """Answer 503 and close. The client's request is read and dropped for a second
        first: closing a socket with unread bytes resets it, and the client would see a reset
        instead of the answer."""
        self._force_close = True  # aiohttp reads nothing more, handles nothing
        # a stream transport; uvloop's do not subclass asyncio's classes: no isinstance here
        writer = cast(asyncio.WriteTransport, transport)
        writer.write(_BUSY_ANSWER)
        if writer.can_write_eof():
            writer.write_eof()
        self._loop.call_later(1.0, writer.close)

    async def _handle_request(
        self,
        request: BaseRequest,
        start_time: float | None,
        request_handler: Callable[[BaseRequest], Awaitable[web.StreamResponse]],
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super()._handle_request(request, start_time, request_handler)
        finally:
            self.quiet_since = self._loop.time()
            if self._close_after:
                self._close = True  # aiohttp's loop closes the connection after this answer

    def data_received(self, data: bytes) -> None:
        if data:
            self.quiet_since = None
        idle = self._waiter is not None and not self._waiter.done()
        if data and idle:  # the first bytes of the next request's head
            self._arm()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._disarm()
        if self._request_count != parsed or self._current_request is not None:
            self._last_data = self._loop.time()
            if self._body_deadline is None and self._read_timeout > 0:
                self._body_deadline = self._loop.call_later(self._read_timeout, self._body_check)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None
        super().connection_lost(exc)

    def _body_check(self) -> None:
        self._body_deadline = None
        request = self._current_request
        if self.transport is None or request is None or request.content.is_eof():
            return  # no body being waited for; the next bytes arm the check again
        idle = self._loop.time() - self._last_data
        if self._reading_paused:  # the server stopped reading, not the client sending
            self._last_data, idle = self._loop.time(), 0.0
        if idle < self._read_timeout:
            self._body_deadline = self._loop.call_later(self._read_timeout - idle, self._body_check)
            return
        peer = self.transport.get_extra_info("peername")
        log.info("request body from %s stalled for %.0f s: closed", peer, self._read_timeout)
        self.force_close()

    def _head_late(self) -> None:
        self._head_started = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        log.info(
            "request head from %s not complete after %.0f s: closed", peer, self._header_timeout
        )
        transport.write(_TIMEOUT_ANSWER)
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's handling (logging, closing), with a body that quotes nothing. A client
        that went away mid-request (or was cut off by the read deadline) is one INFO line."""
        if isinstance(exc, ConnectionError):
            log.info("client %s went away during the request", request.remote)
            if request.writer.output_size > 0:
                raise ConnectionError("the client went away during the answer")
        else:
            super().handle_error(request, status, exc, message)
        response = web.Response(status=status, text=error_text(status))
        response.force_close()
        return response


class GuardedServer(Server):
    """aiohttp's low-level server handing out :class:`GuardedRequestHandler` connections, at
    most ``max_connections`` at once."""

    def __init__(
        self,
        *args: Any,
        header_timeout: float,
        read_timeout: float,
        max_connections: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._read_timeout = read_timeout
        self.max_connections = max_connections
        cap = f"connection cap {max_connections} reached"
        self._evicted = RateLog(f"{cap}: idle connections closed")
        self._refused = RateLog(f"{cap}, all busy: new connections answered 503")

    def admit(self, handler: GuardedRequestHandler) -> bool:
        """Whether a new connection may stay: under the cap, or once the longest-idle other
        connection has been closed to make room."""
        open_now = sum(1 for conn in self._connections if conn.transport is not None)
        if open_now <= self.max_connections:
            return True
        oldest: GuardedRequestHandler | None = None
        for other in self._connections:
            if (
                other is handler
                or not isinstance(other, GuardedRequestHandler)
                or other.transport is None  # closed, not yet gone from the table
                or not other.quiet
            ):
                continue
            if oldest is None or (other.quiet_since or 0.0) < (oldest.quiet_since or 0.0):
                oldest = other
        if oldest is not None:
            oldest.force_close()
            self._evicted.record()
            return True
        self._refused.record()
        return False

    def busy(self) -> list[GuardedRequestHandler]:
        """The connections with a request in progress (or partly received)."""
        conns = self._connections
        return [c for c in conns if isinstance(c, GuardedRequestHandler) and not c.quiet]

    def close_idle(self) -> int:
        """Close every idle connection now and every busy one after its answer; answers how
        many are busy."""
        busy = 0
        for conn in list(self._connections):
            if isinstance(conn, GuardedRequestHandler) and not conn.quiet:
                conn.close_after_request()
                busy += 1
            else:
                conn.force_close()
        return busy

    def cut_all(self) -> None:
        """Close every connection now, busy or not."""
        for conn in list(self._connections):
            conn.force_close()

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self,
            loop=self._loop,
            header_timeout=self._header_timeout,
            read_timeout=self._read_timeout,
            **self._kwargs,
        )


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose server is a :class:`GuardedServer`."""

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_connections: int = 10000,
        **kw: Any,
    ) -> None:
        super().__init__(app, **kw)
        self._header_timeout = header_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections

    @property
    def max_connections(self) -> int:
        return self._max_connections

    @property
    def guarded(self) -> GuardedServer | None:
        """The running server, once :meth:`setup` has built it."""
        return self._server if isinstance(self._server, GuardedServer) else None

    async def _make_server(self) -> Server:
        plain = await super()._make_server()  # starts the app, builds aiohttp's server
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            header_timeout=self._header_timeout,
            read_timeout=self._read_timeout,
            max_connections=self._max_connections,
            **plain._kwargs,
        )
