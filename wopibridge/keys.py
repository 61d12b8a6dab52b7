"""Every application and request key, typed, in one place (aiohttp's ``AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

if TYPE_CHECKING:
    from wopibridge.config import Settings
    from wopibridge.locks.base import LockStore
    from wopibridge.ops.metrics import Metrics
    from wopibridge.security.secrets import Secrets
    from wopibridge.security.tokens import AccessToken, TokenCodec
    from wopibridge.storage.registry import StorageRegistry

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
TOKENS: web.AppKey[TokenCodec] = web.AppKey("tokens")
LOCKS: web.AppKey[LockStore] = web.AppKey("locks")
STORAGES: web.AppKey[StorageRegistry] = web.AppKey("storages")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

ACCESS: web.RequestKey[AccessToken] = web.RequestKey("access")
FILE_ID: web.RequestKey[str] = web.RequestKey("file_id")
HTTP: web.AppKey[ClientSession] = web.AppKey("http")
