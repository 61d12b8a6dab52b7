"""``create_app(settings)``: the whole server wired from its settings, nothing at import time.

Everything is routed on this one application, with no sub-applications, so handlers read the
app's state from ``request.app``; ``request.config_dict`` would build a chain of mappings on
every access, and it sat on every WOPI request several times.
"""

from __future__ import annotations

from aiohttp import web

from wopibridge import keys
from wopibridge.bridge import setup_bridge
from wopibridge.config import Settings
from wopibridge.errors import error_middleware
from wopibridge.opening.wiring import setup_editors
from wopibridge.ops import endpoints, status
from wopibridge.ops.accesslog import access_log
from wopibridge.ops.metrics import Metrics
from wopibridge.ops.workers import worker_ctx
from wopibridge.resources import CONTEXTS
from wopibridge.security.proof.check import PROOF_SOURCE, check_proof, proof_keys_ctx
from wopibridge.wopi import routes as wopi_routes


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[access_log, error_middleware],
        client_max_size=1024 * 1024,
        # An access token carrying a sealed Reva token runs to a few kilobytes, in the query
        # (the request line) or in Authorization; allow twice aiohttp's default for both.
        handler_args={"max_field_size": 16384, "max_line_size": 16384},
    )
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = Metrics()
    app.cleanup_ctx.extend(CONTEXTS)
    if settings.server.workers > 1:
        app.cleanup_ctx.append(worker_ctx)
    app.cleanup_ctx.append(proof_keys_ctx)
    endpoints.add_routes(app)
    status.add_routes(app)
    setup_bridge(app)  # before the editors: the app registry lists the bridged apps too
    setup_editors(app)
    app[keys.CONFLICTS].kept.on_drop = app[keys.METRICS].count_kept_dropped
    app[PROOF_SOURCE] = app[keys.DISCOVERY]
    wopi_routes.add_routes(app, check_proof)
    return app
