"""One record per file under ``<root>/.wopibridge/locks/``: the file's mutex across processes
and hosts, and where its lock at the owner is written.

Every instance serving a folder, on this host or another one mounting it, may change the same
file at once: a save's rename over it, a RenameFile's link and unlink, a DeleteFile. An
in-process lock cannot order them, and sites that share the folder need not share a Redis. The
folder itself can: a POSIX record lock on a small file beside the data is seen by every process
of this host and, through the lock manager of the mount (NFSv4, CephFS, GPFS, Lustre), of every
host. :meth:`FileRecords.exclusive` holds it for one change.

Locks are open-file-description locks (``F_OFD_SETLK``) where the kernel has them: they belong
to the descriptor, so closing another descriptor of the record in this process cannot drop
them. Where it has not, classic ``F_SETLK`` locks do the same job because the in-process lock
taken first lets only one task of this process open a record at a time. Waiting never holds a
thread: a failed try sleeps on the event loop and tries again, so instances waiting on each
other cannot starve each other's thread pools into a deadlock.

A record lives as long as its file. A record removed by a delete while another task waited for
it is noticed (its inode is no longer the one at its name) and the wait starts again on the new
record.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import quote

from wopibridge.errors import Unavailable, WopiError

#: The folder of wopibridge's own data on a storage root: never served as a file.
HIDDEN = ".wopibridge"
#: How long a change waits for another process to finish with a file before giving up (503).
WAIT_SECONDS = 30.0
_FIRST_PAUSE = 0.0005
_LONGEST_PAUSE = 0.02
#: ``struct flock`` with ``l_pid`` 0, as ``F_OFD_*`` requires (start 0, length 0: the whole file)
_WRITE_LOCK = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
_MAX_RECORD = 8192
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OwnerEntry:
    """The lock at the owner written in a record: who holds it and until when (wall clock)."""

    token: str
    lock_id: str
    site: str
    name: str
    expires: float

    def live(self, now: float | None = None) -> bool:
        return self.expires > (time.time() if now is None else now)


class Record:
    """A record held exclusively: read and write the owner's lock in it (blocking calls, for a
    thread). Written in place under the lock, so the descriptor, and the lock, stay the same."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def read(self) -> OwnerEntry | None:
        raw = os.pread(self.fd, _MAX_RECORD, 0)
        if not raw:
            return None
        try:
            fields = json.loads(raw)
            return OwnerEntry(
                token=str(fields["token"]),
                lock_id=str(fields["lock_id"]),
                site=str(fields["site"]),
                name=str(fields.get("name", "")),
                expires=float(fields["expires"]),
            )
        except (ValueError, KeyError, TypeError):
            return None  # torn or foreign: nobody holds it

    def write(self, entry: OwnerEntry | None) -> None:
        data = b"" if entry is None else json.dumps(asdict(entry)).encode()
        os.ftruncate(self.fd, 0)
        if data:
            os.pwrite(self.fd, data, 0)


class FileRecords:
    """The records of one storage root, keyed by a file's identity (its lock key)."""

    def __init__(self, root: Path, errors: Callable[[OSError], WopiError]) -> None:
        self.folder = root / HIDDEN / "locks"
        self._errors = errors  # what an OS error taking a record means to WOPI
        self._ofd = True
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    def path_of(self, key: str) -> Path:
        return self.folder / quote(key, safe="")

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[Record]:
        """Hold ``key``'s record for one change; :class:`Unavailable` after
        :data:`WAIT_SECONDS` of waiting for another process."""
        async with self._in_process(key):
            record = await self._acquire(self.path_of(key))
            try:
                yield record
            finally:
                await asyncio.to_thread(os.close, record.fd)

    @asynccontextmanager
    async def _in_process(self, key: str) -> AsyncIterator[None]:
        """One task of this process at a time per record (and no lock per record kept for
        records nobody waits for)."""
        lock, users = self._local.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._local[key]
            if users <= 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    async def apply(self, key: str, work: Callable[[Record], T]) -> T:
        """Run ``work`` (blocking) on ``key``'s record held exclusively: taking the record,
        the work and letting it go in one thread hop when nobody else holds it."""
        async with self._in_process(key):
            path = self.path_of(key)
            pause = _FIRST_PAUSE
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    done, result = await asyncio.to_thread(self._try_apply, path, work)
                except OSError as exc:
                    raise self._errors(exc) from None
                if done:
                    return cast(T, result)
                if time.monotonic() > deadline:
                    raise Unavailable("The file is busy in another instance; try again")
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)

    def _try_apply(self, path: Path, work: Callable[[Record], T]) -> tuple[bool, T | None]:
        fd = self._try(path)
        if fd is None:
            return False, None
        try:
            return True, work(Record(fd, path))
        finally:
            os.close(fd)

    async def _acquire(self, path: Path) -> Record:
        pause = _FIRST_PAUSE
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                fd = await asyncio.to_thread(self._try, path)
            except OSError as exc:
                raise self._errors(exc) from None
            if fd is not None:
                return Record(fd, path)
            if time.monotonic() > deadline:
                raise Unavailable("The file is busy in another instance; try again")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _try(self, path: Path) -> int | None:
        """One non-blocking attempt: the locked descriptor, or ``None`` when another process
        holds the record (or removed it meanwhile)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not self._lock(fd):
                os.close(fd)
                return None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # removed by a delete while we waited: lock the new one
                os.close(fd)
                return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _lock(self, fd: int) -> bool:
        command = fcntl.F_OFD_SETLK if self._ofd else fcntl.F_SETLK
        try:
            fcntl.fcntl(fd, command, _WRITE_LOCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            if exc.errno == errno.EINVAL and self._ofd:
                self._ofd = False  # a kernel or mount without OFD locks
                return self._lock(fd)
            raise
        return True

    @staticmethod
    def remove(record: Record) -> None:
        """Remove a held record (its file was deleted); a waiter notices and starts again."""
        with suppress(FileNotFoundError):
            os.unlink(record.path)
