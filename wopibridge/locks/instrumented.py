"""A lock store that times each call and traces it as a child span of the request.

Wrapped once where the app is wired (``resources.locks_ctx``), so every lock store (memory,
Redis, a storage's own) is measured the same way without knowing about metrics.
"""

from __future__ import annotations

from prometheus_client import Histogram

from wopibridge.instruments import Instruments
from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore

CALLS = ("lock", "unlock_and_relock", "unlock", "refresh", "get", "ping")


class InstrumentedLockStore:
    """``inner`` with every call observed on ``wopibridge_lock_store_duration_seconds``."""

    def __init__(self, inner: LockStore, instruments: Instruments) -> None:
        self.inner = inner
        self._instruments = instruments
        self._timers: dict[str, Histogram] = {
            call: instruments.lock_store_seconds.labels(call) for call in CALLS
        }

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        with self._instruments.measure(self._timers["lock"], "lockstore.lock"):
            return await self.inner.lock(key, lock_id, ttl)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        with self._instruments.measure(
            self._timers["unlock_and_relock"], "lockstore.unlock_and_relock"
        ):
            return await self.inner.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        with self._instruments.measure(self._timers["unlock"], "lockstore.unlock"):
            return await self.inner.unlock(key, lock_id)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        with self._instruments.measure(self._timers["refresh"], "lockstore.refresh"):
            return await self.inner.refresh(key, lock_id, ttl)

    async def get(self, key: str) -> str:
        with self._instruments.measure(self._timers["get"], "lockstore.get"):
            return await self.inner.get(key)

    async def ping(self) -> None:
        with self._instruments.measure(self._timers["ping"], "lockstore.ping"):
            await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
