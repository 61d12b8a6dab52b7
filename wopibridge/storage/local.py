"""Local POSIX storage: a folder on this machine (or any mounted filesystem).

Safety rules this backend keeps:

* Only files under ``root``: references with ``..``, absolute paths, or symlinks that resolve
  outside the root are refused.
* Writes are atomic: the new bytes go to a temporary file in the same folder, are fsynced, and
  replace the old file with one ``rename``; the folder is fsynced after. A crash at any moment
  leaves either the old or the new content, never a mix. The temporary file is locked while its
  writer lives (:mod:`.tempfiles`); those a crash left are swept at start, those another live
  instance is writing are not.
* A PutFile body is written once (``local_staging``): the WOPI layer streams it into a
  temporary file of :meth:`LocalStorage.staging_folder` and :meth:`LocalStorage.commit` renames
  it over the file, or :meth:`LocalStorage.adopt` links it beside the file as a conflict copy.
* The modification time of every write is set to strictly more than the previous one (in whole
  microseconds), so ``Version`` and ``LastModifiedTime`` change on every save even when two saves
  land in the same clock tick.
* Reads hand the kernel an open descriptor (``/proc/self/fd``), so GetFile uses sendfile and
  serves exactly the file state that was stat'ed, even if a save replaces the file meanwhile.

Identity: a file's id is kept on the file (:mod:`.xattrid`) and copied onto the replacement of
every save, so every instance over the folder reads the same id and takes the same lock, a
``mv`` keeps it, and a symlink or hard link inside the root shows it too. The id map
(:mod:`.idmap`) routes an id to its current path for every instance; the id on the file is
checked before a path from the map is used. Where the filesystem keeps no user attributes the
map alone names files, by path, as before. A hard-linked file (more than one name) is view
only: an atomic replace would give the edited name a new inode and silently split it from
its other names, and writing in place would give up atomic saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import stat as statmod
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path, PurePosixPath

from wopibridge.errors import (
    BadRequest,
    FileExists,
    Forbidden,
    InsufficientStorage,
    NotFound,
    Unavailable,
    VersionConflict,
    WopiError,
)
from wopibridge.locks.base import LockStore
from wopibridge.storage import xattrid
from wopibridge.storage.base import CHUNK_SIZE, Capabilities, FileContent, FileStat
from wopibridge.storage.idmap import IdMap, SqliteIdMap, journalled_move
from wopibridge.storage.index import new_id
from wopibridge.storage.names import check_plain_name
from wopibridge.storage.tempfiles import WRITE_BATCH, TempFile, sweep

log = logging.getLogger("wopibridge.storage.local")

_PROC_FD = Path("/proc/self/fd")
#: the shape of a backend id, as opposed to a path (a path with no dot is looked up twice)
_ID_SHAPE = re.compile(r"^~?[A-Za-z0-9_-]{16,64}$")
#: ids of files that cannot carry their own (no write permission on them) start with this
PATH_BOUND = "~"
HARD_LINKED = (
    "The file has other names (hard links): it opens read-only, since saving would "
    "separate it from them"
)


def _os_error(exc: OSError, what: str) -> WopiError:
    """Map an OS error to the WOPI-facing error it means."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound("File not found")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Forbidden(f"The storage refused to {what} the file")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("The storage is full")
    if exc.errno == errno.ENAMETOOLONG:
        return BadRequest("The file name is too long")
    return Unavailable(f"The local storage could not {what} the file", detail=str(exc))


def _close_opened(opening: asyncio.Future[tuple[int, os.stat_result]]) -> None:
    """The descriptor of an open nobody waits for any more."""
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result()[0])


