"""WOPI locks carried to the owner's storage, so sites that share nothing agree on one writer.

The site's lock store (Redis, shared by one site's instances) answers quickly and keeps the lock
ids; it cannot be seen by another site with its own Redis, nor by a desktop or sync client of
the owner's storage. :class:`OwnerLockStore` therefore holds, next to every WOPI lock it
grants, the storage's own lock on the file (a WebDAV ``LOCK``, a lock record beside a local
file, an extended attribute written with a compare-and-set), through the small
:class:`OwnerLocks` contract each storage implements.

The order of every operation:

1. the site's store decides among this site's instances (one atomic call, as before);
2. the owner's lock decides among sites and clients. When the owner refuses, the site's lock
   just taken is given back, and the caller is answered with the holder's WOPI lock id (``""``
   when the holder is not a WOPI host, or does not say).

The owner's lock outlives the WOPI lock by :data:`OWNER_MARGIN_SECONDS` and is extended by every
Lock, RefreshLock and UnlockAndRelock, so it stays held exactly while the editor keeps its WOPI
lock alive, and lapses on its own when a site dies. Its token (a WebDAV lock token, say) is kept
in the site's store under the file's key, so any instance of the site can save with it, refresh
it and release it; where the store allows, it is read, taken and set in the lock's own calls
(:mod:`.kepttokens`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore
from wopibridge.locks.kepttokens import TOKEN_SUFFIX, kept_tokens

log = logging.getLogger("wopibridge.locks")

#: How long an owner's lock outlives the WOPI lock it carries if nobody refreshes or releases
#: it (a site that died): short enough that a file is not locked out for long, long enough that
#: a refresh sent on time never finds it gone.
OWNER_MARGIN_SECONDS = 5 * 60
#: Who the current request's WOPI lock is taken for (the user's name), set where a WOPI request
#: is bound to its storage: the contract's calls carry no user, and a storage that records a
#: holder for people to read (a WebDAV lock's ``DAV:owner``) takes it from here.
LOCK_USER: ContextVar[str] = ContextVar("wopibridge_lock_user", default="")


@dataclass(frozen=True, slots=True)
class OwnerHolder:
    """Who holds a file's lock at its owner, as far as the owner says.

    ``lock_id`` is the WOPI lock id when the holder is a WOPI host that records it (``""`` for a
    desktop client, or a server that does not say); ``site`` is the holder's site when it is a
    WOPI host; ``name`` a person-readable description (a user, a client) for the read-only
    reason shown at open, ``""`` when unknown.
    """

    lock_id: str = ""
    site: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class OwnerAttempt:
    """What an attempt to take the owner's lock gave: its ``token``, or who holds it instead.

    ``confirm``, with a token, is a check still to run that the grant holds alone (a server
    may grant one lock twice, see :mod:`wopibridge.storage.webdav.locks`): awaited, it answers
    ``None`` when it does, else the holder, having given the grant back. The caller awaits it
    beside keeping the token, so the check costs no round trip of its own on the way."""

    token: str = ""
    holder: OwnerHolder | None = None
    confirm: Awaitable[OwnerHolder | None] | None = None


@runtime_checkable
class OwnerLocks(Protocol):
    """A storage's own exclusive write lock on a file, seen by every site and client of it.

    ``key`` is the file's identity (the WOPI lock key). Failures to reach the storage raise
    :class:`wopibridge.errors.Unavailable`; a storage that turns out to have no locks (a WebDAV
    server answering 405/501, a share configured without them) sets ``active`` to ``False``
    and says so once in the log: WOPI locks then stay in the site's store only.
    """

    @property
    def active(self) -> bool: ...

    async def acquire(self, key: str, lock_id: str, site: str, ttl: float) -> OwnerAttempt:
        """Take the lock for WOPI lock ``lock_id`` of ``site``, expiring after ``ttl``."""

    async def refresh(self, key: str, token: str, lock_id: str, ttl: float) -> bool:
        """Extend the lock ``token`` (recording ``lock_id`` where the storage can);
        ``False`` when it is no longer held (broken by an administrator, timed out)."""

    async def release(self, key: str, token: str) -> None:
        """Give the lock up; a lock already gone is not an error."""

    async def holder(self, key: str) -> OwnerHolder | None:
        """Who holds the lock now, ``None`` when nobody does."""


class OwnerLockStore:
    """A lock store that holds each WOPI lock of one site at the owner's storage too."""

    def __init__(
        self,
        site_locks: LockStore,
        owner: OwnerLocks,
        tokens: LockStore,
        site: str,
        margin: float = OWNER_MARGIN_SECONDS,
    ) -> None:
        self._site_locks = site_locks
        self._owner = owner
        self._tokens = tokens
        self._kept = kept_tokens(site_locks, tokens)
        self.site = site
        self._margin = margin

    async def token(self, key: str) -> str:
        """The owner's lock token for ``key`` held by this site, ``""`` when none is."""
        return await self._tokens.get(key + TOKEN_SUFFIX)

    async def holder(self, key: str) -> OwnerHolder | None:
        """Who holds ``key`` at the owner (``None`` when nobody, or the storage has no locks)."""
        if not self._owner.active:
            return None
        return await self._owner.holder(key)

    async def _hold(self, key: str, lock_id: str, ttl: float, token: str) -> OwnerHolder | None:
        """Make the owner's lock held for ``lock_id`` (``token``: the one kept, if any):
        ``None`` when it is, else its holder."""
        owner_ttl = ttl + self._margin
        if token:
            if await self._owner.refresh(key, token, lock_id, owner_ttl):
                await self._kept.keep(key, token, owner_ttl)
                return None
            log.warning("the storage's lock on %s was lost; taking it again", key)
            await self._tokens.unlock(key + TOKEN_SUFFIX, token)
        attempt = await self._owner.acquire(key, lock_id, self.site, owner_ttl)
        if attempt.token:
            return await self._keep_granted(key, attempt, owner_ttl)
        if not self._owner.active:  # the storage found out it has no locks: the site's lock
            return None
        holder = attempt.holder or OwnerHolder()
        if holder.lock_id == lock_id and holder.site == self.site:
            # Another instance of this site took it for the same WOPI lock (two views of one
            # document locking at once); its token is kept by that instance.
            return None
        return holder

    async def _keep_granted(
        self, key: str, attempt: OwnerAttempt, owner_ttl: float
    ) -> OwnerHolder | None:
        """Keep a granted token, checking meanwhile that the grant holds alone: ``None`` when
        it does, else the holder (the grant given back, its token forgotten again)."""
        if attempt.confirm is None:
            await self._kept.keep(key, attempt.token, owner_ttl)
            return None
        keeping = asyncio.ensure_future(self._kept.keep(key, attempt.token, owner_ttl))
        try:
            rival = await attempt.confirm
        finally:
            # kept whatever the check gave: a token kept can be released by any instance
            # (Unlock, the editor's next Lock), one dropped would leave the owner's lock held
            # with nobody able to give it back until it times out
            await keeping
        if rival is not None:
            await self._tokens.unlock(key + TOKEN_SUFFIX, attempt.token)
        return rival

    async def _after(
        self, key: str, lock_id: str, ttl: float, answer: tuple[LockResult, str]
    ) -> LockResult:
        """Carry a granted site lock to the owner, or give it back when the owner refuses."""
        result, token = answer
        if not result.ok or not self._owner.active:
            return result
        try:
            holder = await self._hold(key, lock_id, ttl, token)
        except BaseException:
            # The owner could not be asked. A lock this site never carried to the owner is
            # given back (no writer may rely on it); one it carried stays, its owner's lock
            # still running for the margin, and the editor's next call tries again.
            if not await self.token(key):
                await self._site_locks.unlock(key, lock_id)
            raise
        if holder is None:
            return result
        await self._site_locks.unlock(key, lock_id)
        return LockResult(False, holder.lock_id)

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        if not self._owner.active:
            return await self._site_locks.lock(key, lock_id, ttl)
        return await self._after(key, lock_id, ttl, await self._kept.lock(key, lock_id, ttl))

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        if not self._owner.active:
            return await self._site_locks.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        answer = await self._kept.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        return await self._after(key, new_lock_id, ttl, answer)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        if not self._owner.active:
            return await self._site_locks.refresh(key, lock_id, ttl)
        return await self._after(key, lock_id, ttl, await self._kept.refresh(key, lock_id, ttl))

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        if not self._owner.active:
            return await self._site_locks.unlock(key, lock_id)
        return await self._kept.unlock(key, lock_id, self._owner.release)

    async def let_go(self, key: str) -> None:
        """Release the owner's lock this site holds on ``key`` (after Unlock or DeleteFile)."""
        token = await self.token(key)
        if token:
            await self._let_go(key, token)

    async def _let_go(self, key: str, token: str) -> None:
        """Forget the token and release the owner's lock, at once (neither needs the other)."""
        forget = self._tokens.unlock(key + TOKEN_SUFFIX, token)
        if self._owner.active:
            await asyncio.gather(forget, self._owner.release(key, token))
        else:
            await forget

    async def get(self, key: str) -> str:
        """The WOPI lock on ``key``: this site's, else the one another site holds at the owner
        (``""`` also when the owner's holder is not a WOPI host: use :meth:`holder`)."""
        current = await self._site_locks.get(key)
        if current or not self._owner.active:
            return current
        holder = await self._owner.holder(key)
        return holder.lock_id if holder is not None and holder.site != self.site else ""

    async def ping(self) -> None:
        await self._site_locks.ping()

    async def close(self) -> None:
        """The site's store belongs to the app, the owner's locks to the storage."""
        return None
