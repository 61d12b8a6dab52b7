"""WOPI locks kept on the XRootD server, on the file itself, so that every site sees them.

The lock is an extended attribute of the file, ``iop.lock``, holding the record Reva and
cs3org/wopiserver keep there: URL-safe base64 of the JSON ``{"lock_id", "type": 2,
"app_name", "user", "expiration": {"seconds"}}``, plus ``wopibridge_site`` naming the
wopibridge site that took it (both readers ignore keys they do not know). A lock past its
expiration is no lock. On EOS (``eos`` in the storage table, or detected) the EOS app lock
``sys.app.lock`` (``expires:<t>,type:shared,owner:*:wopi_wopibridge``) is kept beside it, the
way wopiserver does, so that EOS itself refuses writers that are not a WOPI app.

Every change is a compare-and-set: read, compare, write under the file's guard
(:mod:`.guard`), the server's one atomic primitive. :class:`XrootdLockStore` puts the site's
own lock store (Redis) first: the instances of one site settle a race there in one round trip,
and only the winner goes on to the file, where another site's lock, or wopiserver's, answers a
conflict with its lock id.

Saves check the lock too (:meth:`OwnerLocks.refuses_save`): under the same guard as the
``mv`` that lands them, a live lock on the file refuses the save unless this site's own lock
store holds that very lock (so it is this site's, and the WOPI layer has matched it with the
request's lock); a lock of another application (wopiserver) always refuses it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wopibridge.errors import WopiError
from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore
from wopibridge.storage.xrootd.client import XrdClient
from wopibridge.storage.xrootd.guard import guarded

LOCK_ATTR = "iop.lock"
EOS_LOCK_ATTR = "sys.app.lock"
APP_NAME = "wopibridge"
#: the EOS application name of the lock (``eos.app`` of the writes that pass it)
EOS_APP = "wopi_wopibridge"
LOCK_TYPE_WRITE = 2


@dataclass(frozen=True, slots=True)
class LockRecord:
    """One lock as kept on a file."""

    lock_id: str
    expires: int
    app_name: str = APP_NAME
    site: str = ""

    def encode(self) -> str:
        body = {
            "lock_id": self.lock_id,
            "type": LOCK_TYPE_WRITE,
            "app_name": self.app_name,
            "user": {},
            "expiration": {"seconds": self.expires},
            "wopibridge_site": self.site,
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, value: str) -> LockRecord | None:
        """The record in ``value``; ``None`` when it is no lock record at all."""
        try:
            body = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            expires = int(body.get("expiration", {}).get("seconds", 0))
            return cls(
                lock_id=str(body.get("lock_id", "")),
                expires=expires,
                app_name=str(body.get("app_name", "")),
                site=str(body.get("wopibridge_site", "")),
            )
        except (binascii.Error, ValueError, TypeError, AttributeError):
            return None

    def live(self, now: float | None = None) -> bool:
        return self.expires > (time.time() if now is None else now)


def eos_lock(expires: int) -> str:
    """EOS's app lock for a WOPI lock until ``expires``, as wopiserver writes it."""
    return f"expires:{expires},type:shared,owner:*:{EOS_APP}"


def live_lock(attrs: dict[str, str]) -> LockRecord | None:
    """The live lock among a file's attributes, if any."""
    raw = attrs.get(LOCK_ATTR)
    record = LockRecord.decode(raw) if raw else None
    return record if record is not None and record.live() else None


