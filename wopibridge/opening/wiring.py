"""Wiring of the editor layer and the open endpoints into the application.

:func:`setup_editors` is called once by ``create_app``. It builds the app registry from
``[apps.<name>]`` right away (so a bad table stops the server at start with one line) and the
WOPI hooks from it, adds a cleanup context that attaches the shared ``ClientSession``, loads
discovery in the background (an unreachable editor is not fatal) and refreshes it, and adds the
open routes: ``/wopi/iop/openinapp``, ``/wopi/iop/new``, ``/wopi/iop/kept``, ``/wopi/open``, the
host page and the versions page (``FileVersionUrl``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from wopibridge.apps.discovery import DiscoveryCache
from wopibridge.apps.hooks import EditorHooks
from wopibridge.apps.keys import DISCOVERY, EDITORS, EDITORS_HTTP
from wopibridge.apps.registry import AppContext, SessionHolder, build_registry
from wopibridge.bridge.keys import BRIDGE_EDITORS
from wopibridge.config import SETTINGS
from wopibridge.instruments import INSTRUMENTS
from wopibridge.locks.keys import LOCKS
from wopibridge.opening import history, kept, native, reva, revanew, versionopen
from wopibridge.opening.common import IOP_FAILURES
from wopibridge.opening.history import VERSION_PAGES, VersionPages
from wopibridge.security.failures import FailureLog
from wopibridge.storage.factory import HTTP, file_locks
from wopibridge.wopi.hooks import HOOKS
from wopibridge.wopi.saves.keeper import CONFLICTS, ConflictKeeper
from wopibridge.wopi.saves.quota import KeepLimits

#: The editor hooks as built here, for their teardown (``HOOKS`` holds them as the Protocol).
EDITOR_HOOKS: web.AppKey[EditorHooks] = web.AppKey("editor_hooks", EditorHooks)

#: How long the start waits for the first discovery fetch before serving anyway.
STARTUP_DISCOVERY_WAIT = 3.0


def setup_editors(app: web.Application) -> None:
    settings = app[SETTINGS]
    holder = SessionHolder()
    cache = DiscoveryCache()
    app[EDITORS_HTTP] = holder
    app[DISCOVERY] = cache
    bridged = app.get(BRIDGE_EDITORS, {})
    registry = build_registry(settings, AppContext(settings, holder, cache), prebuilt=bridged)
    app[EDITORS] = registry
    site = settings.server.public_url
    app[VERSION_PAGES] = pages = VersionPages(app)
    app[HOOKS] = app[EDITOR_HOOKS] = EditorHooks(
        registry, lambda storage: file_locks(storage, app[LOCKS], site), pages.url
    )
    recovery = settings.recovery
    app[CONFLICTS] = ConflictKeeper(
        settings.server.state_dir / "recovery",
        limits=KeepLimits(recovery.max_bytes, recovery.max_bytes_per_user, recovery.max_age),
        instruments=app.get(INSTRUMENTS),
    )
    app.cleanup_ctx.append(_kept_copies_ctx)
    if aiohttp_jinja2.APP_KEY not in app:
        aiohttp_jinja2.setup(
            app, loader=jinja2.PackageLoader("wopibridge", "templates"), autoescape=True
        )
    app[IOP_FAILURES] = FailureLog("iop secret")
    app.cleanup_ctx.append(_editors_ctx)

    app.router.add_post("/wopi/open", native.open_file)
    app.router.add_get("/wopi/host", native.host_page)
    app.router.add_get("/wopi/history", history.history_page)
    app.router.add_post(
        "/wopi/files/{file_id}/versions/{version_id}/open", versionopen.open_version
    )
    reva.add_routes(app)
    revanew.add_routes(app)
    kept.add_routes(app)


async def _kept_copies_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sweep what a crash left in the recovery folder, then expire kept copies as they age."""
    keeper = app[CONFLICTS]
    await keeper.start()
    upkeep = asyncio.create_task(keeper.run())
    try:
        yield
    finally:
        upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep
        keeper.close()


async def _editors_ctx(app: web.Application) -> AsyncIterator[None]:
    own: aiohttp.ClientSession | None = None
    session = app.get(HTTP)
    if session is None:  # an application assembled without the shared session
        session = own = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    app[EDITORS_HTTP].attach(session)
    cache = app[DISCOVERY]
    cache.attach(session)
    first = asyncio.create_task(cache.refresh_all())
    await asyncio.wait({first}, timeout=STARTUP_DISCOVERY_WAIT)
    refresher = asyncio.create_task(cache.run())
    try:
        yield
    finally:
        for task in (first, refresher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app[EDITOR_HOOKS].close()  # lock files still queued are written or removed
        if own is not None:
            await own.close()
