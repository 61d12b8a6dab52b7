"""``create_app(settings)``: the whole server wired from its settings, nothing at import time.

Everything is routed on this one application, with no sub-applications, so handlers read the
app's state from ``request.app``; ``request.config_dict`` would build a chain of mappings on
every access, and it sat on every WOPI request several times.
"""

from __future__ import annotations

from aiohttp import web

from . import iop, keys, ops
from .accesslog import access_log
from .bridge import setup_bridge
from .config import Settings
from .editors import DISCOVERY, setup_editors
from .errors import error_middleware
from .metrics import Metrics
from .proofcheck import PROOF_SOURCE, check_proof, proof_keys_ctx
from .resources import CONTEXTS
from .wopi import routes as wopi_routes
from .workers import worker_ctx


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
    ops.add_routes(app)
    iop.add_routes(app)
    setup_bridge(app)  # before the editors: the app registry lists the bridged apps too
    setup_editors(app)
    app[PROOF_SOURCE] = app[DISCOVERY]
    wopi_routes.add_routes(app, check_proof)
    return app
