"""Lock stores, chosen by the topology of ``locks.url`` from an explicit table."""

from __future__ import annotations

from wopibridge.config.redisurl import parse_lock_url
from wopibridge.locks.base import LockResult, LockStore
from wopibridge.locks.client import RedisConnection
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.locks.redis import RedisLockStore

__all__ = [
    "LockResult",
    "LockStore",
    "MemoryLockStore",
    "RedisConnection",
    "RedisLockStore",
    "open_lock_store",
]


def open_lock_store(
    url: str, prefix: str = "wopibridge:", min_replicas: int = 0, timeout: float = 3.0
) -> LockStore:
    target = parse_lock_url(url)
    if target.topology == "memory":
        return MemoryLockStore()
    return RedisLockStore(RedisConnection(target, timeout), prefix, min_replicas)
