"""XRootD storage: files on EOS, dCache or any ``xrootd`` server, through the XRootD protocol.

Identity: a file's id is kept on the file as the extended attribute ``wopibridge.id`` (as the
local storage keeps ``user.wopibridge.id``), given on first sight under the name's guard so
two instances (or sites) naming a new file at once agree. Every save copies the file's
attributes onto its replacement before the ``mv``, and ``xrdfs mv`` keeps them, so the id,
hence the lock key, survives saves and renames made by anyone. The id map
(:mod:`wopibridge.storage.idmap`, in Redis when the locks are there) routes an id to its
path; the id on the file is checked before a path from the map is used, so a stale entry is a
404, never another file, and opening the file by its new path gives its old id back.

Saves are atomic: the body streams into a temporary file beside the file (``.~wb-*.tmp``),
the attributes follow, and one ``mv`` replaces the file, under the file's guard
(:mod:`.guard`) after a last check of the version and of the lock on the file (another
site's lock refuses the save: :meth:`.locks.OwnerLocks.refuses_save`). A failed body removes the
temporary file; the old bytes stay. A save is given a fresh ``wopibridge.version`` token, so
``Version`` changes on every save even within the second the server's times resolve.

What an instance killed mid-save leaves beside a file (an upload, a guard) is removed by a
later save into the same folder (:mod:`.sweep`).

Creates reserve the name with an exclusive create (the server refuses an existing name
atomically) and move the complete body over the reservation.

Locks: :class:`.locks.XrootdLockStore`, on the file (``capabilities.own_locks``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterable

from wopibridge.errors import (
    BadRequest,
    FileExists,
    InsufficientStorage,
    Locked,
    NotFound,
    Unavailable,
    VersionConflict,
    WopiError,
)
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import Capabilities, FileContent, FileStat
from wopibridge.storage.idmap import IdMap, MemoryIdMap, journalled_move
from wopibridge.storage.index import new_id
from wopibridge.storage.names import check_path, check_plain_name
from wopibridge.storage.remote import StreamsStagedFiles
from wopibridge.storage.xrootd.client import XrdClient
from wopibridge.storage.xrootd.config import XrootdConfig
from wopibridge.storage.xrootd.guard import guarded
from wopibridge.storage.xrootd.identity import (
    ID_ATTR,
    ID_SHAPE,
    PATH_BOUND,
    VERSION_ATTR,
    XrootdIdentity,
)
from wopibridge.storage.xrootd.locks import EOS_APP, OwnerLocks, XrootdLockStore
from wopibridge.storage.xrootd.sweep import LeftoverSweep
from wopibridge.storage.xrootd.transfer import XrdFileContent, temp_name, upload

log = logging.getLogger("wopibridge.storage.xrootd")

META_PREFIX = "wopibridge.meta."
_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _check_name(name: str) -> str:
    """A name the server can carry: a ``?`` would start the URL's options in XRootD."""
    name = check_plain_name(name)
    if "?" in name:
        raise BadRequest("The storage cannot keep names with '?'")
    return name


def _meta_text(value: str) -> str:
    """A metadata value as an attribute: the text itself after ``=``; hex after ``x`` when it
    holds a NUL, which the client library's strings would cut."""
    return f"x{value.encode().hex()}" if "\x00" in value else f"={value}"


def _meta_value(text: str) -> str:
    return bytes.fromhex(text[1:]).decode() if text.startswith("x") else text[1:]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


