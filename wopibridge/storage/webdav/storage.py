"""WebDAV storage: Nextcloud, ownCloud, Seafile, oCIS and OCM shares from other sites.

Everything goes through one shared aiohttp ``ClientSession`` (the app's), so connections are
pooled across requests and closed with the app. Bodies are streamed both ways: a GET hands the
response's chunks to the WOPI layer, a PUT sends the editor's chunks as they arrive
(``Transfer-Encoding: chunked``); nothing holds a whole file in memory.

Consistency rules:

* Reads are pinned to the state that was stat'ed: the GET carries ``If-Match`` with the etag
  the PROPFIND answered, so a save landing in between is seen as a change, never as a mix.
* Writes carry ``If-Match`` (the expected version, or ``*`` to require the file to exist) and
  creates carry ``If-None-Match: *``, so the server does the check-and-set atomically; a 412
  becomes ``VersionConflict`` or ``FileExists``. If the editor's stream fails, the request is
  aborted before its final chunk, so the server never sees a complete short body; servers with
  part-file uploads (Nextcloud, ownCloud, oCIS) then keep the old content.
* PUTs send ``Expect: 100-continue``: the server checks the conditions and its locks before
  the body is sent, so a refusal is a clean status, not a connection reset mid-upload. They
  also ask for ``Connection: close``: a server that refused without reading the body cannot
  safely reuse that connection (one TCP handshake per upload is nothing next to its body).
* A server-side lock (a desktop client's WebDAV LOCK) answers 423, mapped to ``Locked``. The
  PROPFIND before a write asks for ``lockdiscovery``, so a file locked there is refused before
  any byte is sent. A server may still answer while the body streams, then close or reset the
  connection before the client has read the answer (cheroot does: the unread body makes the
  kernel reset the connection, and the answer is lost). A PUT that ends in a connection error is
  therefore followed by a PROPFIND and, for servers that do not report locks there, a PROPPATCH
  that removes a property that does not exist (it changes nothing, yet a locked file refuses
  it with 423). A lock found that way is the answer (``Locked``); ``Unavailable`` is kept for a
  storage that really did not answer.
* Only idempotent calls (PROPFIND, PROPPATCH, GET before its body, DELETE) are retried, after
  connection failures and 502/503/504; a storage that stays down raises ``Unavailable`` naming it.

Ids: the backend id is the URL-safe base64 of the path below the configured URL, as first seen.
A rename made through wopibridge is recorded in the id map (:mod:`wopibridge.storage.idmap`:
shared by every instance through Redis when the locks are there), so the old id keeps naming
the file on every instance, and the new path is recognised as the same file. The rename is
journalled there first, as the local storage's is, so an instance killed in the middle leaves
an id that resolves. ``identity`` (the lock key) prefers the server's ``oc:fileid``, else the
path the id was minted for, so a lock follows a rename; it is prefixed with the owning site's
name, so every site that reaches the same share computes the same key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp

from wopibridge.errors import (
    BadRequest,
    FileExists,
    Locked,
    NotFound,
    Unavailable,
    VersionConflict,
)
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import Capabilities, FileContent, FileStat
from wopibridge.storage.httpbody import HttpFileContent, Upload
from wopibridge.storage.idmap import IdMap, MemoryIdMap, journalled_move
from wopibridge.storage.index import new_id
from wopibridge.storage.names import check_path
from wopibridge.storage.names import check_plain_name as check_name
from wopibridge.storage.remote import StreamsStagedFiles
from wopibridge.storage.webdav.client import DAV, STAT_BODY, DavClient, DavEntry
from wopibridge.storage.webdav.config import WebDavConfig

log = logging.getLogger("wopibridge.storage.webdav")

META_NS = "urn:wopibridge:meta"

_META_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def encode_id(path: str) -> str:
    """The backend id of a path: URL-safe base64 without padding (fits ``fileids``)."""
    return base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")


def decode_id(file_id: str) -> str:
    """The path behind a backend id; a malformed id is an unknown file."""
    try:
        padded = file_id + "=" * (-len(file_id) % 4)
        path = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise NotFound("File not found") from None
    return check_path(path, error=NotFound("File not found"))


class WebDavStorage(StreamsStagedFiles):
    """Files below one WebDAV collection URL."""

    capabilities = Capabilities(user_credential=True, shared_by_sites=True)

    def __init__(
        self,
        name: str,
        config: WebDavConfig,
        session: aiohttp.ClientSession,
        *,
        user_token: str | None = None,
        ids: IdMap | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._session = session
        self._user_token = user_token
        self._dav = DavClient(name, config, session, user_token)
        self._ids: IdMap = MemoryIdMap() if ids is None else ids

    def with_credential(self, credential: str | None) -> WebDavStorage:
        """A view of this storage that authenticates as the user (``auth = "user"``)."""
        if self.config.auth != "user" or credential == self._user_token:
            return self
        return WebDavStorage(
            self.name, self.config, self._session, user_token=credential, ids=self._ids
        )

    def lock_store(self, fallback: LockStore) -> LockStore:
        """WebDAV locks belong to desktop clients; WOPI locks stay in wopibridge's store."""
        return fallback

    async def start(self) -> None:
        log.info("storage %s: WebDAV at %s", self.name, self.config.url)

    # -- HTTP --------------------------------------------------------------------------

    # -- PROPFIND ----------------------------------------------------------------------

    def _make_stat(self, file_id: str, entry: DavEntry) -> FileStat:
        if entry.is_collection:
            raise NotFound("File not found")
        folder, _, name = entry.path.rpartition("/")
        version = entry.etag or f"{entry.mtime_ns:x}.{entry.size:x}"
        key = entry.fileid or _origin(file_id)
        return FileStat(
            file_id=file_id,
            name=name,
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            version=version,
            identity=f"{self.config.site}:{key}",
            owner_id=entry.owner,
            folder=folder,
        )

    async def _entry(self, path: str) -> DavEntry:
        entry = self._dav.parse_entry(await self._dav.propfind(path))
        if entry is None or entry.is_collection:
            raise NotFound("File not found")
        entry.path = path
        return entry

    async def _stat_path(self, file_id: str, path: str) -> FileStat:
        return self._make_stat(file_id, await self._entry(path))

    def _locked(self) -> Locked:
        return Locked(f"The file is locked on the storage {self.name}")

    async def _stat_new(self, path: str) -> FileStat:
        """A file found by its path: looked at first (a missing one is not recorded), then
        given its id."""
        entry = await self._entry(path)
        return self._make_stat(await self._id_of(path), entry)

    async def _path_of(self, file_id: str) -> str:
        """Where ``file_id`` is: the id map's path after a rename, else the path it encodes;
        when that is gone and a rename was in flight (an instance killed in its middle), the
        new path, and the map is completed."""
        entry = await self._ids.lookup(file_id)
        if entry is None or (entry.path and not entry.pending):
            return entry.path if entry is not None and entry.path else decode_id(file_id)
        path = entry.path or decode_id(file_id)
        if entry.pending:
            try:
                await self._stat_path(file_id, path)
            except NotFound:
                await self._stat_path(file_id, entry.pending)
                await self._ids.finish_move(file_id, path, entry.pending)
                return entry.pending
        return path

    async def _id_of(self, path: str) -> str:
        """The id of the file at ``path``: the one a rename brought there, else its path's,
        else (that id names a renamed file elsewhere) a new one."""
        found = await self._ids.claim(path, encode_id(path))
        return found or await self._ids.claim(path, new_id())

    # -- Storage -----------------------------------------------------------------------

    async def resolve(self, ref: str) -> FileStat:
        if await self._ids.lookup(ref) is not None:
            return await self.stat(ref)
        try:
            path = decode_id(ref)
        except NotFound:
            path = None
        if path is not None:
            try:
                return await self._stat_new(path)
            except NotFound:
                pass
        return await self._stat_new(check_path(ref))

    async def stat(self, file_id: str) -> FileStat:
        return await self._stat_path(file_id, await self._path_of(file_id))

    async def open_read(self, file_id: str) -> FileContent:
        path = await self._path_of(file_id)
        for _ in range(3):
            stat = await self._stat_path(file_id, path)
            response = await self._dav.request(
                "GET", path, headers={"If-Match": f'"{stat.version}"'}, stream=True
            )
            if response.status == 200:
                return HttpFileContent(stat, response, self.name)
            response.release()
            if response.status != 412:
                raise self._dav.error(response.status, what="read")
        raise Unavailable(f"The file keeps changing on the storage {self.name}")

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
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict("The file changed on the storage")
        if entry.locked:
            raise self._locked()
        condition = f'"{expected_version}"' if expected_version is not None else "*"
        await self._put(path, chunks, {"If-Match": condition})
        return await self._stat_path(file_id, path)

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
        condition = {} if overwrite else {"If-None-Match": "*"}
        try:
            await self._put(path, chunks, condition)
        except VersionConflict:
            raise FileExists(f"A file named {name} already exists") from None
        return await self._stat_new(path)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        path = f"{check_path(folder)}/{check_name(name)}" if folder else check_name(name)
        try:  # If-None-Match: * makes the server refuse an existing name atomically
            await self._put(path, chunks, {"If-None-Match": "*"})
        except VersionConflict:
            raise FileExists(f"A file named {name} already exists") from None
        return await self._stat_path(encode_id(path), path)

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        folder = (await self._path_of(file_id)).rpartition("/")[0]
        path = f"{folder}/{check_name(name)}" if folder else check_name(name)
        try:
            return await self._stat_new(path)
        except NotFound:
            return None

    async def _move(self, path: str, target: str, new_name: str) -> None:
        response = await self._dav.request(
            "MOVE",
            path,
            headers={"Destination": self._dav.url(target), "Overwrite": "F"},
            idempotent=False,
        )
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
        if target == path:
            return await self._stat_path(file_id, path)
        await journalled_move(
            self._ids,
            file_id,
            path,
            target,
            lambda: self._move(path, target, new_name),
            lambda: self._move(target, path, new_name),
        )
        return await self._stat_path(file_id, target)

    async def delete(self, file_id: str) -> None:
        path = await self._path_of(file_id)
        await self._stat_path(file_id, path)  # refuse collections
        response = await self._dav.request("DELETE", path)
        try:
            if response.status not in (200, 204):
                raise self._dav.error(response.status, what="delete")
        finally:
            response.release()
        await self._ids.forget(file_id, path)

    @staticmethod
    def _meta_tag(key: str) -> str:
        """An XML element name for a metadata key: itself when safe, else its hex form."""
        if _META_KEY.match(key) and not key.lower().startswith("xml"):
            return key
        if not key or len(key) > 512:
            raise BadRequest("Invalid metadata key")
        return "x-" + key.encode().hex()

    async def get_meta(self, file_id: str, key: str) -> str | None:
        tag = self._meta_tag(key)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:propfind xmlns:d="{DAV}" xmlns:m="{META_NS}"><d:prop><d:resourcetype/>'
            f"<m:{tag}/></d:prop></d:propfind>"
        ).encode()
        element = await self._dav.propfind(await self._path_of(file_id), body)
        for propstat in element.findall(f"{{{DAV}}}propstat"):
            status = propstat.findtext(f"{{{DAV}}}status") or ""
            found = propstat.find(f"{{{DAV}}}prop/{{{META_NS}}}{tag}")
            if found is not None and " 200 " in status + " ":
                return found.text or ""
        return None

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        tag = self._meta_tag(key)
        root = ET.Element(f"{{{DAV}}}propertyupdate")
        prop = ET.SubElement(ET.SubElement(root, f"{{{DAV}}}set"), f"{{{DAV}}}prop")
        ET.SubElement(prop, f"{{{META_NS}}}{tag}").text = value
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        path = await self._path_of(file_id)
        response = await self._dav.request(
            "PROPPATCH",
            path,
            headers={"Content-Type": "application/xml; charset=utf-8"},
            data=body,
        )
        try:
            if response.status != 207:
                raise self._dav.error(response.status, what="annotate")
            payload = await response.read()
        finally:
            response.release()
        try:
            statuses = [s.text or "" for s in ET.fromstring(payload).iter(f"{{{DAV}}}status")]
        except ET.ParseError:
            raise Unavailable(f"The storage {self.name} sent an unreadable answer") from None
        failed = [s for s in statuses if " 200 " not in s + " "]
        if failed:
            code = int(failed[0].split()[1]) if len(failed[0].split()) > 1 else 500
            raise self._dav.error(code, what="annotate")

    async def check(self) -> None:
        """The server answers a PROPFIND of the root. Without a user's credential (``auth =
        "user"``) a 401 still proves it is up."""
        probe = self
        if self.config.auth == "user" and not self._user_token:
            probe = WebDavStorage(self.name, replace(self.config, auth="none"), self._session)
        response = await probe._dav.request(
            "PROPFIND",
            self._dav.base,
            headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
            data=STAT_BODY,
            absolute=True,
        )
        response.release()
        expected = (207, 401) if probe is not self else (207,)
        if response.status not in expected:
            raise Unavailable(f"The storage {self.name} answered {response.status}")

    async def lock_file_ids(self) -> list[str]:
        return []  # see Storage.lock_file_ids: no walk over the network

    async def close(self) -> None:
        """The session belongs to the app; the id map is ours."""
        await self._ids.close()


def build(
    name: str,
    table: Mapping[str, Any],
    session: aiohttp.ClientSession,
    ids: IdMap | None = None,
) -> WebDavStorage:
    return WebDavStorage(name, WebDavConfig.from_table(name, table), session, ids=ids)


def _origin(file_id: str) -> str:
    """The path an id was minted for (its lock key survives renames), or the id itself."""
    try:
        return decode_id(file_id)
    except NotFound:
        return file_id
