"""Building the bridge into an application: editors, routes, state store and save loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from wopibridge.apps.bridged import BridgedEditor
from wopibridge.apps.codimd import CodiMDApp
from wopibridge.apps.etherpad import EtherpadApp
from wopibridge.bridge.docid import derive_key
from wopibridge.bridge.engine import Bridge
from wopibridge.bridge.keys import BRIDGE, BRIDGE_EDITORS
from wopibridge.bridge.memory import MemoryBridgeStore
from wopibridge.bridge.redis import RedisBridgeStore
from wopibridge.bridge.routes import add_routes
from wopibridge.bridge.state import BridgeStore
from wopibridge.config import SETTINGS, Settings
from wopibridge.instruments import INSTRUMENTS, TRACE_CONFIGS
from wopibridge.locks.keys import LOCKS, REDIS
from wopibridge.security.keys import SECRETS
from wopibridge.storage.factory import STORAGES

BRIDGED_KINDS: Mapping[str, Callable[[str, Mapping[str, Any], str], BridgedEditor]] = {
    "etherpad": EtherpadApp.from_config,
    "codimd": CodiMDApp.from_config,
}


def bridged_apps(settings: Settings) -> dict[str, BridgedEditor]:
    """Every configured bridged app by name (these are also ``EditorApp`` objects)."""
    editors: dict[str, BridgedEditor] = {}
    for name, table in settings.apps.items():
        kind = str(table.get("type", name)).lower()
        factory = BRIDGED_KINDS.get(kind)
        if factory is not None:
            editors[name] = factory(name, table, settings.server.public_url)
    return editors


def open_bridge_store(app: web.Application) -> BridgeStore:
    """The bridge state next to the locks: same backend, the same Redis client, its own keys."""
    redis = app[REDIS]
    if redis is None:
        return MemoryBridgeStore()
    locks = app[SETTINGS].locks
    return RedisBridgeStore(redis, locks.prefix, replicas=locks.min_replicas)


def setup_bridge(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[BRIDGE_EDITORS] = bridged_apps(settings)
    add_routes(app)
    app.cleanup_ctx.append(_bridge_context)


async def _bridge_context(app: web.Application) -> AsyncIterator[None]:
    store = open_bridge_store(app)
    timeout = aiohttp.ClientTimeout(total=60, connect=5)
    http = aiohttp.ClientSession(
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=app.get(TRACE_CONFIGS),
    )
    bridge = Bridge(
        editors=app[BRIDGE_EDITORS],
        store=store,
        storages=app[STORAGES],
        locks=app[LOCKS],
        http=http,
        key=derive_key(app[SECRETS].token_secret),
        instruments=app.get(INSTRUMENTS),
    )
    app[BRIDGE] = bridge
    task = asyncio.create_task(bridge.run()) if bridge.editors else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bridge.shutdown()
        await http.close()
        await store.close()
