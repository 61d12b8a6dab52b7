"""Finding a WebDAV file: ids (the URL-safe base64 of a path), the id map's path after a
rename, and the PROPFIND that answers a file's stat.

The backend id is the path below the configured URL as first seen; a rename made through
wopibridge is recorded in the id map, so the old id keeps naming the file on every instance.
``identity`` (the lock key) prefers the server's ``oc:fileid``, else the path the id was minted
for, so a lock follows a rename; it is prefixed with the owning site's name.
"""

from __future__ import annotations

import base64
import binascii

import aiohttp

from wopibridge.errors import Locked, NotFound
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.storage.base import Capabilities, FileStat
from wopibridge.storage.idmap import IdMap, MemoryIdMap
from wopibridge.storage.index import new_id
from wopibridge.storage.names import check_path
from wopibridge.storage.names import check_plain_name as check_name
from wopibridge.storage.webdav.client import STAT_BODY, DavClient, DavEntry
from wopibridge.storage.webdav.config import WebDavConfig
from wopibridge.storage.webdav.lockstate import DavLockState


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


def origin(file_id: str) -> str:
    """The path an id was minted for (its lock key survives renames), or the id itself."""
    try:
        return decode_id(file_id)
    except NotFound:
        return file_id


class WebDavFiles:
    """The files below one WebDAV collection URL, found by id or by path."""

    capabilities = Capabilities(user_credential=True, shared_by_sites=True)

    def __init__(
        self,
        name: str,
        config: WebDavConfig,
        session: aiohttp.ClientSession,
        *,
        user_token: str | None = None,
        ids: IdMap | None = None,
        locking: DavLockState | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._session = session
        self._user_token = user_token
        self._dav = DavClient(name, config, session, user_token)
        self._ids: IdMap = MemoryIdMap() if ids is None else ids
        self._locking = locking if locking is not None else DavLockState(MemoryLockStore(), "")
        self.capabilities = self._capabilities_for(config)

    def _capabilities_for(self, config: WebDavConfig) -> Capabilities:
        """What this collection can do (the storage adds versions where the server has them)."""
        return type(self).capabilities

    def _make_stat(self, file_id: str, entry: DavEntry) -> FileStat:
        if entry.is_collection:
            raise NotFound("File not found")
        folder, _, name = entry.path.rpartition("/")
        version = entry.etag or f"{entry.mtime_ns:x}.{entry.size:x}"
        key = entry.fileid or origin(file_id)
        identity = f"{self.config.site}:{key}"
        self._locking.seen(identity, file_id)
        return FileStat(
            file_id=file_id,
            name=name,
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            version=version,
            identity=identity,
            owner_id=entry.owner,
            folder=folder,
        )

    async def _entry(self, path: str, body: bytes = STAT_BODY) -> DavEntry:
        """The file at ``path`` with the properties ``body`` asks for; ``NotFound`` for a
        folder or nothing."""
        entry = self._dav.parse_entry(await self._dav.propfind(path, body))
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

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        folder = (await self._path_of(file_id)).rpartition("/")[0]
        path = f"{folder}/{check_name(name)}" if folder else check_name(name)
        try:
            return await self._stat_new(path)
        except NotFound:
            return None
