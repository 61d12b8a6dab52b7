"""Finding a local file by id: the id on the file (:mod:`wopibridge.storage.xattrid`), the
id map's path for it, and the cache of files seen unchanged since their last look.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import stat as statmod
from pathlib import Path

from wopibridge.errors import NotFound, Unavailable, WopiError
from wopibridge.storage import xattrid
from wopibridge.storage.base import FileStat
from wopibridge.storage.index import new_id
from wopibridge.storage.local.tree import PATH_BOUND, LocalTree, os_error
from wopibridge.storage.names import check_plain_name

#: the shape of a backend id, as opposed to a path (a path with no dot is looked up twice)
_ID_SHAPE = re.compile(r"^~?[A-Za-z0-9_-]{16,64}$")


class LocalIdentity(LocalTree):
    """Which file an id names, and the id of a file found by path."""

    async def _identify(self, relative: str, path: Path) -> str:
        """The id of the file at ``relative``: the one it carries, given to it now if it has
        none (another instance doing the same at once: the first one wins). The map learns
        where the id is, so a file moved outside wopibridge gets its old id back here."""
        if not self.xattrs:
            return await self._ids.claim(relative, new_id())
        for _ in range(3):
            try:
                found = await asyncio.to_thread(xattrid.read_id, path)
            except OSError as exc:
                raise os_error(exc, "read") from None
            if found is None:
                candidate = new_id()
                try:
                    await asyncio.to_thread(xattrid.write_id, path, candidate, only_if_absent=True)
                except FileExistsError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                        raise os_error(exc, "read") from None
                    # not ours to tag: named by its path, as without attributes
                    return await self._ids.claim(relative, PATH_BOUND + candidate)
                await self._ids.place(candidate, relative)
                return candidate
            entry = await self._ids.lookup(found)
            if entry is None or entry.path != relative:
                elsewhere = entry.path if entry is not None else None
                if elsewhere is not None and await self._is_copy(found, elsewhere, path):
                    # a copy that kept the attribute (cp -a): the original keeps the id
                    fresh = new_id()
                    await asyncio.to_thread(xattrid.write_id, path, fresh)
                    await self._ids.place(fresh, relative)
                    return fresh
                if elsewhere is None or not await self._same_file(elsewhere, path):
                    await self._ids.place(found, relative)
            return found
        raise Unavailable("The file's id keeps changing; try again")

    async def _same_file(self, relative: str, path: Path) -> bool:
        """Whether ``relative`` is another name of ``path`` (a hard link)."""
        try:
            other = self._canonical(relative)[1]
            return await asyncio.to_thread(os.path.samefile, other, path)
        except (OSError, WopiError):
            return False

    async def _is_copy(self, file_id: str, relative: str, path: Path) -> bool:
        """Whether another file, at ``relative``, carries ``file_id`` too."""
        try:
            other = self._canonical(relative)[1]
            if await asyncio.to_thread(os.path.samefile, other, path):
                return False
            return await asyncio.to_thread(xattrid.read_id, other) == file_id
        except (OSError, WopiError):
            return False

    def _holds(self, file_id: str, path: Path) -> bool:
        """Whether the file at ``path`` is the file ``file_id`` names (its own id says so)."""
        if not self.xattrs:
            return True
        try:
            found = xattrid.read_id(path)
        except OSError:
            return False
        if found is not None:
            return found == file_id
        # a file wopibridge may not tag is named by its path, as without attributes
        return file_id.startswith(PATH_BOUND)

    async def _find(self, file_id: str) -> tuple[str, Path, os.stat_result]:
        """Where ``file_id`` is now, and its stat: the map's path, else the path a rename
        in progress (or cut short by a crash) was moving it to, each checked against the
        file's own id. A stale entry is a 404, never another file. A rename on another
        instance may move the file between reading the map and looking at the path: when the
        map changed meanwhile, it is read again."""
        entry = await self._ids.lookup(file_id)
        for _ in range(3):
            if entry is None:
                break
            for candidate, pending in ((entry.path, False), (entry.pending, True)):
                if not candidate:
                    continue
                relative, path = self._canonical(candidate)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not statmod.S_ISREG(st.st_mode) or not self._holds(file_id, path):
                    continue
                if pending:
                    with contextlib.suppress(WopiError):
                        await self._ids.finish_move(file_id, entry.path or "", relative)
                return relative, path, st
            again = await self._ids.lookup(file_id)
            if again == entry:
                break
            entry = again
        raise NotFound("File not found")

    async def resolve(self, ref: str) -> FileStat:
        if _ID_SHAPE.match(ref) and await self._ids.lookup(ref) is not None:
            return await self.stat(ref)
        relative, path = self._canonical(self._relative(ref))
        st = await asyncio.to_thread(self._os_stat, path)
        self._make_stat("", path, st)  # only regular files
        if self.xattrs:
            # a file verified here before and untouched since (same inode, same change time:
            # a rename or a new id changes it) needs no trip to the map
            with contextlib.suppress(OSError):
                found = xattrid.read_id(path)
                if found is not None and self._seen.get(found) == (path, st.st_ino, st.st_ctime_ns):
                    return self._make_stat(found, path, st)
        file_id = await self._identify(relative, path)
        self._remember(file_id, path, st)
        return self._make_stat(file_id, path, st)

    def _remember(self, file_id: str, path: Path, st: os.stat_result) -> None:
        if len(self._seen) >= 100_000:
            self._seen.clear()
        self._seen[file_id] = (path, st.st_ino, st.st_ctime_ns)

    async def stat(self, file_id: str) -> FileStat:
        """Stat by id, inline: a local stat takes microseconds, a thread hop ten times that,
        and stat sits on the path of CheckFileInfo and every lock operation.

        The map is the authority on an id's path, and another instance may have renamed the
        file and put a new one at the old path. Asking it costs more than the stat, so the
        map and the id check are skipped only when the file at the path seen last time is
        provably the same file: same inode, same change time. A save, a rename, a chmod, a
        new id or a swapped-in file changes one of them, and the map is asked.
        """
        path, st = await self._where(file_id)
        return self._make_stat(file_id, path, st)

    async def _where(self, file_id: str) -> tuple[Path, os.stat_result]:
        """The path and stat of ``file_id``: where the last look found it when the file there
        is still the same (see :meth:`stat`), else found again through the map."""
        seen = self._seen.get(file_id)
        if seen is not None:
            path, inode, ctime_ns = seen
            try:
                st = os.stat(path)
            except OSError:
                pass
            else:
                if st.st_ino == inode and st.st_ctime_ns == ctime_ns:
                    return path, st
            del self._seen[file_id]
        _, path, st = await self._find(file_id)
        self._remember(file_id, path, st)
        return path, st

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        path, _ = await self._where(file_id)
        target = path.parent / check_plain_name(name)
        try:
            st = await asyncio.to_thread(os.stat, target)
        except OSError:
            return None
        if not statmod.S_ISREG(st.st_mode):
            return None
        relative, target = self._canonical(self._relative_of(target))
        return self._make_stat(await self._identify(relative, target), target, st)
