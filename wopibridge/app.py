"""``create_app(settings)``: the whole server wired from its settings, nothing at import time.

Everything is routed on this one application, with no sub-applications, so handlers read the
app's state from ``request.app``; ``request.config_dict`` would build a chain of mappings on
every access, and it sat on every WOPI request several times.
"""

from __future__ import annotations

import os

from aiohttp import web

from wopibridge.apps.keys import DISCOVERY
from wopibridge.bridge import setup_bridge
from wopibridge.config import SETTINGS, Settings
from wopibridge.instruments import INSTRUMENTS, TRACE_CONFIGS, Instruments
from wopibridge.opening.wiring import setup_editors
from wopibridge.ops import endpoints, status, tracing
from wopibridge.ops.accesslog import request_middleware
from wopibridge.ops.drain import setup_drain
from wopibridge.ops.metrics import setup_metrics
from wopibridge.ops.workers import worker_ctx
from wopibridge.resources import CONTEXTS
from wopibridge.security.proof.check import PROOF_SOURCE, check_proof, proof_keys_ctx
from wopibridge.wopi import routes as wopi_routes
from wopibridge.wopi.saves.keeper import CONFLICTS


def create_app(settings: Settings) -> web.Application:
    provider = tracing.tracer_provider(os.environ)
    tracer = provider.get_tracer("wopibridge") if provider is not None else None
    app = web.Application(
        middlewares=[request_middleware(traced=tracer is not None)],
        client_max_size=1024 * 1024,
        # An access token carrying a sealed Reva token runs to a few kilobytes, in the query
        # (the request line) or in Authorization; allow twice aiohttp's default for both.
        handler_args={"max_field_size": 16384, "max_line_size": 16384},
    )
    app[SETTINGS] = settings
    setup_metrics(app, Instruments.create(tracer))
    app[TRACE_CONFIGS] = tracing.client_trace_configs(provider)
    if provider is not None:
        app[tracing.PROVIDER] = provider
    app.cleanup_ctx.append(tracing.tracing_ctx)  # first in, last out: every span gets sent
    app.cleanup_ctx.extend(CONTEXTS)
    if settings.server.workers > 1:
        app.cleanup_ctx.append(worker_ctx)
    app.cleanup_ctx.append(proof_keys_ctx)
    setup_drain(app)
    endpoints.add_routes(app)
    status.add_routes(app)
    setup_bridge(app)  # before the editors: the app registry lists the bridged apps too
    setup_editors(app)
    dropped = app[INSTRUMENTS].kept_copies_dropped
    app[CONFLICTS].kept.on_drop = lambda reason: dropped.labels(reason).inc()
    app[PROOF_SOURCE] = app[DISCOVERY]
    wopi_routes.add_routes(app, check_proof)
    return app
