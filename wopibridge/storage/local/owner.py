"""The WOPI lock held at the owner for a local folder: a lock entry in the file's record.

Sites that share a folder (one NFS or CephFS export mounted by two sites, each with its own
Redis) cannot see each other's WOPI locks in Redis. The folder is what they share, so the lock
is also written into the file's record (:mod:`.records`), under the record's own mutex: taking
it is a compare-and-set (free or expired: ours; else the holder is answered), and so are its
refresh and release (only with the token it was taken with). :class:`LocalOwnerLocks` is the
:class:`~wopibridge.locks.ownerlocks.OwnerLocks` of the local storage; the generic
:class:`~wopibridge.locks.ownerlocks.OwnerLockStore` layers it under the site's Redis.

Why a record rather than an extended attribute: the record is already taken for every change
of the file, so the save's check of the owner's lock costs one read of an open descriptor, and
a compare-and-set on an attribute would need that same mutex anyway (``setxattr`` has no
compare). Attributes also do not survive every copy, editor and sync client, where a record in
``.wopibridge/`` is left alone.

A site is the set of instances sharing one lock store. Its id is drawn once and kept in that
store (:func:`site_of`), so two instances on one Redis are one site whatever their public
URLs, and a site with its own Redis is another one.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from wopibridge.errors import LockMismatch
from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore
from wopibridge.locks.ownerlocks import OwnerAttempt, OwnerHolder, OwnerLockStore
from wopibridge.storage.local.records import FileRecords, OwnerEntry, Record

#: Where a site's id is kept in its lock store (no file identity looks like it).
SITE_KEY = "\x00wopibridge-site"
#: Renewed at every start of an instance; a site id lost with its store only makes this
#: site's live owner's locks look foreign until they expire (at most the WOPI lock's TTL
#: plus the owner's margin).
SITE_TTL = 10 * 365 * 24 * 3600.0


async def site_of(store: LockStore) -> str:
    """The id of the site whose lock store is ``store``: drawn by the first instance, then
    read by every other (one atomic set-if-absent)."""
    candidate = secrets.token_urlsafe(12)
    result = await store.lock(SITE_KEY, candidate, SITE_TTL)
    if result.ok:
        return candidate
    await store.refresh(SITE_KEY, result.current, SITE_TTL)
    return result.current


def refuse_foreign(record: Record, site: str | None) -> None:
    """Raise :class:`LockMismatch` when another site holds the file's lock at the owner (for
    a change made under the record's mutex; ``site`` ``None``: this process has no site yet,
    it took no lock, and nothing is checked)."""
    if site is None:
        return
    entry = record.read()
    if entry is not None and entry.live() and entry.site != site:
        raise LockMismatch(entry.lock_id, "The file is locked by another site")


class LocalOwnerLocks:
    """:class:`~wopibridge.locks.ownerlocks.OwnerLocks` on the records of one folder.
    ``name`` is what a record says of its holder besides the site (this instance's URL)."""

    def __init__(self, records: FileRecords, name: str) -> None:
        self._records = records
        self._name = name

    @property
    def active(self) -> bool:
        return True

    async def acquire(self, key: str, lock_id: str, site: str, ttl: float) -> OwnerAttempt:
        return await self._records.apply(key, lambda r: self._take(r, lock_id, site, ttl))

    def _take(self, record: Record, lock_id: str, site: str, ttl: float) -> OwnerAttempt:
        """Free, expired, or left by this very site: ours. A site asks only once its own store
        granted it the WOPI lock, so an entry of its own is one whose token it lost (a restart
        with in-process locks), never a lock another of its sessions holds."""
        entry = record.read()
        if entry is not None and entry.live() and entry.site != site:
            return OwnerAttempt(holder=OwnerHolder(entry.lock_id, entry.site, entry.name))
        token = secrets.token_urlsafe(18)
        record.write(OwnerEntry(token, lock_id, site, self._name, time.time() + ttl))
        return OwnerAttempt(token=token)

    async def refresh(self, key: str, token: str, lock_id: str, ttl: float) -> bool:
        return await self._records.apply(key, lambda r: _extend(r, token, lock_id, ttl))

    async def release(self, key: str, token: str) -> None:
        await self._records.apply(key, lambda r: _clear(r, token))

    async def holder(self, key: str) -> OwnerHolder | None:
        entry = await self._records.apply(key, Record.read)
        if entry is None or not entry.live():
            return None
        return OwnerHolder(entry.lock_id, entry.site, entry.name)


def _extend(record: Record, token: str, lock_id: str, ttl: float) -> bool:
    """Extend the entry taken with ``token``; an entry that lapsed but nobody took since is
    still ours (the same compare: the token)."""
    entry = record.read()
    if entry is None or entry.token != token:
        return False
    record.write(OwnerEntry(token, lock_id, entry.site, entry.name, time.time() + ttl))
    return True


def _clear(record: Record, token: str) -> None:
    entry = record.read()
    if entry is not None and entry.token == token:
        record.write(None)


class LocalLockStore:
    """The lock store of a local folder's files: the site's store, with each lock carried to
    the file's record. The site's id is learnt from the site's store on first use, so the
    storage can be built before the store is reached."""

    def __init__(self, site_locks: LockStore, owner: LocalOwnerLocks, sites: SiteIds) -> None:
        self._site_locks = site_locks
        self._owner = owner
        self._sites = sites
        self._store: OwnerLockStore | None = None

    async def _layered(self) -> OwnerLockStore:
        if self._store is None:
            site = await self._sites.of(self._site_locks)
            self._store = OwnerLockStore(self._site_locks, self._owner, self._site_locks, site)
        return self._store

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        return await (await self._layered()).lock(key, lock_id, ttl)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        store = await self._layered()
        return await store.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        return await (await self._layered()).unlock(key, lock_id)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        return await (await self._layered()).refresh(key, lock_id, ttl)

    async def get(self, key: str) -> str:
        return await (await self._layered()).get(key)

    async def ping(self) -> None:
        await self._site_locks.ping()

    async def close(self) -> None:
        """The site's store belongs to the app, the records to the storage."""
        return None


class SiteIds:
    """The site id of each lock store a storage was given (one, in a running app); ``fixed``
    for a site whose locks are in process, so that a restart is still the same site."""

    def __init__(self, fixed: str | None = None) -> None:
        self._known: dict[int, tuple[LockStore, str]] = {}
        self._fixed = fixed
        self.current: str | None = fixed

    async def of(self, store: LockStore) -> str:
        if self._fixed is not None:
            return self._fixed
        known = self._known.get(id(store))
        if known is not None and known[0] is store:
            return known[1]
        site = await site_of(store)
        self._known[id(store)] = (store, site)
        self.current = site
        return site


def kept_site(state_dir: Path) -> str:
    """The site id of a single instance with in-process locks, kept in its state folder."""
    path = state_dir / "site-id"
    try:
        found = path.read_text().strip()
    except FileNotFoundError:
        found = ""
    if found:
        return found
    state_dir.mkdir(parents=True, exist_ok=True)
    drawn = secrets.token_urlsafe(12)
    path.write_text(drawn + "\n")
    return drawn
