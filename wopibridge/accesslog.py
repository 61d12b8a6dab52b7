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
from aiohttp.typedefs import Handler

from . import keys
from .wopi.routes import operation_name

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
