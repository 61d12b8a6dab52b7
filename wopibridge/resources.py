"""Everything the app opens and closes, as ``cleanup_ctx`` generators.

Setup runs in order at start, teardown in reverse at stop, and a teardown runs only if its
setup succeeded. Nothing is opened at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, web

from wopibridge.config import SETTINGS
from wopibridge.errors import Unavailable
from wopibridge.instruments import INSTRUMENTS, TRACE_CONFIGS
from wopibridge.locks import MemoryLockStore, RedisConnection, RedisLockStore
from wopibridge.locks.handles import RedisHandleStore
from wopibridge.locks.instrumented import InstrumentedLockStore
from wopibridge.locks.keys import LOCKS, REDIS
from wopibridge.security.handles import HandleStore, MemoryHandleStore
from wopibridge.security.keys import SECRETS, TOKENS
from wopibridge.security.secrets import load_secrets
from wopibridge.security.tokens import TokenCodec
from wopibridge.storage.factory import HTTP, STORAGES, build_registry, file_locks
from wopibridge.wopi.desktoplocks import sweep_stale_lock_files

log = logging.getLogger("wopibridge")


async def security_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[SECRETS] = secrets = load_secrets(settings)
    # Short-token handles are kept where the locks are: in process here, or in Redis on the
    # lock store's client, attached by locks_ctx.
    handles: HandleStore | None = None
    if settings.security.short_tokens and settings.locks.target.topology == "memory":
        handles = MemoryHandleStore()
    app[TOKENS] = TokenCodec(secrets.token_secret, settings.security.token_ttl, handles=handles)
    yield
    if handles is not None:
        await handles.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session for every outgoing call (discovery, editors, WebDAV); with tracing
    on, each call is a client span and carries ``traceparent``."""
    session = ClientSession(
        cookie_jar=DummyCookieJar(),
        timeout=ClientTimeout(total=None, sock_connect=10),
        trace_configs=app[TRACE_CONFIGS],
    )
    app[HTTP] = session
    yield
    await session.close()


async def locks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The lock store and, with Redis, the one client it shares with the bridge state."""
    settings = app[SETTINGS].locks
    target = settings.target
    if target.topology == "memory":
        app[REDIS] = None
        app[LOCKS] = memory = InstrumentedLockStore(MemoryLockStore(), app[INSTRUMENTS])
        yield
        await memory.close()
        return
    redis = RedisConnection(target, settings.timeout, app[INSTRUMENTS])
    store = InstrumentedLockStore(
        RedisLockStore(redis, settings.prefix, settings.min_replicas), app[INSTRUMENTS]
    )
    try:
        await store.ping()
    except Unavailable as exc:
        log.warning("%s; starting anyway, /ready reports it", exc.message)
    app[REDIS] = redis
    app[LOCKS] = store
    if app[SETTINGS].security.short_tokens:  # on the same client: closed with the store
        app[TOKENS].handles = RedisHandleStore(redis, settings.prefix)
    yield
    await store.close()


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every configured storage (``storage.root`` plus ``[storages.<name>]``), on the shared
    HTTP session; the sealing key for users' storage credentials derives from the token secret."""
    settings = app[SETTINGS]
    registry = build_registry(settings, app[HTTP], app[SECRETS].token_secret, app[INSTRUMENTS])
    for storage in registry:
        await storage.start()
    app[STORAGES] = registry
    yield
    await registry.close()


#: Seconds between two sweeps of lock files no WOPI lock backs, on every instance.
LOCK_FILE_SWEEP_SECONDS: web.AppKey[float] = web.AppKey("lock_file_sweep_seconds", float)
SWEEP_EVERY = 120.0


async def lock_files_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sweep, in the background, at start and then every :data:`SWEEP_EVERY` seconds, the
    desktop lock files of ours that no WOPI lock backs any more: after a crash, a restart that
    lost in-process locks, a WOPI lock that expired without an Unlock, or a lock file another
    instance wrote for a lock that is gone, desktop users would otherwise see the documents as
    in use for good. Every instance sweeps, so none depends on another being up."""
    site = app[SETTINGS].server.public_url
    every = app.get(LOCK_FILE_SWEEP_SECONDS, SWEEP_EVERY)

    async def sweep() -> None:
        for storage in app[STORAGES]:
            locks = file_locks(storage, app[LOCKS], site)
            try:
                await sweep_stale_lock_files(storage, locks)
            except Unavailable as exc:
                log.warning("storage %s: lock files not swept: %s", storage.name, exc.message)

    async def sweeps() -> None:
        while True:
            try:
                await sweep()
            except Exception:  # pragma: no cover - upkeep must not die
                log.exception("sweeping lock files failed")
            await asyncio.sleep(every)

    task = asyncio.create_task(sweeps())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


CONTEXTS = (security_ctx, http_ctx, locks_ctx, storage_ctx, lock_files_ctx)
