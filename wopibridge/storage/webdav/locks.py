"""A WOPI lock is a WebDAV lock: :class:`WebDavOwnerLocks` implements
:class:`~wopibridge.locks.ownerlocks.OwnerLocks` with RFC 4918 ``LOCK``/``UNLOCK``.

- **Take**: ``LOCK`` exclusive, write, ``Depth: 0``, ``Timeout: Second-N`` with N at most
  :data:`MAX_TIMEOUT` (the WOPI lock's 30 minutes plus the owner margin fits), and a
  ``DAV:owner`` naming the user, this host, the site and the WOPI lock id (see
  :func:`owner_line`), so another wopibridge site reads who holds the file and which WOPI lock
  id to answer in ``X-WOPI-Lock``, and a person sees who. Then a ``PROPFIND`` of its
  ``lockdiscovery`` checks that the lock is held alone (:meth:`WebDavOwnerLocks._rival`),
  while the site's store keeps the token (the grant's ``confirm``).
- **Refresh**: ``LOCK`` without a body, ``If: (<token>)``; an answer other than 200 means the
  lock is gone (broken by an administrator, timed out).
- **Release**: ``UNLOCK`` with ``Lock-Token``; a lock already gone is not an error.
- **Holder**: ``PROPFIND`` of ``lockdiscovery``.

A server answering ``LOCK`` with 405 or 501 (no class 2), or a table with ``locks = false``,
turns the owner's locks off for the storage: said once in the log, shown in ``/ready``, and
WOPI locks stay in the site's store.
"""

from __future__ import annotations

import math
import socket
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

import aiohttp

from wopibridge.errors import NotFound, Unavailable
from wopibridge.locks.ownerlocks import LOCK_USER, OwnerAttempt, OwnerHolder
from wopibridge.storage.names import check_path
from wopibridge.storage.webdav.client import DAV, LOCKS_BODY, ActiveLock
from wopibridge.storage.webdav.ids import WebDavFiles, encode_id
from wopibridge.storage.webdav.lockstate import DavLockState, KeptToken

#: The longest ``Timeout`` asked for: a site that dies locks nobody out for longer.
MAX_TIMEOUT = 3600
_MARK = "wopibridge"
_HOST = quote(socket.gethostname(), safe="")


def owner_line(user: str, site: str, lock_id: str) -> str:
    """``wopibridge user=… host=… site=… lock=…``, each value percent-encoded: plain text,
    kept verbatim by every server (some keep only the text of ``DAV:owner``)."""
    user, site, lock_id = (quote(value, safe="") for value in (user, site, lock_id))
    return f"{_MARK} user={user} host={_HOST} site={site} lock={lock_id}"


def read_owner(text: str) -> OwnerHolder:
    """Who an owner text names: a wopibridge site's lock, or a person or client."""
    words = text.split()
    if not words or words[0] != _MARK:
        return OwnerHolder(name=text[:200])
    fields = dict(word.partition("=")[::2] for word in words[1:])
    user, site = unquote(fields.get("user", "")), unquote(fields.get("site", ""))
    name = f"{user} at {site}" if user else site
    return OwnerHolder(lock_id=unquote(fields.get("lock", "")), site=site, name=name)


def timeout_header(ttl: float) -> str:
    return f"Second-{min(MAX_TIMEOUT, max(1, math.ceil(ttl)))}"


def lock_body(owner: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="{DAV}">'
        "<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
        f"<d:owner>{escape(owner)}</d:owner></d:lockinfo>"
    ).encode()


