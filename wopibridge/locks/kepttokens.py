"""Where a site keeps the owner's lock token of each WOPI lock it carries to the owner: beside
the WOPI lock, under ``<key>\\0owner``, so every instance of the site can save with it, refresh
it and release it.

A Lock or Unlock needs the site's lock and the kept token together (is there a token to refresh
or release?). When the site's store and the token store are one keyspace (the same Redis and
prefix, the same process' table: :meth:`~.base.CompanionLocks.shares_keys`), the lock script
reads the token in the same call, the unlock script takes it, and a new token is set with one
plain write (the site's lock on the key is ours by then): three round trips to the store per
Lock+Unlock. Otherwise the lock call and the token read are sent at once, and forgetting a
token overlaps releasing it at the owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from wopibridge.locks.base import CompanionLocks, LockResult, LockStore

#: Where an owner's lock token is kept in the site's store, beside the WOPI lock of ``key``.
TOKEN_SUFFIX = "\x00owner"

#: Releases the owner's lock ``token`` on ``key``: ``release(key, token)``.
Release = Callable[[str, str], Awaitable[None]]


class KeptTokens(Protocol):
    """The site's lock calls, each answering the token kept for the key (``""`` when none, or
    when the call did not take effect)."""

    async def lock(self, key: str, lock_id: str, ttl: float) -> tuple[LockResult, str]: ...

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float
    ) -> tuple[LockResult, str]: ...

    async def refresh(self, key: str, lock_id: str, ttl: float) -> tuple[LockResult, str]: ...

    async def unlock(self, key: str, lock_id: str, release: Release) -> LockResult:
        """Unlock; when that took effect, forget the kept token and ``release`` it."""

    async def keep(self, key: str, token: str, ttl: float) -> None:
        """Keep ``token`` for ``key`` (whose site lock the caller holds) for ``ttl``."""


def kept_tokens(site_locks: LockStore, tokens: LockStore) -> KeptTokens:
    """The cheapest way to keep tokens in ``tokens`` beside the locks of ``site_locks``."""
    if isinstance(site_locks, CompanionLocks) and site_locks.shares_keys(tokens):
        return TokensBeside(site_locks)
    return TokensApart(site_locks, tokens)


class TokensBeside:
    """The token read, taken and set in the calls of the store that holds the lock."""

    def __init__(self, store: CompanionLocks) -> None:
        self._store = store

    async def lock(self, key: str, lock_id: str, ttl: float) -> tuple[LockResult, str]:
        return await self._store.lock_reading(key, lock_id, ttl, TOKEN_SUFFIX)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float
    ) -> tuple[LockResult, str]:
        store = self._store
        return await store.unlock_and_relock_reading(
            key, old_lock_id, new_lock_id, ttl, TOKEN_SUFFIX
        )

    async def refresh(self, key: str, lock_id: str, ttl: float) -> tuple[LockResult, str]:
        return await self._store.refresh_reading(key, lock_id, ttl, TOKEN_SUFFIX)

    async def unlock(self, key: str, lock_id: str, release: Release) -> LockResult:
        result, token = await self._store.unlock_taking(key, lock_id, TOKEN_SUFFIX)
        if result.ok and token:
            await release(key, token)
        return result

    async def keep(self, key: str, token: str, ttl: float) -> None:
        await self._store.keep(key, TOKEN_SUFFIX, token, ttl)


class TokensApart:
    """The token kept in a store of its own: asked next to each lock call, at once."""

    def __init__(self, site_locks: LockStore, tokens: LockStore) -> None:
        self._site_locks = site_locks
        self._tokens = tokens

    async def _with_token(self, key: str, call: Awaitable[LockResult]) -> tuple[LockResult, str]:
        """Two round trips that overlap instead of adding up."""
        result, token = await asyncio.gather(call, self._tokens.get(key + TOKEN_SUFFIX))
        return result, token if result.ok else ""

    async def lock(self, key: str, lock_id: str, ttl: float) -> tuple[LockResult, str]:
        return await self._with_token(key, self._site_locks.lock(key, lock_id, ttl))

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float
    ) -> tuple[LockResult, str]:
        call = self._site_locks.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        return await self._with_token(key, call)

    async def refresh(self, key: str, lock_id: str, ttl: float) -> tuple[LockResult, str]:
        return await self._with_token(key, self._site_locks.refresh(key, lock_id, ttl))

    async def unlock(self, key: str, lock_id: str, release: Release) -> LockResult:
        result, token = await self._with_token(key, self._site_locks.unlock(key, lock_id))
        if token:
            forget = self._tokens.unlock(key + TOKEN_SUFFIX, token)
            await asyncio.gather(forget, release(key, token))
        return result

    async def keep(self, key: str, token: str, ttl: float) -> None:
        marker = key + TOKEN_SUFFIX
        result = await self._tokens.lock(marker, token, ttl)
        if not result.ok:  # a token of a lock that lapsed: ours now
            await self._tokens.unlock(marker, result.current)
            await self._tokens.lock(marker, token, ttl)
