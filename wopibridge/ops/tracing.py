"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` environment variables only.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter or an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and off when
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Spans leave by OTLP over
HTTP/protobuf (``otlp``) or are printed (``console``). Everything else (service name, resource
attributes, sampler, batch sizes, headers, timeouts) is read by the SDK from its own variables.

Off, nothing of the SDK is imported and requests take the untraced path (``Instruments.tracer``
is ``None``). On, every request is a server span named by its WOPI operation, continuing the
caller's ``traceparent``; lock-store and storage calls are child spans
(:class:`wopibridge.instruments.Measure`) and every outgoing HTTP call is a client span that
sends ``traceparent`` (the aiohttp-client instrumentation on each session, queries stripped
from recorded URLs since they may carry keys).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from aiohttp import TraceConfig, web
from yarl import URL

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("wopibridge.tracing")

OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

#: The app's tracer provider, when tracing is on (flushed and shut down at stop).
PROVIDER: web.AppKey[TracerProvider] = web.AppKey("tracer_provider")


def exporters(env: Mapping[str, str]) -> list[str]:
    """The span exporters the variables ask for; empty when tracing is off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [e for e in named if e]
    if "none" in named:
        return []
    if not named and any(env.get(name) for name in OTLP_ENDPOINTS):
        named = ["otlp"]
    return named


def tracer_provider(env: Mapping[str, str]) -> TracerProvider | None:
    """A tracer provider exporting as the variables say, or ``None`` when tracing is off."""
    names = exporters(env)
    if not names:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "wopibridge"}))
    provider = TracerProvider(resource=resource)
    for name in names:
        exporter: SpanExporter
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            log.warning("span exporter %r is not supported; ignored", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("tracing on: spans exported by %s", ", ".join(names))
    return provider


def _url_without_query(url: URL) -> str:
    return str(url.with_query(None).with_fragment(None).with_user(None))


def client_trace_configs(provider: TracerProvider | None) -> list[TraceConfig]:
    """For each outgoing session: a client span per call and ``traceparent`` on it."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [create_trace_config(url_filter=_url_without_query, tracer_provider=provider)]


async def tracing_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: at stop, the spans still queued are sent before the provider closes."""
    yield
    provider = app.get(PROVIDER)
    if provider is not None:
        await asyncio.to_thread(provider.shutdown)