class XrootdStorage(XrootdIdentity, StreamsStagedFiles):
    """Files below ``config.root`` on one XRootD server."""

    capabilities = Capabilities(own_locks=True, shared_by_sites=True)

    def __init__(
        self, name: str, config: XrootdConfig, ids: IdMap | None = None, *, site: str = ""
    ) -> None:
        self.name = name
        self.config = config
        self.client = XrdClient(name, config)
        self._ids: IdMap = ids if ids is not None else MemoryIdMap()
        self.owner_locks = OwnerLocks(self.client, site or config.site, self.is_eos)
        self._eos: bool | None = {"true": True, "false": False}.get(config.eos)
        self._sweep = LeftoverSweep(self.client)

    def with_credential(self, credential: str | None) -> XrootdStorage:
        return self

    def lock_store(self, fallback: LockStore) -> LockStore:
        """WOPI locks on the files themselves, with the site's store in front."""
        return XrootdLockStore(self.owner_locks, self.config.site + ":", self.path_of, fallback)

    def lock_mode(self) -> str:
        """One line for ``/ready`` and the status page (``ReportsLocks``)."""
        eos = " and EOS's sys.app.lock" if self._eos else ""
        return f"on the files (iop.lock attribute{eos})"

    async def start(self) -> None:
        log.info("storage %s: XRootD at %s%s", self.name, self.config.url, self.config.root)
        try:
            if await self.is_eos():
                log.info("storage %s: EOS, keeping its app locks beside WOPI locks", self.name)
        except WopiError:
            pass  # a server that is down now is asked again when it answers

    async def is_eos(self) -> bool:
        """Whether the server is EOS: ``eos`` in the table, else asked once (EOS answers for
        its ``/proc/user/`` command path, which no plain server has). On EOS, files are
        opened as the WOPI application ``wopi_wopibridge`` (``eos.app``), the owner its app
        locks name."""
        if self._eos is None:
            answer = await self.client.fs("stat", "/proc/user/")
            if not answer.ok and not answer.errno:
                return False  # the server did not answer: ask again next time
            self._eos = answer.ok
        if self._eos and not self.client.opaque:
            self.client.opaque = f"eos.app={EOS_APP}"
        return self._eos

    # -- Storage -----------------------------------------------------------------------

    async def resolve(self, ref: str) -> FileStat:
        if ID_SHAPE.match(ref) and await self._ids.lookup(ref) is not None:
            try:
                return await self.stat(ref)
            except NotFound:
                pass
        relative = check_path(ref)
        if "?" in relative:
            raise NotFound("File not found")
        return await self._identify(relative)

    async def stat(self, file_id: str) -> FileStat:
        relative, info, attrs = await self._find(file_id)
        return self._make_stat(file_id, relative, info, attrs)

    async def open_read(self, file_id: str) -> FileContent:
        relative, _, _ = await self._find(file_id)
        handle = self.client.new_file()
        opened = await handle.open(self._path(relative), self.client.flags.OpenFlags.READ)
        if not opened.ok:
            raise self.client.error(opened, what="read")
        try:
            answer = await handle.stat()
            if not answer.ok:
                raise self.client.error(answer, what="read")
            attrs = await handle.get_attrs([ID_ATTR, VERSION_ATTR])
            if not self._holds(file_id, attrs):  # replaced by another file in between
                raise NotFound("File not found")
        except BaseException:
            await handle.close()
            raise
        return XrdFileContent(self._make_stat(file_id, relative, answer.response, attrs), handle)

    async def _land(
        self,
        temp: str,
        relative: str,
        file_id: str,
        *,
        expected_version: str | None,
    ) -> None:
        """Move the complete upload ``temp`` over the file ``file_id`` at ``relative``, with
        the file's attributes and a fresh version, if the file is still as expected."""
        path = self._path(relative)
        async with guarded(self.client, self._folder_path(relative), file_id):
            info, attrs = await self._look(relative)
            if not self._holds(file_id, attrs):
                raise NotFound("File not found")
            current = self._make_stat(file_id, relative, info, attrs)
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict("The file changed on the storage")
            carried = await self.client.list_attrs(path)
            if await self.owner_locks.refuses_save(carried, current.identity):
                raise Locked(f"The file is locked on the storage {self.name}")
            if not file_id.startswith(PATH_BOUND):
                carried[ID_ATTR] = file_id
            carried[VERSION_ATTR] = secrets.token_hex(6)
            await self.client.set_attrs(temp, sorted(carried.items()), what="write")
            await self.client.checked("mv", temp, path, what="write")

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        relative, info, attrs = await self._find(file_id)
        if expected_version is not None:
            current = self._make_stat(file_id, relative, info, attrs)
            if current.version != expected_version:
                raise VersionConflict("The file changed on the storage")
        temp = self._path(_join(relative.rpartition("/")[0], temp_name()))
        await upload(self.client, temp, chunks)
        try:
            await self._land(temp, relative, file_id, expected_version=expected_version)
        except BaseException:
            await self._discard(temp)
            raise
        with contextlib.suppress(WopiError):
            await self._sweep.folder(self._folder_path(relative))
        return await self.stat(file_id)

    async def _discard(self, path: str) -> None:
        try:
            await self.client.fs("rm", path)
        except WopiError:  # the server went away: the sweep of a later save's folder... none
            log.warning("storage %s: could not remove an unfinished upload", self.name)

    async def _create_at(
        self, relative: str, chunks: AsyncIterable[bytes], *, overwrite: bool
    ) -> FileStat:
        folder = relative.rpartition("/")[0]
        path = self._path(relative)
        if overwrite:
            try:
                existing = await self._identify(relative)
            except NotFound:
                existing = None
            if existing is not None:
                return await self.write(existing.file_id, chunks)
        temp = self._path(_join(folder, temp_name()))
        await upload(self.client, temp, chunks)
        reserved = False
        try:
            holder = self.client.new_file()
            answer = await holder.open(path, self.client.flags.OpenFlags.NEW)
            if not answer.ok:
                if answer.exists:
                    raise FileExists("A file with that name already exists")
                raise self.client.error(answer, what="write")
            reserved = True
            await holder.close()
            file_id = new_id()
            attrs = [(ID_ATTR, file_id), (VERSION_ATTR, secrets.token_hex(6))]
            await self.client.set_attrs(temp, attrs, what="write")
            await self.client.checked("mv", temp, path, what="write")
            reserved = False
        except BaseException:
            await self._discard(temp)
            if reserved:
                await self._discard(path)
            raise
        await self._ids.place(file_id, relative)
        return await self.stat(file_id)

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        relative, _, _ = await self._find(sibling_of)
        target = _join(relative.rpartition("/")[0], _check_name(name))
        return await self._create_at(target, chunks, overwrite=overwrite)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        folder = check_path(folder) if folder else ""
        answer = await self.client.fs("stat", self._path(folder))
        if not answer.ok:
            raise self.client.error(answer, what="write")
        if not int(answer.response.flags) & int(self.client.flags.StatInfoFlags.IS_DIR):
            raise NotFound("The folder does not exist")
        return await self._create_at(_join(folder, _check_name(name)), chunks, overwrite=False)

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        relative, _, _ = await self._find(file_id)
        try:
            return await self._identify(_join(relative.rpartition("/")[0], _check_name(name)))
        except NotFound:
            return None

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        """``mv`` onto a name reserved by an exclusive create (so an existing name is refused
        atomically), journalled in the id map."""
        relative, _, _ = await self._find(file_id)
        target = _join(relative.rpartition("/")[0], _check_name(new_name))
        if target == relative:
            return await self.stat(file_id)
        source, destination = self._path(relative), self._path(target)
        holder = self.client.new_file()
        answer = await holder.open(destination, self.client.flags.OpenFlags.NEW)
        if not answer.ok:
            if answer.exists:
                raise FileExists(f"A file named {new_name} already exists")
            raise self.client.error(answer, what="rename")
        await holder.close()

        async def move() -> None:
            try:
                await self.client.checked("mv", source, destination, what="rename")
            except BaseException:
                await self._discard(destination)
                raise

        async def move_back() -> None:
            await self.client.checked("mv", destination, source, what="rename")

        await journalled_move(self._ids, file_id, relative, target, move, move_back)
        return await self.stat(file_id)

    async def delete(self, file_id: str) -> None:
        relative, _, _ = await self._find(file_id)
        await self.client.checked("rm", self._path(relative), what="delete")
        await self._ids.forget(file_id, relative)

    @staticmethod
    def _meta_attr(key: str) -> str:
        """The attribute of a metadata key: the key itself when short and plain, else a
        digest (attribute names are short on most servers)."""
        if not key or len(key) > 1024:
            raise BadRequest("Invalid metadata key")
        if _META_KEY.match(key):
            return META_PREFIX + key
        return META_PREFIX + "h." + hashlib.sha256(key.encode()).hexdigest()[:40]

    async def get_meta(self, file_id: str, key: str) -> str | None:
        relative, _, _ = await self._find(file_id)
        attr = self._meta_attr(key)
        attrs = await self.client.get_attrs(self._path(relative), [attr])
        if attrs is None:
            raise NotFound("File not found")
        value = attrs.get(attr)
        return None if value is None else _meta_value(value)

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        """Under the file's guard, so a save landing at once carries it onto its
        replacement. A file's attributes share little room on some filesystems (4 KiB on
        ext4): a value that does not fit is 507 saying so."""
        relative, _, _ = await self._find(file_id)
        attr = self._meta_attr(key)
        async with guarded(self.client, self._folder_path(relative), file_id):
            relative, _, _ = await self._find(file_id)
            path = self._path(relative)
            try:
                await self.client.set_attrs(path, [(attr, _meta_text(value))], what="annotate")
            except InsufficientStorage:
                raise InsufficientStorage(
                    f"The storage {self.name} has no room for this metadata on the file"
                ) from None

    async def check(self) -> None:
        """The server answers a stat of the root."""
        answer = await self.client.fs("stat", self.config.root)
        if not answer.ok:
            raise Unavailable(f"The storage {self.name} is unavailable")

    async def lock_file_ids(self) -> list[str]:
        return []  # see Storage.lock_file_ids: no walk over the network

    async def close(self) -> None:
        """The client library's connections are its own; the id map is ours."""
        await self._ids.close()