class _LocalContent(FileContent):
    def __init__(self, stat: FileStat, fd: int) -> None:
        super().__init__(stat=stat)
        self._fd: int | None = fd
        if _PROC_FD.is_dir():
            self.local_path = _PROC_FD / str(fd)
        else:  # pragma: no cover - non-Linux fallback
            self.chunks = self._read_chunks()

    async def _read_chunks(self) -> AsyncIterator[bytes]:
        offset = 0
        while self._fd is not None:
            block = await asyncio.to_thread(os.pread, self._fd, CHUNK_SIZE, offset)
            if not block:
                return
            offset += len(block)
            yield block

    def changed(self) -> bool:
        """Size or modification time differ from the open's (``stat``): a write or a
        truncation moved them. Not the change time, which a rename, a deletion or an extended
        attribute moves too while the bytes stay as they were (a save replaces the file: its
        old bytes, still open here, are a whole state)."""
        if self._fd is None:
            return False
        try:
            now = os.fstat(self._fd)
        except OSError:
            return True
        return (now.st_size, now.st_mtime_ns) != (self.stat.size, self.stat.mtime_ns)

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LocalStorage:
    """Files under one folder. ``name`` is the storage's name in WOPI file ids.

    ``ids`` is the id map shared by every instance serving the folder (an SQLite index in
    ``state_dir`` when none is given); ``xattrs`` overrides the probe of whether the folder's
    filesystem keeps user extended attributes.
    """

    capabilities = Capabilities(local_staging=True)

    def __init__(
        self,
        name: str,
        root: Path,
        state_dir: Path,
        ids: IdMap | None = None,
        *,
        xattrs: bool | None = None,
    ) -> None:
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._root_str = str(self.root)
        self._paths: dict[str, Path] = {}  # Path objects cost more to build than to keep
        # file id -> (path, inode, change time) of the file its last stat found: see stat()
        self._seen: dict[str, tuple[Path, int, int]] = {}
        self._ids: IdMap = (
            ids if ids is not None else SqliteIdMap(state_dir / f"{name}-files.sqlite3")
        )
        self.xattrs = xattrid.supported(self.root) if xattrs is None else xattrs
        self._write_locks: dict[str, asyncio.Lock] = {}

    # -- paths -------------------------------------------------------------------------

    def _relative(self, ref: str) -> str:
        """Normalise a user-given path; refuse anything that could leave the root.

        Only ``/`` separates folders: ``\\``, ``:``, ``?`` and the like are ordinary
        characters of POSIX names (``back\\slash.txt``, ``12:30 notes.txt``) and files
        carrying them must open like any other.
        """
        if not ref or "\x00" in ref or ref.startswith("/"):
            raise BadRequest("Invalid file reference")
        parts = PurePosixPath(ref).parts
        if not parts:
            raise BadRequest("Invalid file reference")
        if any(part in ("..", ".") for part in parts):
            raise BadRequest("Invalid file reference: name the file without '.' or '..'")
        return "/".join(parts)

    def _canonical(self, relative: str) -> tuple[str, Path]:
        """The one spelling of ``relative`` and its path: through a symlink inside the root,
        its target, so an alias shares the target's id and lock; a symlink resolving outside
        the root is refused.

        Each component below the root is ``lstat``-ed; only when one is a symlink is the whole
        path resolved. That keeps the common case to one or two system calls instead of
        ``realpath``'s walk from ``/``.
        """
        full = f"{self._root_str}/{relative}"
        current = self._root_str
        for part in relative.split("/"):
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                break  # missing: the caller's stat answers 404
            if statmod.S_ISLNK(mode):
                real = os.path.realpath(full)
                if not real.startswith(self._root_str + "/"):
                    raise NotFound("File not found")
                full, relative = real, real[len(self._root_str) + 1 :]
                break
        path = self._paths.get(full)
        if path is None:
            if len(self._paths) >= 100_000:
                self._paths.clear()
            path = self._paths[full] = Path(full)
        return relative, path

    def _relative_of(self, path: Path) -> str:
        return str(path)[len(self._root_str) + 1 :]

    def _stat_path(self, file_id: str, path: Path) -> FileStat:
        return self._make_stat(file_id, path, self._os_stat(path))

    def _make_stat(self, file_id: str, path: Path, st: os.stat_result) -> FileStat:
        if not statmod.S_ISREG(st.st_mode):
            raise NotFound("File not found")
        parent, _, name = str(path).rpartition("/")
        folder = parent[len(self._root_str) + 1 :]
        return FileStat(
            file_id=file_id,
            name=name,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            version=f"{st.st_mtime_ns:x}.{st.st_ino:x}.{st.st_size:x}",
            identity=f"local:{file_id}",
            owner_id=str(st.st_uid),
            folder=folder,
            read_only_reason=HARD_LINKED if st.st_nlink > 1 else "",
        )

    def _lock_for(self, path: Path) -> asyncio.Lock:
        key = str(path)
        lock = self._write_locks.get(key)
        if lock is None:
            lock = self._write_locks[key] = asyncio.Lock()
        return lock

    # -- identity ----------------------------------------------------------------------

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
                raise _os_error(exc, "read") from None
            if found is None:
                candidate = new_id()
                try:
                    await asyncio.to_thread(xattrid.write_id, path, candidate, only_if_absent=True)
                except FileExistsError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                        raise _os_error(exc, "read") from None
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
        file's own id. A stale entry is a 404, never another file."""
        entry = await self._ids.lookup(file_id)
        if entry is None:
            raise NotFound("File not found")
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
        raise NotFound("File not found")

    # -- reading -----------------------------------------------------------------------

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

    @staticmethod
    def _os_stat(path: Path) -> os.stat_result:
        try:
            return os.stat(path)
        except OSError as exc:
            raise _os_error(exc, "read") from None

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

    async def open_read(self, file_id: str) -> FileContent:
        path, _ = await self._where(file_id)

        def _open() -> tuple[int, os.stat_result]:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise _os_error(exc, "read") from None
            return fd, os.fstat(fd)

        opening = asyncio.ensure_future(asyncio.to_thread(_open))
        try:
            fd, st = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # the thread opens the file anyway: whoever stops waiting, the descriptor is closed
            opening.add_done_callback(_close_opened)
            raise
        try:
            stat = self._make_stat(file_id, path, st)
        except WopiError:
            os.close(fd)
            raise
        return _LocalContent(stat, fd)

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

    # -- writing -----------------------------------------------------------------------

    async def _write_temp(self, folder: Path, chunks: AsyncIterable[bytes], mode: int) -> TempFile:
        """Stream ``chunks`` into a fresh locked temporary file in ``folder``, fsynced. It stays
        open, and so locked, until the caller has renamed it into place: an instance starting
        meanwhile sweeps only temporaries nobody holds."""
        try:
            temp = await TempFile.create(folder)
        except OSError as exc:
            raise _os_error(exc, "write") from None
        try:
            batch: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                batch.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_BATCH:
                    await temp.write(batch)
                    batch, pending = [], 0
            if batch:
                await temp.write(batch)
            await temp.sync(mode)
        except BaseException as exc:
            temp.discard()
            if isinstance(exc, OSError):
                raise _os_error(exc, "write") from None
            raise
        return temp

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

    async def staging_folder(self, file_id: str) -> Path:
        path, _ = await self._where(file_id)
        return path.parent

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
                raise _os_error(exc, "write") from None
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
                raise _os_error(exc, "write") from None
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
            raise _os_error(exc, "write") from None
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
                raise _os_error(exc, "rename") from None

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
                raise _os_error(exc, "delete") from None
            await self._ids.forget(file_id, relative)
        self._seen.pop(file_id, None)
        self._write_locks.pop(str(path), None)

    # -- metadata and lifecycle ---------------------------------------------------------

    async def get_meta(self, file_id: str, key: str) -> str | None:
        return await self._ids.get_meta(file_id, key)

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        await self._find(file_id)
        await self._ids.set_meta(file_id, key, value)

    async def check(self) -> None:
        writable = await asyncio.to_thread(_writable_dir, self.root)
        if not writable:
            raise Unavailable(
                f"storage {self.name!r}: its folder is not writable", detail=str(self.root)
            )
        await self._ids.ping()

    def with_credential(self, credential: str | None) -> LocalStorage:
        """The local folder is reached with this process's own rights, never a user's."""
        return self

    def lock_store(self, fallback: LockStore) -> LockStore:
        return fallback

    async def start(self) -> None:
        await self.sweep_temporaries()
        log.info("storage %s: local folder %s", self.name, self.root)
        if not self.xattrs:
            log.warning(
                "storage %s: the filesystem of %s keeps no user extended attributes (or the "
                "folder cannot be written), so file ids are kept by path in the id map only: "
                "a file renamed or moved outside "
                "wopibridge gets a new id (its open sessions end and its lock is lost), and a "
                "hard link to a file gets an id and a lock of its own",
                self.name,
                self.root,
            )

    async def lock_file_ids(self) -> list[str]:
        relatives = await asyncio.to_thread(_lock_files, self.root)
        ids = []
        for relative in relatives:
            with contextlib.suppress(WopiError):
                ids.append(await self._identify(*self._canonical(relative)))
        return ids

    async def sweep_temporaries(self) -> int:
        """Remove the temporary files a crash left behind (whose writer no longer holds their
        lock); returns how many."""
        removed, _ = await asyncio.to_thread(sweep, self.root)
        return removed

    async def close(self) -> None:
        await self._ids.close()


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


def _writable_dir(path: Path) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


def _lock_files(root: Path) -> list[str]:
    """Paths, relative to ``root``, of every ``.~lock.<name>#`` file under it."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(".~lock.") and name.endswith("#"):
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return found
