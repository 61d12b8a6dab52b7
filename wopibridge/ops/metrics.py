"""Request metrics and the ``/metrics`` exposition, on prometheus_client.

Each request is counted once under a bounded label set: the operation named by the route table
(:func:`operation_of`; ``other`` for anything else, unknown paths included) and the status
class. What a client sends never becomes a label value, so the exposition cannot be grown or
injected into by requests.

With several workers (``server.workers``), prometheus_client's multiprocess mode keeps every
worker's values in files under ``<state_dir>/metrics`` (see :mod:`.workers`) and any worker
answers the sum; a single process exposes its registry and its process metrics directly.
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from wopibridge.instruments import INSTRUMENTS, OTHER, Instruments
from wopibridge.wopi.routes import operation_name

#: Operations of the routes outside ``/wopi/files``, by the route's path in the route table.
ROUTE_OPERATIONS = {
    "/health": "Health",
    "/ready": "Ready",
    "/metrics": "Metrics",
    "/wopi/open": "Open",
    "/wopi/host": "HostPage",
    "/wopi/history": "VersionHistory",
    "/wopi/iop/openinapp": "OpenInApp",
    "/wopi/bridge/open": "BridgeOpen",
    "/wopi/bridge/{docid}": "BridgeSave",
    "/wopi/iop/new": "NewInApp",
    "/wopi/iop/kept": "KeptCopies",
    "/wopi/templates/{ref}": "TemplateSource",
    "/": "Status",
    "/docs": "Docs",
}
WOPI_FILES = "/wopi/files/{file_id}"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def operation_of(request: web.Request) -> tuple[str, str]:
    """The request's operation and WOPI file id (``""`` outside ``/wopi/files``).

    Read from the matched route, never from the raw path: a path the router does not know is
    ``other``, whatever it contains.
    """
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: 404, or 405 on a known path
        return OTHER, ""
    canonical = resource.canonical
    if canonical.startswith(WOPI_FILES):
        tail = canonical.removeprefix(WOPI_FILES).partition("/")[2]
        name = operation_name(request.method, tail, request.headers.get("X-WOPI-Override"))
        return (OTHER if name == "Unknown" else name), request.match_info.get("file_id", "")
    return ROUTE_OPERATIONS.get(canonical, OTHER), ""


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else OTHER


class RequestMetrics:
    """Observes answered requests; the labelled children are looked up once per label set."""

    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments
        self._children: dict[tuple[str, int], tuple[Counter, Histogram, Counter | None]] = {}

    def observe(self, operation: str, status: int, seconds: float) -> None:
        children = self._children.get((operation, status))
        if children is None:
            labels = (operation, status_class(status))
            conflict = self._instruments.conflicts.labels(operation) if status == 409 else None
            children = (
                self._instruments.requests.labels(*labels),
                self._instruments.request_seconds.labels(*labels),
                conflict,
            )
            self._children[(operation, status)] = children
        requests, durations, conflicts = children
        requests.inc()
        durations.observe(seconds)
        if conflicts is not None:
            conflicts.inc()


#: This app's request metrics (set by :func:`setup_metrics`).
REQUEST_METRICS: web.AppKey[RequestMetrics] = web.AppKey("request_metrics", RequestMetrics)


def setup_metrics(app: web.Application, instruments: Instruments) -> None:
    """The instruments on the app, with the process metrics when this is the only process."""
    app[INSTRUMENTS] = instruments
    app[REQUEST_METRICS] = RequestMetrics(instruments)
    if not multiprocess_dir():
        ProcessCollector(registry=instruments.registry)
        PlatformCollector(registry=instruments.registry)
        GCCollector(registry=instruments.registry)


def multiprocess_dir() -> str:
    """The folder of prometheus_client's multiprocess mode, ``""`` in a single process."""
    return os.environ.get(MULTIPROCESS_ENV, "")


def exposition(app: web.Application) -> bytes:
    folder = multiprocess_dir()
    if not folder:
        return generate_latest(app[INSTRUMENTS].registry)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def metrics(request: web.Request) -> web.Response:
    body = exposition(request.app)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
