"""The lock layer's keys on the app: the lock store and the Redis client behind it."""

from __future__ import annotations

from aiohttp import web

from wopibridge.locks.base import LockStore
from wopibridge.locks.client import RedisConnection

LOCKS: web.AppKey[LockStore] = web.AppKey("locks")
#: The Redis client behind the locks and the bridge state; ``None`` with ``memory://``.
REDIS: web.AppKey[RedisConnection | None] = web.AppKey("redis")
