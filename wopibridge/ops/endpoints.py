"""Operators' endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web

from wopibridge.apps.keys import DISCOVERY
from wopibridge.config import SETTINGS
from wopibridge.errors import Unavailable
from wopibridge.jsonio import json_response
from wopibridge.locks.keys import LOCKS, REDIS
from wopibridge.ops.drain import DRAIN
from wopibridge.ops.metrics import metrics
from wopibridge.storage.factory import STORAGES, lock_modes


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers. Depends on nothing on purpose."""
    return json_response({"status": "ok"})


async def run_checks(app: web.Application) -> dict[str, str]:
    """Ask the lock store and every storage, at once, 5 s each: ``ok`` or why not, per name."""
    checks = {"locks": app[LOCKS].ping()}
    for storage in app[STORAGES]:
        checks[f"storage:{storage.name}"] = storage.check()
    results = await asyncio.gather(
        *(asyncio.wait_for(check, 5) for check in checks.values()), return_exceptions=True
    )
    states: dict[str, str] = {}
    for name, result in zip(checks, results, strict=True):
        if isinstance(result, Unavailable):
            states[name] = result.message
        elif isinstance(result, TimeoutError):
            states[name] = "no answer within 5 s"
        elif isinstance(result, BaseException):
            states[name] = type(result).__name__
        else:
            states[name] = "ok"
    return states


async def ready(request: web.Request) -> web.Response:
    """Readiness: the lock store and every storage answer. Lists what it checked (``checks``);
    503 names what does not answer (``failing``), or says the instance is draining: it is
    stopping and still answers, but should get no new work."""
    drain = request.app.get(DRAIN)
    if drain is not None and drain.draining:
        return json_response({"status": "draining"}, status=503)
    checks = await run_checks(request.app)
    failures = {name: state for name, state in checks.items() if state != "ok"}
    apps = _editors(request.app)
    warnings = await asyncio.to_thread(_low_space, request.app)
    extra: dict[str, object] = {"warnings": warnings} if warnings else {}
    redis = request.app.get(REDIS)
    if redis is not None:
        extra["redis"] = redis.describe()
    modes = lock_modes(request.app[STORAGES])
    if modes:  # where WOPI locks are held at the owner's storage, or why not
        extra["owner_locks"] = modes
    if failures:
        return json_response(
            {
                "status": "unavailable",
                "failing": failures,
                "checks": checks,
                "editors": apps,
                **extra,
            },
            status=503,
        )
    return json_response({"status": "ready", "checks": checks, "editors": apps, **extra})


def _folders(app: web.Application) -> dict[str, Path]:
    """The folders on this machine that saves write to: the state folder (recovery copies,
    indexes) and each local storage's root, read from the settings."""
    settings = app[SETTINGS]
    folders = {"state": settings.server.state_dir, "data:local": settings.storage.root}
    for name, table in settings.storages.items():
        if table.get("type") == "local" and table.get("root"):
            folders[f"data:{name}"] = Path(str(table["root"]))
    return folders


def _low_space(app: web.Application) -> dict[str, str]:
    """A warning per folder with less than ``server.min_free_space`` free bytes. Low space does
    not make the server unready (saves elsewhere still work); a full disk answers 507."""
    limit = app[SETTINGS].server.min_free_space
    warnings: dict[str, str] = {}
    for name, folder in _folders(app).items():
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        free = st.f_bavail * st.f_frsize
        if free < limit:
            warnings[name] = f"{folder}: {free} bytes free, below {limit}"
    return warnings


def _editors(app: web.Application) -> dict[str, str]:
    """Each editor's discovery state: ``ok`` or why it is missing. Editors do not make the
    server unready: files open with the others."""
    cache = app.get(DISCOVERY)
    if cache is None:
        return {}
    return {f"discovery:{name}": state for name, state in cache.status().items()}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
