"""Trace context for calls that do not go through the shared HTTP session (CS3 gRPC).

With tracing on, :func:`grpc_metadata` adds the current span's ``traceparent`` (and
``tracestate``/``baggage`` when set) to a call's gRPC metadata, as the configured OpenTelemetry
propagator writes them; with tracing off there is no current span and nothing is added.
"""

from __future__ import annotations

from opentelemetry import propagate

Metadata = tuple[tuple[str, str], ...]


def grpc_metadata(metadata: Metadata) -> Metadata:
    """``metadata`` plus the propagation headers of the current trace, if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return metadata
    return metadata + tuple((key.lower(), value) for key, value in carrier.items())
