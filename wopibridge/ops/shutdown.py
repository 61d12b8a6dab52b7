"""Serving until told to stop, and stopping the way load balancers and Kubernetes expect.

On SIGTERM an instance:

1. **drains** for ``server.drain_seconds``: ``/ready`` answers 503, every request is still
   served (answers carry ``Connection: close``), so the balancer's health check takes the
   instance out before it stops listening;
2. **stops accepting**: new handshakes are refused, the ones under way are accepted, then the
   listening socket closes (``ops/listeners.py``), and idle connections close;
3. **lets requests in flight finish**, uploads and downloads included, for at most
   ``server.shutdown_timeout`` seconds, and cuts off what is left;
4. runs the app's cleanup (bridged documents are saved, stores closed) and exits 0.

SIGINT (Ctrl+C at a terminal), or a second signal during the drain, skips the waiting: the
connections are cut and the cleanup runs at once. Each step is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from aiohttp import web

from wopibridge.config import ServerSettings
from wopibridge.ops.connections import (
    BACKLOG,
    connection_cap,
    open_file_limit,
    quiet_accept_failures,
)
from wopibridge.ops.drain import DRAIN
from wopibridge.ops.listeners import stop_sites_quietly
from wopibridge.ops.server import GuardedRunner, GuardedServer

log = logging.getLogger("wopibridge.server")

#: How often the log says how many requests are still open while they finish.
PROGRESS_INTERVAL = 5.0
#: A second SIGTERM sooner than this after the first is the same request to stop.
REPEAT_GRACE = 1.0


class StopSignal:
    """The first SIGTERM/SIGINT received, and whether the stop must be immediate."""

    def __init__(self) -> None:
        self.received = asyncio.Event()
        self.hurry = asyncio.Event()
        self.name = ""
        self._first = 0.0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        now = time.monotonic()
        # A second signal hurries the stop, unless it is the same stop said twice at once
        # (a service manager signalling every process while the supervisor passes it on).
        again = self.received.is_set() and now - self._first >= REPEAT_GRACE
        if again or signum == signal.SIGINT:
            self.hurry.set()
        if not self.received.is_set():
            self.name = signal.Signals(signum).name
            self._first = now
            self.received.set()


def make_runner(app: web.Application, server: ServerSettings) -> GuardedRunner:
    """The runner of ``app`` with the guards and bounds of ``server``."""
    return GuardedRunner(
        app,
        header_timeout=server.header_timeout,
        read_timeout=server.read_timeout,
        max_connections=connection_cap(server.max_connections),
        keepalive_timeout=server.keepalive_timeout,
        shutdown_timeout=0.5,  # what is left after stop() is cut, not waited for again
        access_log=None,
    )


class ListenError(OSError):
    """The port could not be bound (the app had started)."""


async def run_app(
    app: web.Application,
    server: ServerSettings,
    *,
    reuse_port: bool = False,
    on_listen: Callable[[], None] = lambda: None,
) -> None:
    """Start ``app``, listen until SIGTERM or SIGINT, stop as the module says, clean up.

    Whatever fails, what was opened is closed again. Raises what the app's start raises
    (``ConfigError``, ``OSError``) and :class:`ListenError` when the port cannot be bound."""
    loop = asyncio.get_running_loop()
    stop = StopSignal()
    stop.install(loop)
    quiet_accept_failures(loop)
    runner = make_runner(app, server)
    try:
        await runner.setup()
        site = web.TCPSite(
            runner, server.host, server.port, reuse_port=reuse_port or None, backlog=BACKLOG
        )
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(exc.errno, exc.strerror) from exc
        log.info(
            "open-file limit %d: at most %d connections (server.max_connections %d)",
            open_file_limit(),
            runner.max_connections,
            server.max_connections,
        )
        on_listen()
        await stop.received.wait()
        await stop_gracefully(runner, server, stop)
    finally:
        await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def stop_gracefully(runner: GuardedRunner, server: ServerSettings, stop: StopSignal) -> None:
    """Steps 1 to 3 of the module's sequence (the caller's ``runner.cleanup()`` is step 4)."""
    started = time.monotonic()
    guarded = runner.guarded
    app = runner.app
    if stop.hurry.is_set() or guarded is None:
        log.info("stopping now (%s): open connections are closed", stop.name)
        if guarded is not None:
            guarded.cut_all()
        return
    drain = app.get(DRAIN)
    if drain is not None:
        drain.begin()
    log.info(
        "draining (%s): /ready answers 503, requests are still served for %g s",
        stop.name,
        server.drain_seconds,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.hurry.wait(), server.drain_seconds)
    await stop_sites_quietly(runner.sites)
    busy = guarded.close_idle()
    log.info("stopped accepting; %d requests in flight", busy)
    await _finish(guarded, server.shutdown_timeout, stop)
    left = len(guarded.busy())
    if left:
        guarded.cut_all()
    log.info(
        "drained in %.1f s%s",
        time.monotonic() - started,
        f"; {left} requests cut off after server.shutdown_timeout" if left else "",
    )


async def _finish(guarded: GuardedServer, within: float, stop: StopSignal) -> None:
    """Wait until no request is in flight, at most ``within`` seconds or until a second
    signal, logging the count every :data:`PROGRESS_INTERVAL` seconds."""
    deadline = time.monotonic() + within
    next_report = time.monotonic() + PROGRESS_INTERVAL
    while guarded.busy() and not stop.hurry.is_set():
        now = time.monotonic()
        if now >= deadline:
            return
        if now >= next_report:
            log.info("%d requests still in flight", len(guarded.busy()))
            next_report = now + PROGRESS_INTERVAL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.hurry.wait(), min(0.1, deadline - now))
