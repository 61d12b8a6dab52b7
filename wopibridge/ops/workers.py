"""Several server processes on one listening socket (``server.workers``).

One Python process answers on one core. With ``server.workers = N`` the command that starts
the server becomes a small supervisor: it generates the secrets once (so every worker signs
and checks tokens with the same ones), claims the port, and forks N workers, each a complete
wopibridge app listening on the port with ``SO_REUSEPORT``. The kernel then spreads new
connections evenly over the workers; one shared listening socket would hand most of them to
whichever worker happens to be waiting in ``accept``. Each worker is a complete instance, like
the instances of a fleet on several hosts: they agree on locks, bridge state and file ids
through Redis, which is why more than one worker needs ``locks.url = redis://...``.

A worker that dies is replaced; one that exits because of a configuration error stops the
whole server with that error. The supervisor passes SIGTERM and SIGINT on to the workers: on
SIGTERM each drains and lets its requests in flight finish (:mod:`wopibridge.ops.shutdown`),
on SIGINT each stops at once; both save the bridged documents, and then the supervisor exits.
Workers run in their own process group, so Ctrl+C in a terminal reaches the supervisor alone
and each worker is told to stop exactly once. A worker whose supervisor vanished (SIGKILL)
stops by itself.

Metrics use prometheus_client's multiprocess mode: the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at an emptied ``<state_dir>/metrics`` before the fork, every worker
writes its values there as it counts (memory-mapped files), and ``/metrics`` on any worker
answers the sum, dead workers included, so counters never go backwards whichever worker a
scrape reaches. Process metrics are per worker there (``wopibridge_worker_*``, with a ``pid``
label), since the library's ``process_*`` describe one process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import prometheus_client.values
from aiohttp import web
from prometheus_client import Gauge, ProcessCollector, multiprocess

from wopibridge.config import ConfigError, Settings
from wopibridge.ops import eventloop
from wopibridge.ops.metrics import MULTIPROCESS_ENV
from wopibridge.ops.shutdown import ListenError, run_app
from wopibridge.security.secrets import load_secrets

log = logging.getLogger("wopibridge.workers")

#: The supervisor's pid, taken right after the fork: by the time the app starts, the
#: supervisor may already be gone and the worker adopted by another process.
SUPERVISOR: web.AppKey[int] = web.AppKey("worker_supervisor", int)

BEAT_INTERVAL = 1.0
#: A worker that dies sooner than this after its start is replaced only after a pause.
QUICK_DEATH = 5.0
CONFIG_ERROR_EXIT = 2


def metrics_dir(settings: Settings) -> Path:
    return settings.server.state_dir / "metrics"


def _multiprocess_metrics(folder: Path) -> None:
    """Switch prometheus_client to multiprocess mode, in this process and the workers it forks.

    The library picks its value class from the environment when first imported; it is picked
    again here because this process imported it before the settings said how many workers.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(folder)
    values = prometheus_client.values
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def serve_workers(settings: Settings, make_app: Callable[[], web.Application]) -> int:
    """Run ``settings.server.workers`` workers on one port until told to stop.

    Raises ``OSError`` when the port cannot be bound and ``ConfigError`` when a secret cannot
    be read or generated, before any worker starts.
    """
    load_secrets(settings)
    shared = metrics_dir(settings)
    _multiprocess_metrics(shared)
    claim = _claim_port(settings.server.host, settings.server.port)
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
    stopping = False
    exit_code = 0

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            supervisor = os.getppid()
            try:
                os.setpgid(0, 0)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                claim.close()
                code = _run_worker(settings, make_app, supervisor)
            except BaseException:
                log.exception("worker %d failed", slot)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = (slot, time.monotonic())
        log.info("worker %d started (pid %d)", slot, pid)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    try:
        for slot in range(settings.server.workers):
            spawn(slot)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in children:
                continue
            slot, started = children.pop(pid)
            multiprocess.mark_process_dead(pid, str(shared))  # type: ignore[no-untyped-call]
            code = os.waitstatus_to_exitcode(status)
            if stopping:
                continue
            if code == CONFIG_ERROR_EXIT:
                log.error("worker %d stopped on a configuration error; stopping", slot)
                exit_code = CONFIG_ERROR_EXIT
                stop_all()
                continue
            log.warning("worker %d (pid %d) exited with %s; starting another", slot, pid, code)
            if time.monotonic() - started < QUICK_DEATH:
                time.sleep(1)
            if not stopping:
                spawn(slot)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        claim.close()
    log.info("all workers stopped")
    return exit_code


def _claim_port(host: str, port: int) -> socket.socket:
    """A socket bound to the port with ``SO_REUSEPORT`` but not listening: it keeps other
    users' programs off the port (the kernel shares it only within one user) and fails here,
    before any worker starts, when the port is taken; it receives no connections."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    claim = socket.socket(family, kind, proto)
    try:
        claim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        claim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        claim.bind(address)
    except OSError:
        claim.close()
        raise
    return claim


def _run_worker(
    settings: Settings, make_app: Callable[[], web.Application], supervisor: int
) -> int:
    """One worker: the same start, drain and stop as a single process
    (:mod:`wopibridge.ops.shutdown`), on the shared port."""
    try:
        app = make_app()
        app[SUPERVISOR] = supervisor
        listening = lambda: log.info("worker listening")  # noqa: E731
        eventloop.run(
            run_app(app, settings.server, reuse_port=True, on_listen=listening),
            settings.server.event_loop,
        )
    except ConfigError as exc:
        log.error("%s", exc)
        return CONFIG_ERROR_EXIT
    except ListenError as exc:
        log.error("worker cannot listen: %s", exc.strerror or exc)
        return 1
    return 0


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx of a worker: its supervisor watched, its process metrics kept current."""
    supervisor = app.get(SUPERVISOR, os.getppid())
    process = _WorkerProcessMetrics()

    async def beat() -> None:
        while True:
            if os.getppid() != supervisor:
                log.warning("the supervisor is gone; stopping this worker")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            process.update()
            await asyncio.sleep(BEAT_INTERVAL)

    task = asyncio.create_task(beat())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class _WorkerProcessMetrics:
    """This worker's memory, CPU time and open files, read from ``/proc`` by the library's
    process collector and kept as gauges the multiprocess mode can sum per ``pid``."""

    def __init__(self) -> None:
        self._collector = ProcessCollector(registry=None)
        self._gauges = {
            "process_resident_memory_bytes": Gauge(
                "wopibridge_worker_resident_memory_bytes",
                "Resident memory of each worker process.",
                registry=None,
                multiprocess_mode="liveall",
            ),
            "process_cpu_seconds_total": Gauge(
                "wopibridge_worker_cpu_seconds",
                "CPU time used by each worker process.",
                registry=None,
                multiprocess_mode="liveall",
            ),
            "process_open_fds": Gauge(
                "wopibridge_worker_open_fds",
                "Open file descriptors of each worker process.",
                registry=None,
                multiprocess_mode="liveall",
            ),
        }

    def update(self) -> None:
        for family in self._collector.collect():
            for sample in family.samples:
                gauge = self._gauges.get(sample.name)
                if gauge is not None:
                    gauge.set(sample.value)
