"""Operators' endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from wopibridge import keys
from wopibridge.errors import Unavailable
from wopibridge.ops.workers import all_metrics


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers. Depends on nothing on purpose."""
    return web.json_response({"status": "ok"})


async def run_checks(app: web.Application) -> dict[str, str]:
    """Ask the lock store and every storage, at once, 5 s each: ``ok`` or why not, per name."""
    checks = {"locks": app[keys.LOCKS].ping()}
    for storage in app[keys.STORAGES]:
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
    503 names what does not answer (``failing``)."""
    checks = await run_checks(request.app)
    failures = {name: state for name, state in checks.items() if state != "ok"}
    apps = _editors(request.app)
    if failures:
        return web.json_response(
            {"status": "unavailable", "failing": failures, "checks": checks, "editors": apps},
            status=503,
        )
    return web.json_response({"status": "ready", "checks": checks, "editors": apps})


def _editors(app: web.Application) -> dict[str, str]:
    """Each editor's discovery state: ``ok`` or why it is missing. Editors do not make the
    server unready: files open with the others."""
    cache = app.get(keys.DISCOVERY)
    if cache is None:
        return {}
    return {f"discovery:{name}": state for name, state in cache.status().items()}


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=all_metrics(request.app).render(), content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
