"""The WOPI lock contract shared by the in-process and the Redis lock store.

Every operation is one atomic check-and-set: two requests racing on the same key can never both
succeed. A lock id is an opaque string compared verbatim. On a conflict the store answers the
lock currently held (``""`` when there is none) so the WOPI layer can send it back in
``X-WOPI-Lock``. Failures to reach the store raise :class:`wopibridge.errors.Unavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

LOCK_TTL_SECONDS = 30 * 60
MAX_LOCK_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class LockResult:
    """``ok`` tells whether the operation took effect; ``current`` is the lock held afterwards
    when it did, and the conflicting lock (``""`` if none) when it did not."""

    ok: bool
    current: str


@runtime_checkable
class LockStore(Protocol):
    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        """Lock an unlocked key, or refresh the timer when ``lock_id`` already holds it."""

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        """Swap ``old_lock_id`` for ``new_lock_id`` only when ``old_lock_id`` holds the key."""

    async def unlock(self, key: str, lock_id: str) -> LockResult: ...

    async def refresh(
        self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult: ...

    async def get(self, key: str) -> str:
        """The current lock id, ``""`` when unlocked or expired."""

    async def ping(self) -> None:
        """Raise ``Unavailable`` when the store cannot be reached (readiness)."""

    async def close(self) -> None: ...


@runtime_checkable
class CompanionLocks(Protocol):
    """A lock store that also reads, takes or keeps a value beside a lock (at ``key +
    suffix``, ``suffix`` starting with a NUL: one Redis Cluster slot) in the lock's own
    atomic call.

    A WOPI lock carried to the owner's storage keeps the owner's lock token beside it; asked
    apart, the token costs one more round trip to the store on every Lock and Unlock.
    ``shares_keys`` says whether a value ``other`` keeps at a key is the one seen here at that
    key (the same Redis and prefix, or the same process' table): only then may these calls
    stand for calls to ``other``. Each ``*_reading`` call answers as its plain form, with the
    value beside the key (``""`` when none) when the lock call took effect.
    """

    def shares_keys(self, other: LockStore) -> bool: ...

    async def lock_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]: ...

    async def unlock_and_relock_reading(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]: ...

    async def refresh_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]: ...

    async def unlock_taking(self, key: str, lock_id: str, suffix: str) -> tuple[LockResult, str]:
        """Unlock; when that took effect, also remove the value beside the key and answer it."""

    async def keep(self, key: str, suffix: str, value: str, ttl: float) -> None:
        """Set the value beside ``key``, replacing any (the caller holds the lock on ``key``)."""
