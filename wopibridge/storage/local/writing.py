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
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from wopibridge.errors import FileExists, Forbidden, NotFound, VersionConflict
from wopibridge.storage import xattrid
from wopibridge.storage.base import FileStat
from wopibridge.storage.idmap import journalled_move
from wopibridge.storage.index import new_id
from wopibridge.storage.local.owner import refuse_foreign
from wopibridge.storage.local.records import Record
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
        """Rename ``staged`` (a durable file in :meth:`staging_folder`) over the file, under
        the file's mutex (:meth:`_exclusive`), after finding it there once more: still there,
        in the folder ``staged`` is in, unchanged, writable and not locked by another site.
        The file keeps its mode and its id (copied onto ``staged``). A rename or a delete on
        another instance therefore lands wholly before or wholly after the save."""
        async with self._exclusive(file_id) as record:
            _, path, latest_st = await self._find(file_id)
            latest = self._make_stat(file_id, path, latest_st)
            if latest.read_only_reason:
                raise Forbidden(latest.read_only_reason)
            if path.parent != staged.parent:
                raise VersionConflict("The file changed in storage")
            if expected_version is not None and latest.version != expected_version:
                raise VersionConflict("The file changed in storage")
            mtime = self._next_mtime(latest.mtime_ns)
            site = self._sites.current
            carries = self._carries(file_id)
            try:
                landed, kept = await asyncio.to_thread(
                    self._land, record, site, staged, file_id, path, mtime, carries, latest_st
                )
            except OSError as exc:
                raise os_error(exc, "write") from None
        self._landed(file_id, path, kept)
        return landed

    def _land(
        self,
        record: Record,
        site: str | None,
        staged: Path,
        file_id: str,
        path: Path,
        mtime: int,
        carries: bool,
        previous: os.stat_result,
    ) -> tuple[FileStat, bool]:
        """The blocking part of a commit, in one thread hop: the file and whether a version of
        its previous content was kept."""
        refuse_foreign(record, site)
        if carries:
            xattrid.write_id(staged, file_id)
        kept = self._replace(file_id, staged, path, mtime, previous)
        return self._stat_path(file_id, path), kept

    def _replace(
        self, file_id: str, staged: Path, path: Path, mtime_ns: int, previous: os.stat_result
    ) -> bool:
        """The one step of a save that replaces the file (in the commit's thread hop, under
        the file's mutex); the versions layer (:mod:`.versions`) overrides it to keep the
        previous content, and answers whether it did."""
        _commit(staged, path, mtime_ns, False, True)
        return False

    def _landed(self, file_id: str, path: Path, kept: bool) -> None:
        """Called on the event loop once a save landed (the versions layer counts and
        prunes there)."""

    async def adopt(self, sibling_of: str, name: str, staged: Path) -> FileStat:
        """Link ``staged`` beside ``sibling_of`` as ``name`` (refused if the name is taken), as
        a new file with an id of its own. The link is exclusive, and nobody knows the new id
        yet: no mutex is needed."""
        _, sibling, _ = await self._find(sibling_of)
        target = sibling.parent / check_plain_name(name)
        relative = self._relative_of(target)
        file_id = ""
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
            carried = ""
            if self.xattrs and overwrite:  # the file at that name stays the same file
                with contextlib.suppress(OSError):
                    found = await asyncio.to_thread(xattrid.read_id, target)
                    carried = found or ""
            async with self._replacing(carried) as record:
                if self.xattrs:
                    file_id = carried or new_id()
                    await asyncio.to_thread(xattrid.write_id, temp.path, file_id)
                if record is not None:
                    await asyncio.to_thread(refuse_foreign, record, self._sites.current)
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

    @contextlib.asynccontextmanager
    async def _replacing(self, carried: str) -> AsyncIterator[Record | None]:
        """The mutex of the file an overwrite replaces (by the id it carries), if any."""
        if not carried:
            yield None
            return
        async with self._exclusive(carried) as record:
            yield record

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        """Rename, journalled in the id map so the id resolves at every moment, under the
        file's mutex so that no save or delete of another instance lands in between.

        The map first records the new name as pending, then the file moves, then the map
        moves the id. An instance killed after the move leaves the pending name, which every
        instance checks (and completes) when the id's recorded path no longer holds it. When
        the map cannot be updated the file is moved back, and the answer is the map's error
        (507 when its storage is full, 503 when it is unreachable).
        """
        async with self._exclusive(file_id) as record:
            relative, path, _ = await self._find(file_id)
            target = path.parent / check_plain_name(new_name)
            if target == path:
                return self._stat_path(file_id, path)
            await asyncio.to_thread(refuse_foreign, record, self._sites.current)
            new_relative = self._relative_of(target)

            async def move() -> None:
                try:
                    await asyncio.to_thread(_rename_noreplace, path, target)
                except FileExistsError:
                    raise FileExists(f"A file named {new_name!r} already exists") from None
                except OSError as exc:
                    raise os_error(exc, "rename") from None

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
        """Delete the file wherever its id is now, under its mutex: a rename racing it on any
        instance either finished first (and the file is deleted at its new name) or finds no
        file. Its record goes with it."""
        async with self._exclusive(file_id) as record:
            relative, path, _ = await self._find(file_id)
            await asyncio.to_thread(refuse_foreign, record, self._sites.current)
            try:
                await asyncio.to_thread(os.unlink, path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise os_error(exc, "delete") from None
            await self._ids.forget(file_id, relative)
            self._seen.pop(file_id, None)
            await asyncio.to_thread(self._records.remove, record)


def _mtime_or_zero(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def fsync_dir(folder: Path) -> None:
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
    fsync_dir(target.parent)


def _rename_noreplace(source: Path, target: Path) -> None:
    os.link(source, target)
    os.unlink(source)
    fsync_dir(target.parent)
