"""Wiring of the editor layer into the application: keys, resources, routes, readiness.

:func:`setup_editors` is called once by ``create_app``. It builds the app registry from
``[apps.<name>]`` right away (so a bad table stops the server at start with one line), adds a
cleanup context that attaches the shared ``ClientSession``, loads discovery in the background
(an unreachable editor is not fatal) and refreshes it, and adds the ``/wopi/open`` and host-page
routes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from wopibridge import keys
from wopibridge.apps.discovery import DiscoveryCache
from wopibridge.apps.registry import AppContext, AppRegistry, SessionHolder, build_registry
from wopibridge.bridge.keys import BRIDGE_EDITORS
from wopibridge.errors import NotFound
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage
from wopibridge.wopi.conflicts import ConflictKeeper
from wopibridge.wopi.desktoplocks import remove_lock_file, write_lock_file

EDITORS: web.AppKey[AppRegistry] = web.AppKey("editors", AppRegistry)
DISCOVERY: web.AppKey[DiscoveryCache] = web.AppKey("discovery", DiscoveryCache)
CONFLICTS: web.AppKey[ConflictKeeper] = web.AppKey("conflicts", ConflictKeeper)
EDITORS_HTTP: web.AppKey[SessionHolder] = web.AppKey("editors_http", SessionHolder)

#: How long the start waits for the first discovery fetch before serving anyway.
STARTUP_DISCOVERY_WAIT = 3.0


def setup_editors(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    holder = SessionHolder()
    cache = DiscoveryCache()
    app[EDITORS_HTTP] = holder
    app[DISCOVERY] = cache
    bridged = app.get(BRIDGE_EDITORS, {})
    app[EDITORS] = build_registry(settings, AppContext(settings, holder, cache), prebuilt=bridged)
    app[CONFLICTS] = ConflictKeeper(settings.server.state_dir / "recovery")
    if aiohttp_jinja2.APP_KEY not in app:
        aiohttp_jinja2.setup(
            app, loader=jinja2.PackageLoader("wopibridge", "templates"), autoescape=True
        )
    app.cleanup_ctx.append(_editors_ctx)

    from wopibridge.opening import native  # the routes need the keys above

    app.router.add_post("/wopi/open", native.open_file)
    app.router.add_get("/wopi/host", native.host_page)


async def _editors_ctx(app: web.Application) -> AsyncIterator[None]:
    own: aiohttp.ClientSession | None = None
    session = app.get(keys.HTTP)
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
        if own is not None:
            await own.close()


def readiness(app: web.Application) -> dict[str, str]:
    """Each editor's discovery state for ``/ready``: ``ok`` or why it is missing. Editors do
    not make the server unready: files open with the others."""
    return {f"discovery:{name}": state for name, state in app[DISCOVERY].status().items()}


#: CheckFileInfo properties the WOPI layer owns; an app's extras never replace them.
_HOST_PROPERTIES = frozenset(
    {
        "BaseFileName",
        "OwnerId",
        "Size",
        "UserId",
        "Version",
        "LastModifiedTime",
        "UserCanWrite",
        "ReadOnly",
        "SupportsLocks",
        "SupportsUpdate",
        "UserCanNotWriteRelative",
    }
)


def editor_file_info(request: web.Request, access: AccessToken, stat: FileStat) -> dict[str, Any]:
    """The CheckFileInfo properties the token's app adds (none for an unknown app)."""
    registry = request.app.get(EDITORS)
    if registry is None or not access.app:
        return {}
    try:
        app = registry.get(access.app)
    except NotFound:
        return {}
    return {
        key: value
        for key, value in app.file_info(access, stat).items()
        if key not in _HOST_PROPERTIES
    }


def configured(app: web.Application, name: str) -> bool:
    """Whether an app of this name is configured (case-insensitive)."""
    registry = app.get(EDITORS)
    return bool(name) and registry is not None and name.lower() in registry.names()


def _lock_files(request: web.Request, access: AccessToken) -> bool:
    registry = request.app.get(EDITORS)
    if registry is None or access.app.lower() not in registry.names():
        return False
    return bool(getattr(registry.get(access.app), "lock_files", False))


async def after_lock(
    request: web.Request, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
) -> None:
    """After a successful WOPI lock by an office editor: announce it to desktop users."""
    if _lock_files(request, access):
        await write_lock_file(storage, backend_id, stat, access.user_name or access.user_id)


async def after_unlock(
    request: web.Request, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
) -> None:
    if _lock_files(request, access):
        await remove_lock_file(storage, backend_id, stat)
