"""Operators' endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from wopibridge import keys
from wopibridge.errors import Unavailable
from wopibridge.ops.redismetrics import render_redis
from wopibridge.ops.workers import all_metrics


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers. Depends on nothing on purpose."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: the lock store and every storage answer; 503 names what does not."""
    app = request.app
    checks = {"locks": app[keys.LOCKS].ping()}
    for storage in app[keys.STORAGES]:
        checks[f"storage:{storage.name}"] = storage.check()
    failures: dict[str, str] = {}
    results = await asyncio.gather(
        *(asyncio.wait_for(check, 5) for check in checks.values()), return_exceptions=True
    )
    for name, result in zip(checks, results, strict=True):
        if isinstance(result, Unavailable):
            failures[name] = result.message
        elif isinstance(result, TimeoutError):
            failures[name] = "no answer within 5 s"
        elif isinstance(result, BaseException):
            failures[name] = type(result).__name__
    body: dict[str, object] = {"editors": _editors(request.app)}
    redis = app[keys.REDIS]
    if redis is not None:
        body["redis"] = redis.describe()
    if failures:
        return web.json_response({"status": "unavailable", "failing": failures, **body}, status=503)
    return web.json_response({"status": "ready", **body})


def _editors(app: web.Application) -> dict[str, str]:
    """Each editor's discovery state: ``ok`` or why it is missing. Editors do not make the
    server unready: files open with the others."""
    cache = app.get(keys.DISCOVERY)
    if cache is None:
        return {}
    return {f"discovery:{name}": state for name, state in cache.status().items()}


async def metrics(request: web.Request) -> web.Response:
    text = all_metrics(request.app).render() + render_redis(request.app[keys.REDIS])
    return web.Response(text=text, content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
