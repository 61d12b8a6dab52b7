"""Writing WebDAV files: streamed PUTs with their preconditions, MOVE journalled in the id
map, DELETE; and telling a server-side lock from a dropped connection after a failed PUT.

What a write sends, per case (the rules of RFC 4918 and RFC 7232, not of one server):

* This site holds the file's WebDAV lock (its token is kept for the file's WOPI lock): the
  PROPFIND just before must still show that token (else the lock was lost: ``LockMismatch``,
  nothing written), and the PUT, MOVE or DELETE carries ``If: (<token>)``. The exclusive lock
  keeps every other writer out, so a weak ETag needs no ``If-Match``; a strong one is sent too.
* Nobody holds a lock, strong ETag: ``If-Match: "<etag>"`` (``*`` when no version is expected).
* Weak ETag (Apache marks one weak for about a second after a change): ``If-Match`` compares
  strongly and would always fail, so it is never sent. The version (the ETag's opaque part)
  is compared on a PROPFIND made after the weak window (about a second; two looks at most),
  then ``If-Match`` with the strong ETag; a server whose ETags stay weak gets
  ``If-Unmodified-Since`` with its own ``getlastmodified``.
* No ``getetag`` at all: the version is ``getlastmodified`` + size, compared on the PROPFIND
  just before, and the PUT carries ``If-Unmodified-Since``.
* A locked file not ours: ``Locked`` before any byte is sent.
* Creates never overwrite, even on servers that ignore ``If-None-Match``: the body goes to a
  temporary name (``If-None-Match: *``), then ``MOVE`` with ``Overwrite: F`` to the real name.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterable, Mapping
from email.utils import formatdate

import aiohttp

from wopibridge.errors import FileExists, LockMismatch, NotFound, Unavailable, VersionConflict
from wopibridge.locks.ownerlocks import LOCK_USER
from wopibridge.storage.base import FileStat
from wopibridge.storage.httpbody import Upload
from wopibridge.storage.idmap import journalled_move
from wopibridge.storage.names import check_path
from wopibridge.storage.names import check_plain_name as check_name
from wopibridge.storage.webdav.client import DAV, DavEntry
from wopibridge.storage.webdav.ids import WebDavFiles, encode_id
from wopibridge.storage.webdav.locks import lock_body, owner_line, read_owner
from wopibridge.storage.webdav.locks import timeout_header as lock_timeout
from wopibridge.storage.webdav.lockstate import KeptToken
from wopibridge.storage.webdav.meta import META_NS

LOST = "The lock on the file was lost at its storage"
#: How long a weak ETag is waited out before a write (Apache: one second after a change).
WEAK_WINDOW = 0.6
#: The owner's lock taken again at a renamed file's new path, when the old one's time is unknown.
RELOCK_SECONDS = 35 * 60


class WebDavWriting(WebDavFiles):
    """Every change to the collection's files."""

    async def _put(
        self, path: str, chunks: AsyncIterable[bytes], condition: Mapping[str, str]
    ) -> None:
        """Stream one PUT. A failing source aborts the request (no final chunk is sent)."""

        headers = {
            "Content-Type": "application/octet-stream",
            "Connection": "close",
            **condition,
        }
        try:
            response = await self._dav.request(
                "PUT",
                path,
                headers=headers,
                upload=Upload(chunks),
                idempotent=False,
                stream=True,
                expect100=True,
            )
        except Unavailable:
            await self._explain_broken_put(path)
            raise
        if response.status not in (200, 201, 204):
            # The server answered before reading the body: the connection cannot be reused.
            response.close()
            raise self._dav.error(response.status, what="write")
        response.release()

    async def _explain_broken_put(self, path: str) -> None:
        """A PUT ended in a connection error: raise ``Locked`` if the file is locked on the
        server (it answered 423 and dropped the connection before the answer was read);
        return if it is not, or if the server does not answer this either."""
        try:
            entry = await self._entry(path)
        except (Unavailable, NotFound):
            return
        if entry.locked or await self._refuses_writes(path):
            raise self._locked()

    async def _refuses_writes(self, path: str) -> bool:
        """Whether the server refuses a write to ``path`` for a lock: a PROPPATCH that only
        removes a property nobody sets answers 423 on a locked file, and changes nothing."""
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="{DAV}" '
            f'xmlns:m="{META_NS}"><d:remove><d:prop><m:x-lock-probe/></d:prop></d:remove>'
            "</d:propertyupdate>"
        ).encode()
        try:
            response = await self._dav.request(
                "PROPPATCH",
                path,
                headers={"Content-Type": "application/xml; charset=utf-8"},
                data=body,
            )
        except Unavailable:
            return False
        try:
            if response.status == 423:
                return True
            if response.status == 207:
                return b" 423 " in await response.read()
        except (TimeoutError, aiohttp.ClientError):
            return False
        finally:
            response.release()
        return False

    async def _our_lock(self, identity: str, entry: DavEntry) -> KeptToken | None:
        """The lock this site holds on the file, when it holds one. A lock the site kept a
        token for but the server no longer shows is lost (``LockMismatch``); a lock that is
        not ours is ``Locked``."""
        kept = await self._locking.kept(identity)
        if kept is not None:
            tokens = {lock.token for lock in entry.locks}
            if kept.token in tokens or (entry.locks and tokens == {""}):
                return kept
            if entry.reports_locks:
                raise LockMismatch("", LOST)
            return kept  # the server does not say: the If header lets it decide
        if entry.locked:
            raise self._locked()
        return None

    async def _settled(self, file_id: str, path: str, entry: DavEntry) -> DavEntry:
        """The entry once its ETag is no longer weak, or the last one seen."""
        for _ in range(2):
            if not entry.weak:
                break
            await asyncio.sleep(WEAK_WINDOW)
            entry = await self._entry(path)
        return entry

    @staticmethod
    def _condition(entry: DavEntry, expected: str | None, kept: KeptToken | None) -> dict[str, str]:
        """The precondition headers of a write over ``entry`` (see the module's rules)."""
        headers: dict[str, str] = {}
        if kept is not None:
            headers["If"] = f"(<{kept.token}>)"
        if entry.etag and not entry.weak:
            headers["If-Match"] = f'"{entry.etag}"' if expected is not None else "*"
        elif kept is None and entry.modified:
            headers["If-Unmodified-Since"] = entry.modified
        elif kept is None and entry.mtime_ns:
            headers["If-Unmodified-Since"] = formatdate(entry.mtime_ns / 1e9, usegmt=True)
        return headers

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        path = await self._path_of(file_id)
        # Some servers ignore If-Match on a missing resource and create it: look first.
        entry = await self._entry(path)
        current = self._make_stat(file_id, entry)
        kept = await self._our_lock(current.identity, entry)
        if kept is None and entry.weak:
            entry = await self._settled(file_id, path, entry)
            current = self._make_stat(file_id, entry)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict("The file changed on the storage")
        try:
            await self._put(path, chunks, self._condition(entry, expected_version, kept))
        except VersionConflict:
            if kept is not None and await self._lost(path, kept):
                raise LockMismatch("", LOST) from None
            raise
        return await self._stat_path(file_id, path)

    async def _lost(self, path: str, kept: KeptToken) -> bool:
        """After a refused write that carried our token: is the lock gone?"""
        try:
            entry = await self._entry(path)
        except (Unavailable, NotFound):
            return False
        return entry.reports_locks and kept.token not in {lock.token for lock in entry.locks}

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        folder = (await self._path_of(sibling_of)).rpartition("/")[0]
        path = f"{folder}/{check_name(name)}" if folder else check_name(name)
        if overwrite:
            await self._put(path, chunks, {})
        else:
            await self._create_new(path, name, chunks)
        return await self._stat_new(path)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        path = f"{check_path(folder)}/{check_name(name)}" if folder else check_name(name)
        await self._create_new(path, name, chunks)
        return await self._stat_path(encode_id(path), path)

    async def _create_new(self, path: str, name: str, chunks: AsyncIterable[bytes]) -> None:
        """Create ``path``, never over an existing file, whatever the server does with
        ``If-None-Match``: the body lands under a temporary name, then ``MOVE`` with
        ``Overwrite: F`` gives it its name (refused atomically when the name is taken)."""
        folder = path.rpartition("/")[0]
        temporary = f".~wopibridge-{secrets.token_hex(8)}.part"
        staged = f"{folder}/{temporary}" if folder else temporary
        try:
            await self._put(staged, chunks, {"If-None-Match": "*"})
        except VersionConflict:  # the random name is taken: nothing of ours is there
            raise Unavailable(f"The storage {self.name} refused a new file") from None
        try:
            await self._move(staged, path, name)
        except BaseException:
            await self._discard(staged)
            raise

    async def _discard(self, path: str) -> None:
        try:
            response = await self._dav.request("DELETE", path)
        except Unavailable:
            return
        response.release()

    async def _move(self, path: str, target: str, new_name: str) -> None:
        headers = {"Destination": self._dav.url(target), "Overwrite": "F"}
        response = await self._dav.request("MOVE", path, headers=headers, idempotent=False)
        try:
            if response.status == 412:
                raise FileExists(f"A file named {new_name} already exists")
            if response.status not in (201, 204):
                raise self._dav.error(response.status, what="rename")
        finally:
            response.release()

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        """MOVE, journalled in the id map: pending name, move, map; when the map cannot be
        updated the file is moved back and the map's error (507 or 503) is the answer."""
        path = await self._path_of(file_id)
        folder = path.rpartition("/")[0]
        target = f"{folder}/{check_name(new_name)}" if folder else check_name(new_name)
        entry = await self._entry(path)
        stat = self._make_stat(file_id, entry)
        if target == path:
            return stat
        kept = await self._our_lock(stat.identity, entry)
        if kept is not None:
            # A lock stays with its URL (RFC 4918 §7.7: MOVE does not move it, and some
            # servers keep it over the emptied URL): released, the file moved, taken again.
            await self._unlock(kept)
        try:
            await journalled_move(
                self._ids,
                file_id,
                path,
                target,
                lambda: self._move(path, target, new_name),
                lambda: self._move(target, path, new_name),
            )
        except BaseException:
            if kept is not None:
                await self._lock_again(stat.identity, kept, entry, path)
            raise
        if kept is not None:
            await self._lock_again(stat.identity, kept, entry, target)
        return await self._stat_path(file_id, target)

    async def _unlock(self, kept: KeptToken) -> None:
        response = await self._dav.request(
            "UNLOCK", kept.path, headers={"Lock-Token": f"<{kept.token}>"}, idempotent=False
        )
        response.release()

    async def _lock_again(self, identity: str, kept: KeptToken, entry: DavEntry, at: str) -> None:
        """Take the owner's lock at ``at`` for the same WOPI lock as ``kept`` (whose owner
        and time left ``entry`` showed), and keep its token in place of the old one."""
        ours = next((lock for lock in entry.locks if lock.token == kept.token), None)
        holder = read_owner(ours.owner) if ours is not None else None
        seconds = ours.timeout if ours is not None and ours.timeout else RELOCK_SECONDS
        owner = owner_line(LOCK_USER.get(), self._locking.site, holder.lock_id if holder else "")
        response = await self._dav.request(
            "LOCK",
            at,
            headers={
                "Depth": "0",
                "Timeout": lock_timeout(seconds),
                "Content-Type": "application/xml; charset=utf-8",
            },
            data=lock_body(owner),
            idempotent=False,
        )
        token = response.headers.get("Lock-Token", "").strip().strip("<>")
        response.release()
        if response.status in (200, 201) and token:
            await self._locking.replace(identity, kept, KeptToken(token, at), seconds)
        else:  # the next save finds the lock lost and keeps its body; the editor relocks
            await self._locking.forget(identity, kept)

    async def delete(self, file_id: str) -> None:
        path = await self._path_of(file_id)
        entry = await self._entry(path)
        stat = self._make_stat(file_id, entry)  # refuses collections
        kept = await self._locking.kept(stat.identity)
        headers: dict[str, str] = {}
        if kept is not None and kept.token in {lock.token for lock in entry.locks}:
            headers["If"] = f"(<{kept.token}>)"
        elif entry.locked:
            raise self._locked()
        response = await self._dav.request("DELETE", path, headers=headers)
        try:
            if response.status not in (200, 204):
                raise self._dav.error(response.status, what="delete")
        finally:
            response.release()
        if kept is not None:
            await self._locking.forget(stat.identity, kept)
        await self._ids.forget(file_id, path)