class OwnerLocks:
    """The lock attribute of files of one storage: read, and compare-and-set under the guard."""

    def __init__(self, client: XrdClient, site: str, is_eos: Callable[[], Awaitable[bool]]) -> None:
        self._client = client
        self._is_eos = is_eos
        self.site = site
        #: this site's own lock store, once the app has handed it (``Storage.lock_store``)
        self.site_locks: LockStore | None = None

    async def refuses_save(self, attrs: dict[str, str], key: str) -> bool:
        """Whether a live lock among a file's attributes (``key`` its lock key) is not this
        site's: another application's, another lock than the one this site's store holds,
        or (the store holds none) one the record names another site for."""
        record = live_lock(attrs)
        if record is None:
            return False
        if record.app_name != APP_NAME:
            return True
        held = await self.site_locks.get(key) if self.site_locks is not None else ""
        if held:
            return held != record.lock_id
        # nothing here (the site's store lost it, or never had it): the record says whose
        return record.site != self.site

    async def current(self, path: str) -> LockRecord | None:
        attrs = await self._client.get_attrs(path, [LOCK_ATTR])
        return live_lock(attrs or {})

    async def _write(self, path: str, lock_id: str, ttl: float) -> None:
        expires = int(time.time() + ttl)
        record = LockRecord(lock_id, expires, APP_NAME, self.site)
        attrs = [(LOCK_ATTR, record.encode())]
        if await self._is_eos():
            attrs.append((EOS_LOCK_ATTR, eos_lock(expires)))
        await self._client.set_attrs(path, attrs, what="lock")

    async def _clear(self, path: str) -> None:
        names = [LOCK_ATTR]
        if await self._is_eos():
            names.append(EOS_LOCK_ATTR)
        await self._client.del_attrs(path, names)

    def _guard(self, path: str, file_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return guarded(self._client, path.rpartition("/")[0] or "/", file_id)

    async def take(
        self, path: str, file_id: str, lock_id: str, ttl: float, *, replacing: str = ""
    ) -> LockResult:
        """Lock for ``lock_id`` when the file is unlocked, locked by ``lock_id`` already, or
        (``replacing``) locked by that lock; else the conflicting lock."""
        async with self._guard(path, file_id):
            found = await self.current(path)
            if found is not None and found.lock_id not in (lock_id, replacing):
                return LockResult(False, found.lock_id)
            await self._write(path, lock_id, ttl)
            return LockResult(True, lock_id)

    async def refresh(self, path: str, file_id: str, lock_id: str, ttl: float) -> LockResult:
        """A new expiry for ``lock_id`` when it holds the file (or nothing does)."""
        return await self.take(path, file_id, lock_id, ttl)

    async def release(self, path: str, file_id: str, lock_id: str) -> LockResult:
        async with self._guard(path, file_id):
            found = await self.current(path)
            if found is not None and found.lock_id != lock_id:
                return LockResult(False, found.lock_id)
            await self._clear(path)
            return LockResult(True, "")


class XrootdLockStore:
    """WOPI locks on files of one XRootD storage: the site's store first, then the file.

    Keys are ``<prefix><file id>``; ``path_of`` finds a file id's server path. Other keys go
    to ``fallback`` alone.
    """

    def __init__(
        self,
        owner: OwnerLocks,
        prefix: str,
        path_of: Callable[[str], Awaitable[str]],
        fallback: LockStore,
    ) -> None:
        self._owner = owner
        self._owner.site_locks = fallback
        self._fallback = fallback
        self._prefix = prefix
        self._path_of = path_of

    async def _where(self, key: str) -> tuple[str, str] | None:
        """The file id and server path behind ``key``, or ``None`` for keys not ours."""
        if not key.startswith(self._prefix):
            return None
        file_id = key[len(self._prefix) :]
        return file_id, await self._path_of(file_id)

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        where = await self._where(key)
        result = await self._fallback.lock(key, lock_id, ttl)
        if where is None or not result.ok:
            return result
        file_id, path = where
        try:
            owner = await self._owner.take(path, file_id, lock_id, ttl)
        except BaseException:
            with contextlib.suppress(WopiError):
                await self._fallback.unlock(key, lock_id)
            raise
        if not owner.ok:
            await self._fallback.unlock(key, lock_id)
        return owner

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        where = await self._where(key)
        if where is None:
            return await self._fallback.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        file_id, path = where
        current = await self._owner.current(path)
        if current is not None and current.lock_id != old_lock_id:
            return LockResult(False, current.lock_id)
        result = await self._fallback.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)
        if not result.ok and current is None:
            return result
        owner = await self._owner.take(path, file_id, new_lock_id, ttl, replacing=old_lock_id)
        if owner.ok and not result.ok:  # the site's store had lost it: it follows the file
            await self._fallback.unlock(key, result.current)
            await self._fallback.lock(key, new_lock_id, ttl)
        return owner

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        where = await self._where(key)
        if where is None:
            return await self._fallback.unlock(key, lock_id)
        file_id, path = where
        current = await self._owner.current(path)
        if current is None:
            return await self._fallback.unlock(key, lock_id)
        owner = await self._owner.release(path, file_id, lock_id)
        if owner.ok:
            await self._fallback.unlock(key, lock_id)
        return owner

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        where = await self._where(key)
        if where is None:
            return await self._fallback.refresh(key, lock_id, ttl)
        file_id, path = where
        current = await self._owner.current(path)
        if current is None:
            result = await self._fallback.refresh(key, lock_id, ttl)
            if not result.ok:
                return result
        elif current.lock_id != lock_id:
            return LockResult(False, current.lock_id)
        else:
            await self._fallback.refresh(key, lock_id, ttl)
        return await self._owner.refresh(path, file_id, lock_id, ttl)

    async def get(self, key: str) -> str:
        where = await self._where(key)
        if where is not None:
            current = await self._owner.current(where[1])
            if current is not None:
                return current.lock_id
        return await self._fallback.get(key)

    async def ping(self) -> None:
        await self._fallback.ping()

    async def close(self) -> None:
        """The fallback belongs to the app and the client to the storage."""
        return None
