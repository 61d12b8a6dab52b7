"""One structured log line per request, and the request metrics.

aiohttp's own access log prints the query string, which carries ``access_token``; it is switched
off and replaced by this middleware, which logs the path only, the operation, the status, the
duration and the file id. Tokens and secrets never reach the log.
"""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from wopibridge import keys
from wopibridge.wopi.routes import operation_name

log = logging.getLogger("wopibridge.access")


def _operation(request: web.Request) -> tuple[str, str]:
    path = request.path
    if path.startswith("/wopi/files/"):
        rest = path[len("/wopi/files/") :]
        file_id, _, tail = rest.partition("/")
        override = request.headers.get("X-WOPI-Override")
        return operation_name(request.method, tail, override), file_id
    return path, ""


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        operation, file_id = _operation(request)
        # the open endpoints name the file they resolved (the query has only its path)
        file_id = request.get(keys.FILE_ID) or file_id
        request.app[keys.METRICS].observe(operation, status, elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info(
                json.dumps(
                    {
                        "method": request.method,
                        "path": request.path,
                        "op": operation,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "file_id": file_id,
                    }
                )
            )


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a request line over the size limit, a broken
    header) at ERROR with a traceback and the first bytes of the offending line, which may
    start an access token. Anyone can send such a request, so it is the client's fault, not
    the server's: the record becomes one WARNING line naming the error class, nothing more.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "malformed request from %s refused (%s, HTTP %d)"
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.args = (peer, type(exc).__name__, exc.code)
            record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install :class:`MalformedRequestFilter` on aiohttp's server logger (once)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestFilter())
