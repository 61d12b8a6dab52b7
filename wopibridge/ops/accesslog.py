"""One log line per request, its metrics and, with tracing on, its server span.

aiohttp's own access log prints the query string, which carries ``access_token``; it is switched
off and replaced by this middleware, which logs the path only (percent-encoded, so a line stays
one line in the text format), the operation, the status, the duration, the file id and, when
tracing, the trace id. Tokens and secrets never reach the log or the span.

The same middleware answers a handler's failure (:func:`wopibridge.errors.failure_response`):
one layer around every request instead of two, each of which aiohttp wraps in one more.

Two middlewares, picked once at start: :func:`access_log` when tracing is off, so that untraced
requests pay nothing for it, and :func:`traced_access_log` otherwise.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from wopibridge.errors import failure_response
from wopibridge.instruments import INSTRUMENTS
from wopibridge.ops.logs import StderrHandler
from wopibridge.ops.metrics import REQUEST_METRICS, operation_of
from wopibridge.security.keys import FILE_ID

log = logging.getLogger("wopibridge.access")


def _record(
    request: web.Request,
    operation: str,
    file_id: str,
    status: int,
    elapsed: float,
    trace_id: str = "",
) -> None:
    request.app[REQUEST_METRICS].observe(operation, status, elapsed)
    # the open endpoints name the file they resolved (their query has only its path)
    file_id = request.get(FILE_ID) or file_id
    if log.isEnabledFor(logging.INFO):
        path = request.rel_url.raw_path
        ms = round(elapsed * 1000, 2)
        fields = {
            "method": request.method,
            "path": path,
            "op": operation,
            "status": status,
            "ms": ms,
            "file_id": file_id,
        }
        if trace_id:
            fields["trace_id"] = trace_id
        handlers = log.handlers
        if handlers and isinstance(handlers[0], StderrHandler):
            # the server's own handler: the line is written without a LogRecord
            message = f"{request.method} {path} {operation} {status} {ms:.2f}ms"
            handlers[0].write_line(log.name, message, fields)
        else:
            log.info(
                "%s %s %s %d %.2fms", request.method, path, operation, status, ms, extra=fields
            )


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception as exc:
            response = failure_response(request, exc)
        status = response.status
        return response
    finally:
        operation, file_id = operation_of(request)
        _record(request, operation, file_id, status, time.perf_counter() - started)


@web.middleware
async def traced_access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """:func:`access_log` inside a server span that continues the caller's ``traceparent``."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind, Status, StatusCode, use_span

    tracer = request.app[INSTRUMENTS].tracer
    assert tracer is not None
    started = time.perf_counter()
    operation, file_id = operation_of(request)
    attributes: dict[str, str] = {"http.request.method": request.method}
    if file_id:
        attributes["wopi.file_id"] = file_id
    resource = request.match_info.route.resource
    if resource is not None:
        attributes["http.route"] = resource.canonical
    span = tracer.start_span(
        operation,
        context=propagate.extract(request.headers),
        kind=SpanKind.SERVER,
        attributes=attributes,
    )
    status = 500
    with use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                status = exc.status
                raise
            except Exception as exc:
                response = failure_response(request, exc)
            status = response.status
            return response
        finally:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            trace_id = format(span.get_span_context().trace_id, "032x")
            _record(request, operation, file_id, status, time.perf_counter() - started, trace_id)


def request_middleware(traced: bool) -> Middleware:
    return traced_access_log if traced else access_log
