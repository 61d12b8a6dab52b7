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
* **Its own answer to a malformed request.** aiohttp answers a request it cannot parse with a
  page that quotes the parser's message, which quotes the offending bytes: the request line,
  with the ``access_token`` in its query. Here the answer is the status and one fixed sentence.

:class:`GuardedRunner` is an ``AppRunner`` whose connections are :class:`GuardedRequestHandler`;
:func:`run` serves an app with it until SIGINT/SIGTERM, like ``web.run_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

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
    ``_current_request`` (the request being handled) and ``_reading_paused`` (flow control).
    """

    def __init__(
        self, manager: Server, *, header_timeout: float, read_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._read_timeout = read_timeout
        self._body_deadline: asyncio.TimerHandle | None = None
        self._last_data = 0.0

    def _arm(self) -> None:
        if self._head_deadline is None and self._header_timeout > 0:
            self._head_deadline = self._loop.call_later(self._header_timeout, self._head_late)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
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
        self._disarm()
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
        self._head_deadline = None
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
    """aiohttp's low-level server handing out :class:`GuardedRequestHandler` connections."""

    def __init__(
        self, *args: Any, header_timeout: float, read_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._read_timeout = read_timeout

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
        **kw: Any,
    ) -> None:
        super().__init__(app, **kw)
        self._header_timeout = header_timeout
        self._read_timeout = read_timeout

    async def _make_server(self) -> Server:
        plain = await super()._make_server()  # starts the app, builds aiohttp's server
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            header_timeout=self._header_timeout,
            read_timeout=self._read_timeout,
            **plain._kwargs,
        )


async def _serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    header_timeout: float,
    read_timeout: float,
    reuse_port: bool,
    on_listen: Callable[[], None],
) -> None:
    runner = GuardedRunner(
        app,
        header_timeout=header_timeout,
        read_timeout=read_timeout,
        handle_signals=True,
        access_log=None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        on_listen()
        await asyncio.Event().wait()  # until SIGINT/SIGTERM raise GracefulExit
    finally:
        await runner.cleanup()


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    reuse_port: bool = False,
    on_listen: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then run its cleanup."""
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(
            _serve(
                app,
                host=host,
                port=port,
                header_timeout=header_timeout,
                read_timeout=read_timeout,
                reuse_port=reuse_port,
                on_listen=on_listen,
            )
        )
