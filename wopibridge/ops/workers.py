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
whole server with that error. SIGTERM or SIGINT to the supervisor stops the workers
gracefully (each saves its bridged documents) and then the supervisor. Workers run in their
own process group, so Ctrl+C in a terminal reaches the supervisor alone and each worker is
told to stop exactly once. A worker whose supervisor vanished (SIGKILL) stops by itself.

Every worker counts its own requests and writes them to ``<state_dir>/workers/`` every
second; ``/metrics`` on any worker answers the sum, so counters never go backwards whichever
worker a scrape reaches. A worker killed outright loses at most its last second of counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from wopibridge import keys
from wopibridge.config import ConfigError, Settings
from wopibridge.ops.metrics import Metrics, Snapshot
from wopibridge.security.secrets import load_secrets

log = logging.getLogger("wopibridge.workers")

#: Where the workers of a server leave their counters; set on each worker's app.
METRICS_DIR: web.AppKey[Path] = web.AppKey("worker_metrics_dir", Path)
#: The supervisor's pid, taken right after the fork: by the time the app starts, the
#: supervisor may already be gone and the worker adopted by another process.
SUPERVISOR: web.AppKey[int] = web.AppKey("worker_supervisor", int)

SNAPSHOT_INTERVAL = 1.0
#: A worker that dies sooner than this after its start is replaced only after a pause.
QUICK_DEATH = 5.0
CONFIG_ERROR_EXIT = 2


def metrics_dir(settings: Settings) -> Path:
    return settings.server.state_dir / "workers"


def serve_workers(settings: Settings, make_app: Callable[[], web.Application]) -> int:
    """Run ``settings.server.workers`` workers on one port until told to stop.

    Raises ``OSError`` when the port cannot be bound and ``ConfigError`` when a secret cannot
    be read or generated, before any worker starts.
    """
    load_secrets(settings)
    shared = metrics_dir(settings)
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True)
    claim = _claim_port(settings.server.host, settings.server.port)
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
    stopping = False
    exit_code = 0

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

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
    app = make_app()
    app[SUPERVISOR] = supervisor
    try:
        web.run_app(
            app,
            host=settings.server.host,
            port=settings.server.port,
            reuse_port=True,
            access_log=None,
            print=lambda _banner: log.info("worker listening"),
        )
    except ConfigError as exc:
        log.error("%s", exc)
        return CONFIG_ERROR_EXIT
    return 0


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx of a worker: its counters written for the others, its supervisor watched."""
    folder = metrics_dir(app[keys.SETTINGS])
    folder.mkdir(parents=True, exist_ok=True)
    app[METRICS_DIR] = folder
    own = folder / f"{os.getpid()}.json"
    supervisor = app.get(SUPERVISOR, os.getppid())

    async def beat() -> None:
        while True:
            if os.getppid() != supervisor:
                log.warning("the supervisor is gone; stopping this worker")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            _write_snapshot(own, app[keys.METRICS].snapshot())

    task = asyncio.create_task(beat())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    _write_snapshot(own, app[keys.METRICS].snapshot())


def _write_snapshot(path: Path, snapshot: Snapshot) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(snapshot))
    os.replace(temp, path)


def all_metrics(app: web.Application) -> Metrics:
    """This worker's live counters plus the last ones every other worker wrote, dead workers
    included (their requests were answered; dropping them would make counters go back)."""
    own = app[keys.METRICS]
    folder = app.get(METRICS_DIR)
    if folder is None:
        return own
    snapshots = [own.snapshot()]
    mine = f"{os.getpid()}.json"
    for path in folder.glob("*.json"):
        if path.name == mine:
            continue
        with contextlib.suppress(OSError, ValueError):
            snapshots.append(json.loads(path.read_text()))
    return Metrics.combined(snapshots)
