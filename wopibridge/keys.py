"""Every application and request key, typed, in one place (aiohttp's ``AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

if TYPE_CHECKING:
    from .config import Settings
    from .locks.base import LockStore
    from .metrics import Metrics
    from .secrets import Secrets
    from .storage.registry import StorageRegistry
    from .tokens import AccessToken, TokenCodec

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
TOKENS: web.AppKey[TokenCodec] = web.AppKey("tokens")
LOCKS: web.AppKey[LockStore] = web.AppKey("locks")
STORAGES: web.AppKey[StorageRegistry] = web.AppKey("storages")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

ACCESS: web.RequestKey[AccessToken] = web.RequestKey("access")
FILE_ID: web.RequestKey[str] = web.RequestKey("file_id")
HTTP: web.AppKey[ClientSession] = web.AppKey("http")
