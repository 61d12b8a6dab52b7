"""In-process lock store: the single-machine default.

Each operation runs without an ``await`` between its check and its set, so on one event loop it
is atomic by construction. Expired locks are dropped lazily when their key is touched and in
bulk when the table grows, so memory stays bounded by the live locks.
"""

from __future__ import annotations

import time

from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore


class MemoryLockStore:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[str, float]] = {}
        self._now = time.monotonic
        self._sweep_at = 1024

    def _current(self, key: str) -> str:
        entry = self._locks.get(key)
        if entry is None:
            return ""
        lock_id, expires = entry
        if expires <= self._now():
            del self._locks[key]
            return ""
        return lock_id

    def _set(self, key: str, lock_id: str, ttl: float) -> None:
        self._locks[key] = (lock_id, self._now() + ttl)
        if len(self._locks) >= self._sweep_at:
            now = self._now()
            for stale in [k for k, (_, exp) in self._locks.items() if exp <= now]:
                del self._locks[stale]
            self._sweep_at = max(1024, 2 * len(self._locks))

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        current = self._current(key)
        if current and current != lock_id:
            return LockResult(False, current)
        self._set(key, lock_id, ttl)
        return LockResult(True, lock_id)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        current = self._current(key)
        if current != old_lock_id:
            return LockResult(False, current)
        self._set(key, new_lock_id, ttl)
        return LockResult(True, new_lock_id)

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        current = self._current(key)
        if current != lock_id or not current:
            return LockResult(False, current)
        del self._locks[key]
        return LockResult(True, "")

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        current = self._current(key)
        if current != lock_id or not current:
            return LockResult(False, current)
        self._set(key, lock_id, ttl)
        return LockResult(True, lock_id)

    async def get(self, key: str) -> str:
        return self._current(key)

    def shares_keys(self, other: LockStore) -> bool:
        return other is self

    def _reading(self, result: LockResult, key: str) -> tuple[LockResult, str]:
        return result, self._current(key) if result.ok else ""

    async def lock_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        return self._reading(await self.lock(key, lock_id, ttl), key + suffix)

    async def unlock_and_relock_reading(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        result = await self.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        return self._reading(result, key + suffix)

    async def refresh_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        return self._reading(await self.refresh(key, lock_id, ttl), key + suffix)

    async def unlock_taking(self, key: str, lock_id: str, suffix: str) -> tuple[LockResult, str]:
        result, kept = self._reading(await self.unlock(key, lock_id), key + suffix)
        if kept:
            del self._locks[key + suffix]
        return result, kept

    async def keep(self, key: str, suffix: str, value: str, ttl: float) -> None:
        self._set(key + suffix, value, ttl)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._locks.clear()
