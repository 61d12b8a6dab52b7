"""Writing local files: atomic replaces (temporary file, fsync, rename, folder fsync), new
files beside others, renames journalled in the id map, deletes.

The modification time of every write is set to strictly more than the previous one (in whole
microseconds), so ``Version`` and ``LastModifiedTime`` change on every save even when two saves
land in the same clock tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable
from pathlib import Path

from wopibridge.errors import FileExists, Forbidden, NotFound, VersionConflict
from wopibridge.storage import xattrid
from wopibridge.storage.base import FileStat
from wopibridge.storage.idmap import journalled_move
from wopibridge.storage.index import new_id
from wopibridge.storage.local.staging import LocalStaging
from wopibridge.storage.local.tree import PATH_BOUND, os_error
from wopibridge.storage.names import check_plain_name


class LocalWriting(LocalStaging):
    """Every change to the folder's files."""

    def _carries(self, file_id: str) -> bool:
        """Whether saves copy ``file_id`` onto the replacement file."""
        return self.xattrs and not file_id.startswith(PATH_BOUND)

    @staticmethod
    def _next_mtime(previous_ns: int) -> int:
        now_us = time.time_ns() // 1000
        return max(now_us, previous_ns // 1000 + 1) * 1000

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        _, path, st = await self._find(file_id)
        before = self._make_stat(file_id, path, st)
        if before.read_only_reason:
            raise Forbidden(before.read_only_reason)
        if expected_version is not None and before.version != expected_version:
            raise VersionConflict("The file changed in storage")
        temp = await self._write_temp(path.parent, chunks, st.st_mode & 0o7777)
        try:
            return await self.commit(file_id, temp.path, expected_version=expected_version)
        finally:
            temp.discard()  # removes the temporary name only if the rename did not happen

    async def commit(
        self, file_id: str, staged: Path, *, expected_version: str | None = None
    ) -> FileStat:
        """Rename ``staged`` (a durable file in :meth:`staging_folder`) over the file, after
        checking once more under the per-file lock that the id is still there, unchanged and
        writable; the file keeps its mode and its id (copied onto ``staged``)."""
        _, path, _ = await self._find(file_id)
        async with self._lock_for(path):
            _, now_at, latest_st = await self._find(file_id)
            latest = self._make_stat(file_id, now_at, latest_st)
            if latest.read_only_reason:
                raise Forbidden(latest.read_only_reason)
            if now_at != path:
                raise VersionConflict("The file changed in storage")
            if expected_version is not None and latest.version != expected_version:
                raise VersionConflict("The file changed in storage")
            mtime = self._next_mtime(latest.mtime_ns)
            try:
                if self._carries(file_id):
                    await asyncio.to_thread(xattrid.write_id, staged, file_id)
                await asyncio.to_thread(_commit, staged, path, mtime, False, True)
            except OSError as exc:
                raise os_error(exc, "write") from None
        return await asyncio.to_thread(self._stat_path, file_id, path)

    async def adopt(self, sibling_of: str, name: str, staged: Path) -> FileStat:
        """Link ``staged`` beside ``sibling_of`` as ``name`` (refused if the name is taken), as
        a new file with an id of its own."""
        _, sibling, _ = await self._find(sibling_of)
        target = sibling.parent / check_plain_name(name)
        relative = self._relative_of(target)
        file_id = ""
        async with self._lock_for(target):
            try:
                await asyncio.to_thread(os.chmod, staged, 0o644)
                if self.xattrs:
                    file_id = new_id()
                    await asyncio.to_thread(xattrid.write_id, staged, file_id)
                previous = await asyncio.to_thread(_mtime_or_zero, target)
                await asyncio.to_thread(_commit, staged, target, self._next_mtime(previous), True)
            except FileExistsError:
                raise FileExists(f"A file named {name!r} already exists") from None
            except OSError as exc:
                raise os_error(exc, "write") from None
        if file_id:
            await self._ids.place(file_id, relative)
        else:
            file_id = await self._ids.claim(relative, new_id())
        return self._stat_path(file_id, target)

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        _, sibling, _ = await self._find(sibling_of)
        return await self._create_at(sibling.parent, name, chunks, overwrite)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        path = self.root if not folder else self._canonical(self._relative(folder))[1]
        if not await asyncio.to_thread(path.is_dir):
            raise NotFound("Folder not found")
        return await self._create_at(path, name, chunks, False)

    async def _create_at(
        self, folder: Path, name: str, chunks: AsyncIterable[bytes], overwrite: bool
    ) -> FileStat:
        target = folder / check_plain_name(name)
        relative = self._relative_of(target)
        temp = await self._write_temp(folder, chunks, 0o644)
        file_id = ""
        try:
            async with self._lock_for(target):
                if self.xattrs:
                    if overwrite:  # the file at that name stays the same file, with its lock
                        with contextlib.suppress(OSError):
                            carried = await asyncio.to_thread(xattrid.read_id, target)
                            file_id = carried or ""
                    file_id = file_id or new_id()
                    await asyncio.to_thread(xattrid.write_id, temp.path, file_id)
                previous = await asyncio.to_thread(_mtime_or_zero, target)
                await asyncio.to_thread(
                    _commit, temp.path, target, self._next_mtime(previous), not overwrite
                )
        except FileExistsError:
            raise FileExists(f"A file named {name!r} already exists") from None
        except OSError as exc:
            raise os_error(exc, "write") from None
        finally:
            temp.discard()  # removes the temporary name only if it is still there
        if file_id:
            await self._ids.place(file_id, relative)
        else:
            file_id = await self._ids.claim(relative, new_id())
        return self._stat_path(file_id, target)

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        """Rename, journalled in the id map so the id resolves at every moment.

        The map first records the new name as pending, then the file moves, then the map
        moves the id. An instance killed after the move leaves the pending name, which every
        instance checks (and completes) when the id's recorded path no longer holds it. When
        the map cannot be updated the file is moved back, and the answer is the map's error
        (507 when its storage is full, 503 when it is unreachable).
        """
        relative, path, _ = await self._find(file_id)
        target = path.parent / check_plain_name(new_name)
        if target == path:
            return await self.stat(file_id)
        new_relative = self._relative_of(target)

        async def move() -> None:
            try:
                await asyncio.to_thread(_rename_noreplace, path, target)
            except FileExistsError:
                raise FileExists(f"A file named {new_name!r} already exists") from None
            except OSError as exc:
                raise os_error(exc, "rename") from None

        async with self._lock_for(path):
            await journalled_move(
                self._ids,
                file_id,
                relative,
                new_relative,
                move,
                lambda: asyncio.to_thread(_rename_noreplace, target, path),
            )
        self._seen.pop(file_id, None)
        return await self.stat(file_id)

    async def delete(self, file_id: str) -> None:
        relative, path, _ = await self._find(file_id)
        async with self._lock_for(path):
            try:
                await asyncio.to_thread(os.unlink, path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise os_error(exc, "delete") from None
            await self._ids.forget(file_id, relative)
        self._seen.pop(file_id, None)
        self._write_locks.pop(str(path), None)


def _mtime_or_zero(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(
    temp: Path,
    target: Path,
    mtime_ns: int,
    exclusive: bool = False,
    keep_mode: bool = False,
) -> None:
    """Give the temporary file its final time and move it over ``target`` in one step.

    ``exclusive`` refuses to replace an existing file: ``link`` fails atomically if the name
    is taken, which ``rename`` cannot do. ``keep_mode`` gives it the mode of the file it replaces.
    """
    if keep_mode:
        os.chmod(temp, os.stat(target).st_mode & 0o7777)
    os.utime(temp, ns=(mtime_ns, mtime_ns))
    if exclusive:
        os.link(temp, target)
        os.unlink(temp)
    else:
        os.replace(temp, target)
    _fsync_dir(target.parent)


def _rename_noreplace(source: Path, target: Path) -> None:
    os.link(source, target)
    os.unlink(source)
    _fsync_dir(target.parent)
