"""Which file an id names on an XRootD server: the id carried on the file, the id map's path.

A file's id is the extended attribute ``wopibridge.id`` (as the local storage keeps
``user.wopibridge.id``), given on first sight under the name's guard so that two instances (or
sites) naming a new file at once agree. The id map (:mod:`wopibridge.storage.idmap`) routes an
id to its path; the id on the file is checked before a path from the map is used, so a stale
entry is a 404, never another file. :class:`XrootdIdentity` is the part of
:class:`~wopibridge.storage.xrootd.storage.XrootdStorage` that does this.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from wopibridge.errors import Forbidden, NotFound
from wopibridge.storage.base import FileStat
from wopibridge.storage.idmap import IdMap
from wopibridge.storage.index import new_id
from wopibridge.storage.xrootd.client import XrdClient, attr_values
from wopibridge.storage.xrootd.config import XrootdConfig
from wopibridge.storage.xrootd.guard import guarded

ID_ATTR = "wopibridge.id"
VERSION_ATTR = "wopibridge.version"
ID_SHAPE = re.compile(r"^~?[A-Za-z0-9_-]{16,64}$")
#: ids of files that cannot carry their own (no write permission on them) start with this
PATH_BOUND = "~"


class XrootdIdentity:
    """Paths, stats and ids of one XRootD storage (its ``client``, ``config`` and id map)."""

    client: XrdClient
    config: XrootdConfig
    _ids: IdMap

    # -- paths and stats ---------------------------------------------------------------

    def _path(self, relative: str) -> str:
        return self.config.path(relative)

    def _folder_path(self, relative: str) -> str:
        return self._path(relative.rpartition("/")[0])

    def _make_stat(self, file_id: str, relative: str, info: Any, attrs: dict[str, str]) -> FileStat:
        folder, _, name = relative.rpartition("/")
        token = attrs.get(VERSION_ATTR, "")
        size, mtime = int(info.size), int(info.modtime)
        return FileStat(
            file_id=file_id,
            name=name,
            size=size,
            mtime_ns=mtime * 1_000_000_000,
            version=f"{token or '0'}.{int(info.id):x}.{mtime:x}.{size:x}",
            identity=f"{self.config.site}:{file_id}",
            owner_id=str(getattr(info, "owner", "") or ""),
            folder=folder,
        )

    async def _look(self, relative: str) -> tuple[Any, dict[str, str]]:
        """The server's stat of ``relative`` and its id and version attributes, in one round
        trip (both requests in flight at once). ``NotFound`` for folders and missing files."""
        path = self._path(relative)
        answer, named = await asyncio.gather(
            self.client.fs("stat", path),
            self.client.fs("get_xattr", path, [ID_ATTR, VERSION_ATTR]),
        )
        if not answer.ok:
            raise self.client.error(answer, what="read")
        info = answer.response
        if int(info.flags) & int(self.client.flags.StatInfoFlags.IS_DIR):
            raise NotFound("File not found")
        if not named.ok:
            raise self.client.error(named, what="read")
        return info, attr_values(named.response)

    async def _identify(self, relative: str) -> FileStat:
        """The file at ``relative``, with the id it carries (given one now if it has none)."""
        info, attrs = await self._look(relative)
        found = attrs.get(ID_ATTR, "")
        if not ID_SHAPE.match(found):
            try:
                found = await self._name(relative)
            except Forbidden:  # not ours to tag: named by its path in the id map
                found = await self._ids.claim(relative, PATH_BOUND + new_id())
                return self._make_stat(found, relative, info, attrs)
        entry = await self._ids.lookup(found)
        if entry is None or entry.path != relative:
            await self._ids.place(found, relative)
        return self._make_stat(found, relative, info, attrs)

    async def _name(self, relative: str) -> str:
        """Give the file at ``relative`` an id, under its name's guard so that two instances
        naming it at once agree (the second finds the first's)."""
        async with guarded(self.client, self._folder_path(relative), "name:" + relative):
            _, attrs = await self._look(relative)
            found = attrs.get(ID_ATTR, "")
            if not ID_SHAPE.match(found):
                found = new_id()
                await self.client.set_attrs(self._path(relative), [(ID_ATTR, found)], what="read")
        return found

    @staticmethod
    def _holds(file_id: str, attrs: dict[str, str]) -> bool:
        """Whether a file with ``attrs`` is the file ``file_id`` names: its own id says so,
        or it has none and the id is bound to its path."""
        found = attrs.get(ID_ATTR)
        if file_id.startswith(PATH_BOUND):
            return found is None
        return found == file_id

    async def _find(self, file_id: str) -> tuple[str, Any, dict[str, str]]:
        """Where ``file_id`` is: the map's path, or a rename's pending one (then the map is
        completed), each checked against the id on the file."""
        if not ID_SHAPE.match(file_id):
            raise NotFound("File not found")
        entry = await self._ids.lookup(file_id)
        if entry is None:
            raise NotFound("File not found")
        for candidate, pending in ((entry.path, False), (entry.pending, True)):
            if not candidate:
                continue
            try:
                info, attrs = await self._look(candidate)
            except NotFound:
                continue
            if not self._holds(file_id, attrs):
                continue
            if pending and entry.path:
                await self._ids.finish_move(file_id, entry.path, candidate)
            return candidate, info, attrs
        raise NotFound("File not found")

    async def path_of(self, file_id: str) -> str:
        """The server path of ``file_id`` now (for the lock store)."""
        return self._path((await self._find(file_id))[0])
