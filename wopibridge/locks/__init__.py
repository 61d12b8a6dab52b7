"""Lock stores, chosen by the scheme of ``locks.url`` from an explicit table."""

from __future__ import annotations

from urllib.parse import urlsplit

from wopibridge.locks.base import LockResult, LockStore
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.locks.redis import RedisLockStore

__all__ = ["LockResult", "LockStore", "MemoryLockStore", "RedisLockStore", "open_lock_store"]


def open_lock_store(url: str, prefix: str = "wopibridge:") -> LockStore:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryLockStore()
    return RedisLockStore.from_url(url, prefix)