class WebDavOwnerLocks:
    """The WebDAV locks of one storage view (it acts with the view's credential)."""

    def __init__(self, files: WebDavFiles, state: DavLockState) -> None:
        self._files = files
        self._state = state

    @property
    def active(self) -> bool:
        return self._state.active

    async def _path(self, key: str) -> str:
        file_id = self._state.file_of(key)
        if file_id is None:  # not stat'ed here lately: the path the identity was minted for
            # (a server's oc:fileid is no path: the LOCK's If-Match: * then finds nothing)
            path = key.removeprefix(self._files.config.site + ":")
            file_id = encode_id(check_path(path, error=NotFound("File not found")))
        return await self._files._path_of(file_id)

    async def _lock(self, path: str, headers: dict[str, str], body: bytes | None) -> int | str:
        """Send one ``LOCK``: the new token, or the status of a refusal."""
        dav = self._files._dav
        response = await dav.request(
            "LOCK",
            path,
            headers={"Depth": "0", **headers, "Content-Type": "application/xml; charset=utf-8"},
            data=body,
            idempotent=False,
        )
        try:
            # read to its end (a few hundred bytes): a connection whose answer was not read is
            # closed rather than reused, and the next request would pay a new one (wsgidav
            # sends the body of a LOCK answer apart from its head)
            await response.read()
            if response.status not in (200, 201):
                return response.status
            token = response.headers.get("Lock-Token", "").strip().strip("<>")
            if not token and body is None:
                return "refreshed"
            return token or response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise dav.down(exc) from None
        finally:
            response.release()

    async def acquire(self, key: str, lock_id: str, site: str, ttl: float) -> OwnerAttempt:
        path = await self._path(key)
        owner = owner_line(LOCK_USER.get(), site, lock_id)
        # If-Match: * — a file gone meanwhile is not locked into an empty new one (RFC 4918
        # would create it: a "lock-null" resource).
        headers = {"Timeout": timeout_header(ttl), "If-Match": "*"}
        outcome = await self._lock(path, headers, lock_body(owner))
        if isinstance(outcome, str):
            return OwnerAttempt(
                token=KeptToken(outcome, path).encode(), confirm=self._rival(path, outcome)
            )
        if outcome in (405, 501):
            self._state.refuse(self._files.name, f"the server answered {outcome} to LOCK")
            return OwnerAttempt()
        if outcome in (404, 412):
            raise NotFound("File not found")
        if outcome in (423, 409):
            return OwnerAttempt(holder=await self._holder_at(path) or OwnerHolder())
        raise self._files._dav.error(outcome, what="lock")

    async def _rival(self, path: str, token: str) -> OwnerHolder | None:
        """Who else the server lists as holding ``path`` just after it granted us ``token``,
        ``None`` when nobody does (or the server shows no lock tokens to compare).

        An exclusive LOCK granted is not always held alone: Debian's Apache 2.4 with
        ``mod_dav_fs`` answers two LOCKs sent at once with 200 both, about one time in ten,
        and keeps only one of them in its lock database. The lock the server lists is the
        one that holds; a grant it does not list is given back and answered as a refusal, so
        two sites never both believe they hold the file (the loser's saves would be refused
        by the server, but its editor would have been told it could write)."""
        others = [lock for lock in await self._locks_at(path) if lock.token and lock.token != token]
        if not others:
            return None
        await self.release("", KeptToken(token, path).encode())
        return holder_of(tuple(others)) or OwnerHolder()

    async def refresh(self, key: str, token: str, lock_id: str, ttl: float) -> bool:
        kept = KeptToken.decode(token)
        if kept is None:
            return False
        headers = {"Timeout": timeout_header(ttl), "If": f"(<{kept.token}>)"}
        outcome = await self._lock(kept.path, headers, None)
        if isinstance(outcome, str):
            return True
        if outcome >= 500:
            raise self._files._dav.error(outcome, what="lock")
        return False

    async def release(self, key: str, token: str) -> None:
        kept = KeptToken.decode(token)
        if kept is None:
            return
        dav = self._files._dav
        response = await dav.request("UNLOCK", kept.path, headers={"Lock-Token": f"<{kept.token}>"})
        response.release()
        if response.status >= 500:
            raise dav.error(response.status, what="unlock")

    async def _locks_at(self, path: str) -> tuple[ActiveLock, ...]:
        """The locks the server lists on ``path``, none when the file is gone: a ``PROPFIND``
        of its ``lockdiscovery`` alone, not of every property a stat reads."""
        try:
            return (await self._files._entry(path, LOCKS_BODY)).locks
        except NotFound:
            return ()

    async def _holder_at(self, path: str) -> OwnerHolder | None:
        return holder_of(await self._locks_at(path))

    async def holder(self, key: str) -> OwnerHolder | None:
        try:
            return await self._holder_at(await self._path(key))
        except Unavailable:
            raise
        except NotFound:
            return None


def holder_of(locks: tuple[ActiveLock, ...]) -> OwnerHolder | None:
    """The holder named by the first active lock, ``None`` when there is none."""
    return read_owner(locks[0].owner) if locks else None
