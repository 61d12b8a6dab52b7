"""Which site holds a WOPI lock, so another site can open the file read-only instead.

Two wopibridge instances (two sites) that reach the same file compute the same lock key (the
file's identity at its owning site) and share one lock store, so a second site's Lock already
fails with 409 and the first site's lock id. ``openinapp`` can do better than hand out an edit
session that will fail: when the file is locked *by another site*, it gives a read-only token
with a reason. Same-site opens keep their edit mode (several users co-editing through one editor
share one lock).

:class:`SiteLockStore` wraps the lock store used for a file and, next to every lock it takes,
keeps a marker naming the site (in the app's own lock store, with the same expiry), cleared on
unlock. Markers are advisory: the lock itself stays the single source of truth.
"""

from __future__ import annotations

from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore

MARKER_SUFFIX = "\x00site"


class SiteLockStore:
    """A lock store that records which site holds each lock it grants."""

    def __init__(self, inner: LockStore, markers: LockStore, site: str) -> None:
        self._inner = inner
        self._markers = markers
        self.site = site

    async def _mark(self, key: str, ttl: float) -> None:
        marker = key + MARKER_SUFFIX
        result = await self._markers.lock(marker, self.site, ttl)
        if not result.ok:
            await self._markers.unlock(marker, result.current)
            await self._markers.lock(marker, self.site, ttl)

    async def _clear(self, key: str) -> None:
        """Our unlock succeeded, so the marker, if any, is ours: one compare-and-delete."""
        await self._markers.unlock(key + MARKER_SUFFIX, self.site)

    async def holder(self, key: str) -> str:
        """The site holding the lock on ``key``: ``""`` when unlocked, ``"?"`` when unknown."""
        if not await self._inner.get(key):
            return ""
        return await self._markers.get(key + MARKER_SUFFIX) or "?"

    async def locked_elsewhere(self, key: str) -> bool:
        holder = await self.holder(key)
        return bool(holder) and holder != self.site

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        result = await self._inner.lock(key, lock_id, ttl)
        if result.ok:
            await self._mark(key, ttl)
        return result

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        result = await self._inner.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        if result.ok:
            await self._mark(key, ttl)
        return result

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        result = await self._inner.unlock(key, lock_id)
        if result.ok:
            await self._clear(key)
        return result

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        result = await self._inner.refresh(key, lock_id, ttl)
        if result.ok:
            await self._mark(key, ttl)
        return result

    async def get(self, key: str) -> str:
        return await self._inner.get(key)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        """Both stores belong to others (the app, the storage)."""
        return None
