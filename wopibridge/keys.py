"""Every application and request key the layers share, typed, in one place (aiohttp's ``AppKey``).

Keys private to one layer stay in it (``wopi.hooks.HOOKS``, ``bridge.keys``); the types are
imported for checking only, so this module imports nothing of the package at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import ClientSession, TraceConfig, web

if TYPE_CHECKING:
    from wopibridge.apps.discovery import DiscoveryCache
    from wopibridge.apps.registry import AppRegistry, SessionHolder
    from wopibridge.config import Settings
    from wopibridge.instruments import Instruments
    from wopibridge.locks.base import LockStore
    from wopibridge.locks.client import RedisConnection
    from wopibridge.security.secrets import Secrets
    from wopibridge.security.tokens import AccessToken, TokenCodec
    from wopibridge.storage.factory import MeshRegistry
    from wopibridge.wopi.saves.keeper import ConflictKeeper

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
TOKENS: web.AppKey[TokenCodec] = web.AppKey("tokens")
LOCKS: web.AppKey[LockStore] = web.AppKey("locks")
#: The Redis client behind the locks and the bridge state; ``None`` with ``memory://``.
REDIS: web.AppKey[RedisConnection | None] = web.AppKey("redis")
STORAGES: web.AppKey[MeshRegistry] = web.AppKey("storages")
#: Metric families and tracer (see :mod:`wopibridge.instruments`).
INSTRUMENTS: web.AppKey[Instruments] = web.AppKey("instruments")
HTTP: web.AppKey[ClientSession] = web.AppKey("http")
#: Added to every outgoing HTTP session: client spans and ``traceparent`` (empty when off).
TRACE_CONFIGS: web.AppKey[list[TraceConfig]] = web.AppKey("trace_configs")

#: The configured editors, their discovery documents and their HTTP session holder.
EDITORS: web.AppKey[AppRegistry] = web.AppKey("editors")
DISCOVERY: web.AppKey[DiscoveryCache] = web.AppKey("discovery")
EDITORS_HTTP: web.AppKey[SessionHolder] = web.AppKey("editors_http")
#: Where refused saves are kept (conflict copies, recovery folder).
CONFLICTS: web.AppKey[ConflictKeeper] = web.AppKey("conflicts")

ACCESS: web.RequestKey[AccessToken] = web.RequestKey("access")
FILE_ID: web.RequestKey[str] = web.RequestKey("file_id")
