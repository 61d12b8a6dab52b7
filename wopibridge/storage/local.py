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
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
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
from wopibridge.storage.base import CHUNK_SIZE, Capabilities, FileContent, FileStat
from wopibridge.storage.index import FileIndex
from wopibridge.storage.names import check_plain_name
from wopibridge.storage.tempfiles import WRITE_BATCH, TempFile, sweep

log = logging.getLogger("wopibridge.storage.local")

_PROC_FD = Path("/proc/self/fd")


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
    return Unavailable(f"The local storage could not {what} the file ({exc.strerror})")


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

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LocalStorage:
    """Files under one folder. ``name`` is the storage's name in WOPI file ids."""

    capabilities = Capabilities(local_staging=True)

    def __init__(self, name: str, root: Path, state_dir: Path) -> None:
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._root_str = str(self.root)
        self._paths: dict[str, Path] = {}  # Path objects cost more to build than to keep
        # file id -> (path, inode, change time) of the file its last stat found: see stat()
        self._seen: dict[str, tuple[Path, int, int]] = {}
        self._index = FileIndex(state_dir / f"{name}-files.sqlite3")
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
        if any(part in ("..", ".") for part in parts) or not parts:
            raise BadRequest("Invalid file reference")
        return "/".join(parts)

    def _absolute(self, relative: str) -> Path:
        """The path of ``relative``, refusing symlinks that resolve outside the root.

        Each component below the root is ``lstat``-ed; only when one is a symlink is the whole
        path resolved and checked. That keeps the common case to one or two system calls
        instead of ``realpath``'s walk from ``/``.
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
                if real != self._root_str and not real.startswith(self._root_str + "/"):
                    raise NotFound("File not found")
                break
        path = self._paths.get(full)
        if path is None:
            if len(self._paths) >= 100_000:
                self._paths.clear()
            path = self._paths[full] = Path(full)
        return path

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
        )

    def _path_of(self, file_id: str) -> Path:
        relative = self._index.path_of(file_id)
        if relative is None:
            raise NotFound("File not found")
        return self._absolute(relative)

    def _lock_for(self, path: Path) -> asyncio.Lock:
        key = str(path)
        lock = self._write_locks.get(key)
        if lock is None:
            lock = self._write_locks[key] = asyncio.Lock()
        return lock

    # -- reading -----------------------------------------------------------------------

    async def resolve(self, ref: str) -> FileStat:
        if self._index.path_of(ref) is not None:
            return await self.stat(ref)
        relative = self._relative(ref)
        path = self._absolute(relative)
        st = await asyncio.to_thread(self._os_stat, path)
        return self._make_stat(self._index.id_for(relative), path, st)

    @staticmethod
    def _os_stat(path: Path) -> os.stat_result:
        try:
            return os.stat(path)
        except OSError as exc:
            raise _os_error(exc, "read") from None

    async def stat(self, file_id: str) -> FileStat:
        """Stat by id, inline: a local stat takes microseconds, a thread hop ten times that,
        and stat sits on the path of CheckFileInfo and every lock operation.

        The index is the authority on an id's path, and another instance sharing it may have
        renamed the file and put a new one at the old path. Asking it costs more than the
        stat, so the index and the symlink walk are skipped only when the file at the path
        seen last time is provably the same file: same inode, same change time. A save, a
        rename, a chmod or a swapped-in file changes one of them, and the index is asked.
        """
        seen = self._seen.get(file_id)
        if seen is not None:
            path, inode, ctime_ns = seen
            try:
                st = os.stat(path)
            except OSError:
                pass
            else:
                if st.st_ino == inode and st.st_ctime_ns == ctime_ns:
                    return self._make_stat(file_id, path, st)
            del self._seen[file_id]
        path = self._path_of(file_id)
        st = self._os_stat(path)
        stat = self._make_stat(file_id, path, st)
        if len(self._seen) >= 100_000:
            self._seen.clear()
        self._seen[file_id] = (path, st.st_ino, st.st_ctime_ns)
        return stat

    async def open_read(self, file_id: str) -> FileContent:
        path = self._path_of(file_id)

        def _open() -> tuple[int, os.stat_result]:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise _os_error(exc, "read") from None
            return fd, os.fstat(fd)

        fd, st = await asyncio.to_thread(_open)
        try:
            stat = self._make_stat(file_id, path, st)
        except WopiError:
            os.close(fd)
            raise
        return _LocalContent(stat, fd)

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        folder = self._path_of(file_id).parent
        target = folder / check_plain_name(name)
        try:
            st = await asyncio.to_thread(os.stat, target)
        except OSError:
            return None
        if not statmod.S_ISREG(st.st_mode):
            return None
        relative = target.relative_to(self.root).as_posix()
        return self._make_stat(self._index.id_for(relative), target, st)

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
        path = self._path_of(file_id)
        before = await asyncio.to_thread(self._stat_path, file_id, path)
        if expected_version is not None and before.version != expected_version:
            raise VersionConflict("The file changed in storage")
        current_mode = (await asyncio.to_thread(os.stat, path)).st_mode & 0o7777
        temp = await self._write_temp(path.parent, chunks, current_mode)
        try:
            return await self.commit(file_id, temp.path, expected_version=expected_version)
        finally:
            temp.discard()  # removes the temporary name only if the rename did not happen

    def staging_folder(self, file_id: str) -> Path:
        return self._path_of(file_id).parent

    async def commit(
        self, file_id: str, staged: Path, *, expected_version: str | None = None
    ) -> FileStat:
        """Rename ``staged`` (a durable file in :meth:`staging_folder`) over the file, after
        checking the version once more under the per-file lock; it takes the file's mode."""
        path = self._path_of(file_id)
        async with self._lock_for(path):
            latest = await asyncio.to_thread(self._stat_path, file_id, path)
            if expected_version is not None and latest.version != expected_version:
                raise VersionConflict("The file changed in storage")
            mtime = self._next_mtime(latest.mtime_ns)
            try:
                await asyncio.to_thread(_commit, staged, path, mtime, False, True)
            except OSError as exc:
                raise _os_error(exc, "write") from None
        return await asyncio.to_thread(self._stat_path, file_id, path)

    async def adopt(self, sibling_of: str, name: str, staged: Path) -> FileStat:
        """Link ``staged`` beside ``sibling_of`` as ``name`` (refused if the name is taken)."""
        folder = self._path_of(sibling_of).parent
        target = folder / check_plain_name(name)
        async with self._lock_for(target):
            try:
                await asyncio.to_thread(os.chmod, staged, 0o644)
                previous = await asyncio.to_thread(_mtime_or_zero, target)
                await asyncio.to_thread(_commit, staged, target, self._next_mtime(previous), True)
            except FileExistsError:
                raise FileExists(f"A file named {name!r} already exists") from None
            except OSError as exc:
                raise _os_error(exc, "write") from None
        relative = target.relative_to(self.root).as_posix()
        return self._stat_path(self._index.id_for(relative), target)

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        return await self._create_at(self._path_of(sibling_of).parent, name, chunks, overwrite)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        path = self.root if not folder else self._absolute(self._relative(folder))
        if not await asyncio.to_thread(path.is_dir):
            raise NotFound("Folder not found")
        return await self._create_at(path, name, chunks, False)

    async def _create_at(
        self, folder: Path, name: str, chunks: AsyncIterable[bytes], overwrite: bool
    ) -> FileStat:
        target = folder / check_plain_name(name)
        temp = await self._write_temp(folder, chunks, 0o644)
        try:
            async with self._lock_for(target):
                previous = await asyncio.to_thread(_mtime_or_zero, target)
                await asyncio.to_thread(
                    _commit, temp.path, target, self._next_mtime(previous), not overwrite
                )
        except FileExistsError:
            raise FileExists(f"A file named {name!r} already exists") from None
        finally:
            temp.discard()  # removes the temporary name only if it is still there
        relative = target.relative_to(self.root).as_posix()
        return self._stat_path(self._index.id_for(relative), target)

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        path = self._path_of(file_id)
        target = path.parent / check_plain_name(new_name)
        if target == path:
            return await self.stat(file_id)
        async with self._lock_for(path):
            try:
                await asyncio.to_thread(_rename_noreplace, path, target)
            except FileExistsError:
                raise FileExists(f"A file named {new_name!r} already exists") from None
            except OSError as exc:
                raise _os_error(exc, "rename") from None
            self._index.move(file_id, target.relative_to(self.root).as_posix())
        return await self.stat(file_id)

    async def delete(self, file_id: str) -> None:
        path = self._path_of(file_id)
        async with self._lock_for(path):
            try:
                await asyncio.to_thread(os.unlink, path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _os_error(exc, "delete") from None
            self._index.forget(file_id)
        self._write_locks.pop(str(path), None)

    # -- metadata and lifecycle ---------------------------------------------------------

    async def get_meta(self, file_id: str, key: str) -> str | None:
        return self._index.get_meta(file_id, key)

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        self._path_of(file_id)
        self._index.set_meta(file_id, key, value)

    async def check(self) -> None:
        writable = await asyncio.to_thread(_writable_dir, self.root)
        if not writable:
            raise Unavailable(f"storage {self.name!r}: folder {self.root} is not writable")
        self._index.ping()

    def with_credential(self, credential: str | None) -> LocalStorage:
        """The local folder is reached with this process's own rights, never a user's."""
        return self

    def lock_store(self, fallback: LockStore) -> LockStore:
        return fallback

    async def start(self) -> None:
        await self.sweep_temporaries()
        log.info("storage %s: local folder %s", self.name, self.root)

    async def lock_file_ids(self) -> list[str]:
        relatives = await asyncio.to_thread(_lock_files, self.root)
        return [self._index.id_for(relative) for relative in relatives]

    async def sweep_temporaries(self) -> int:
        """Remove the temporary files a crash left behind (whose writer no longer holds their
        lock); returns how many."""
        removed, _ = await asyncio.to_thread(sweep, self.root)
        return removed

    async def close(self) -> None:
        self._index.close()


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
