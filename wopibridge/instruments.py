"""What the server measures and traces: every metric family and the tracer, made once per app.

This module sits at the bottom of the layers (it imports no other wopibridge module), so every
layer can count what only it sees: the bridge its saves, the WOPI layer its conflict copies, a
lock store its Redis reconnects and failovers. One :class:`Instruments` is created by
``create_app`` and lives under :data:`INSTRUMENTS`; a new metric is one more field and one
more line in :meth:`create`.

Label values are never taken from a request: operations come from the route table (``other``
for the rest), status codes are reduced to their class, storages are named by the
configuration. The exposition therefore stays the same size whatever clients send.

Tracing is optional: ``tracer`` is ``None`` unless OpenTelemetry was configured
(:mod:`wopibridge.ops.tracing`), and then :class:`Measure` records the call duration only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from aiohttp import TraceConfig, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import Attributes

#: The operation label of every request outside the route table's known operations.
OTHER = "other"

#: Request latencies: from a cached CheckFileInfo to a large PutFile.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Backend call latencies: a Redis round trip to a slow remote storage.
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


@dataclass(frozen=True, slots=True)
class Instruments:
    """The metric families of one application, registered on ``registry``, and its tracer."""

    registry: CollectorRegistry
    #: Requests answered, by operation and status class (``2xx``...).
    requests: Counter
    #: Request durations, by operation and status class.
    request_seconds: Histogram
    #: Requests answered 409 (lock mismatch or changed file), by operation.
    conflicts: Counter
    #: Lock-store calls, by call (``lock``, ``get``...).
    lock_store_seconds: Histogram
    #: Storage calls, by configured storage name and call (``stat``, ``write``...).
    storage_seconds: Histogram
    #: Bridged documents (CodiMD, Etherpad) this process is saving now.
    open_sessions: Gauge
    #: Bridge saves, by outcome (``saved``, ``conflict_copy``, ``failed``).
    bridge_saves: Counter
    #: Refused saves kept as a copy, by where (``storage`` beside the file, ``recovery``).
    conflict_copies: Counter
    #: Refused saves not kept, or kept copies removed, by reason (``duplicate``, ``quota``,
    #: ``expired``, ``disk_full``).
    kept_copies_dropped: Counter
    #: Previous contents kept as versions by saves and restores.
    versions_kept: Counter
    #: Versions removed by their limits, by reason (``count``, ``age``, ``bytes``).
    versions_dropped: Counter
    #: Redis calls that succeeded after calls had failed to reach Redis, by topology.
    redis_reconnects: Counter
    #: Times the Redis primary in use changed, by topology.
    redis_failovers: Counter
    tracer: Tracer | None = None

    @classmethod
    def create(cls, tracer: Tracer | None = None) -> Instruments:
        """Fresh families on a registry of their own (two apps in one process never clash).

        With ``PROMETHEUS_MULTIPROC_DIR`` set (several workers), prometheus_client keeps the
        values in that folder and the gauge below sums the live processes.
        """
        registry = CollectorRegistry(auto_describe=True)
        ns = "wopibridge"
        request_labels = ("operation", "status_class")
        return cls(
            registry=registry,
            requests=Counter(
                "requests",
                "Requests answered, by operation and status class.",
                request_labels,
                namespace=ns,
                registry=registry,
            ),
            request_seconds=Histogram(
                "request_duration_seconds",
                "Time spent answering requests, by operation and status class.",
                request_labels,
                namespace=ns,
                registry=registry,
                buckets=REQUEST_BUCKETS,
            ),
            conflicts=Counter(
                "conflicts",
                "Requests answered 409 Conflict (lock mismatch, changed file), by operation.",
                ("operation",),
                namespace=ns,
                registry=registry,
            ),
            lock_store_seconds=Histogram(
                "lock_store_duration_seconds",
                "Time spent in lock-store calls, by call.",
                ("call",),
                namespace=ns,
                registry=registry,
                buckets=CALL_BUCKETS,
            ),
            storage_seconds=Histogram(
                "storage_duration_seconds",
                "Time spent in storage calls, by storage and call.",
                ("storage", "call"),
                namespace=ns,
                registry=registry,
                buckets=CALL_BUCKETS,
            ),
            open_sessions=Gauge(
                "open_edit_sessions",
                "Bridged documents (CodiMD, Etherpad) being edited and saved by this server.",
                namespace=ns,
                registry=registry,
                multiprocess_mode="livesum",
            ),
            bridge_saves=Counter(
                "bridge_saves",
                "Bridged documents written back to storage, by outcome.",
                ("outcome",),
                namespace=ns,
                registry=registry,
            ),
            conflict_copies=Counter(
                "conflict_copies",
                "Refused saves kept as a copy, beside the file or in the recovery folder.",
                ("where",),
                namespace=ns,
                registry=registry,
            ),
            kept_copies_dropped=Counter(
                "kept_copies_dropped",
                "Refused saves not kept, or kept copies removed, by reason.",
                ("reason",),
                namespace=ns,
                registry=registry,
            ),
            versions_kept=Counter(
                "versions_kept",
                "Previous contents of files kept as versions.",
                namespace=ns,
                registry=registry,
            ),
            versions_dropped=Counter(
                "versions_dropped",
                "Versions removed by their limits, by reason.",
                ("reason",),
                namespace=ns,
                registry=registry,
            ),
            redis_reconnects=Counter(
                "redis_reconnects",
                "Redis calls that succeeded after calls had failed to reach Redis.",
                ("topology",),
                namespace=ns,
                registry=registry,
            ),
            redis_failovers=Counter(
                "redis_failovers",
                "Times the Redis primary in use changed.",
                ("topology",),
                namespace=ns,
                registry=registry,
            ),
            tracer=tracer,
        )

    def measure(self, histogram: Histogram, name: str, attributes: Attributes = None) -> Timed:
        """A ``with`` block observing its duration on ``histogram`` (a labelled child), inside
        a span called ``name`` when tracing is on."""
        if self.tracer is None:
            return Timed(histogram)
        return Measure(histogram, self.tracer, name, attributes)


class Timed:
    """Times one call, without tracing: the smallest ``with`` block that does, since it runs
    around every storage and lock-store call of every request."""

    __slots__ = ("_histogram", "_started")

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._histogram.observe(time.perf_counter() - self._started)


class Measure(Timed):
    """Times one call inside a child span of the request (tracing on; :class:`Timed` when it
    is off)."""

    __slots__ = ("_attributes", "_name", "_span", "_tracer", "_use")

    def __init__(
        self, histogram: Histogram, tracer: Tracer, name: str, attributes: Attributes
    ) -> None:
        super().__init__(histogram)
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._span: Span | None = None
        self._use: object = None

    def __enter__(self) -> None:
        from opentelemetry.trace import SpanKind, use_span

        self._span = self._tracer.start_span(
            self._name, kind=SpanKind.INTERNAL, attributes=self._attributes
        )
        self._use = use = use_span(self._span, end_on_exit=True)
        use.__enter__()
        super().__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(kind, exc, tb)
        if self._span is not None:
            if exc is not None:
                self._span.set_attribute("error.type", type(exc).__name__)
            self._use.__exit__(kind, exc, tb)  # type: ignore[attr-defined]


#: Metric families and tracer of the app.
INSTRUMENTS: web.AppKey[Instruments] = web.AppKey("instruments")
#: Added to every outgoing HTTP session: client spans and ``traceparent`` (empty when off).
TRACE_CONFIGS: web.AppKey[list[TraceConfig]] = web.AppKey("trace_configs")
