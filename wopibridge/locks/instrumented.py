"""A lock store that times each call and traces it as a child span of the request.

Wrapped once where the app is wired (``resources.locks_ctx``), so every lock store (memory,
Redis, a storage's own) is measured the same way without knowing about metrics. The calls that
also read or keep a value beside a lock (:class:`~.base.CompanionLocks`) pass through when the
inner store has them, timed as the lock call they stand for.
"""

from __future__ import annotations

from prometheus_client import Histogram

from wopibridge.instruments import Instruments
from wopibridge.locks.base import LOCK_TTL_SECONDS, CompanionLocks, LockResult, LockStore

CALLS = ("lock", "unlock_and_relock", "unlock", "refresh", "get", "ping", "keep")


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

    def _companion(self) -> CompanionLocks:
        if not isinstance(self.inner, CompanionLocks):  # shares_keys said no: never called
            raise TypeError(f"{type(self.inner).__name__} keeps no values beside its locks")
        return self.inner

    def shares_keys(self, other: LockStore) -> bool:
        if isinstance(other, InstrumentedLockStore):
            other = other.inner
        return isinstance(self.inner, CompanionLocks) and self.inner.shares_keys(other)

    async def lock_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        with self._instruments.measure(self._timers["lock"], "lockstore.lock"):
            return await self._companion().lock_reading(key, lock_id, ttl, suffix)

    async def unlock_and_relock_reading(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        with self._instruments.measure(
            self._timers["unlock_and_relock"], "lockstore.unlock_and_relock"
        ):
            inner = self._companion()
            return await inner.unlock_and_relock_reading(key, old_lock_id, new_lock_id, ttl, suffix)

    async def refresh_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        with self._instruments.measure(self._timers["refresh"], "lockstore.refresh"):
            return await self._companion().refresh_reading(key, lock_id, ttl, suffix)

    async def unlock_taking(self, key: str, lock_id: str, suffix: str) -> tuple[LockResult, str]:
        with self._instruments.measure(self._timers["unlock"], "lockstore.unlock"):
            return await self._companion().unlock_taking(key, lock_id, suffix)

    async def keep(self, key: str, suffix: str, value: str, ttl: float) -> None:
        with self._instruments.measure(self._timers["keep"], "lockstore.keep"):
            await self._companion().keep(key, suffix, value, ttl)

    async def close(self) -> None:
        await self.inner.close()
