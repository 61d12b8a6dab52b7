"""Everything the app opens and closes, as ``cleanup_ctx`` generators.

Setup runs in order at start, teardown in reverse at stop, and a teardown runs only if its
setup succeeded. Nothing is opened at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, web

from wopibridge import keys
from wopibridge.errors import Unavailable
from wopibridge.locks import MemoryLockStore, RedisConnection, RedisLockStore
from wopibridge.security.secrets import load_secrets
from wopibridge.security.tokens import TokenCodec
from wopibridge.storage.factory import build_registry

log = logging.getLogger("wopibridge")


async def security_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    app[keys.SECRETS] = secrets = load_secrets(settings)
    app[keys.TOKENS] = TokenCodec(secrets.token_secret, settings.security.token_ttl)
    yield


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session for every outgoing call (discovery, editors, WebDAV)."""
    session = ClientSession(
        cookie_jar=DummyCookieJar(), timeout=ClientTimeout(total=None, sock_connect=10)
    )
    app[keys.HTTP] = session
    yield
    await session.close()


async def locks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The lock store and, with Redis, the one client it shares with the bridge state."""
    settings = app[keys.SETTINGS].locks
    target = settings.target
    if target.topology == "memory":
        app[keys.REDIS] = None
        app[keys.LOCKS] = memory = MemoryLockStore()
        yield
        await memory.close()
        return
    redis = RedisConnection(target, settings.timeout)
    store = RedisLockStore(redis, settings.prefix, settings.min_replicas)
    try:
        await store.ping()
    except Unavailable as exc:
        log.warning("%s; starting anyway, /ready reports it", exc.message)
    app[keys.REDIS] = redis
    app[keys.LOCKS] = store
    yield
    await store.close()


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every configured storage (``storage.root`` plus ``[storages.<name>]``), on the shared
    HTTP session; the sealing key for users' storage credentials derives from the token secret."""
    settings = app[keys.SETTINGS]
    registry = build_registry(settings, app[keys.HTTP], app[keys.SECRETS].token_secret)
    for storage in registry:
        await storage.start()
    app[keys.STORAGES] = registry
    yield
    await registry.close()


CONTEXTS = (security_ctx, http_ctx, locks_ctx, storage_ctx)
