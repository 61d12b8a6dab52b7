"""Temporary files that say whether their writer is alive: created exclusively, written once,
and held under an exclusive ``flock`` for as long as their writer has them open.

A crash (SIGKILL, power loss) leaves such files behind: a half-written save in a user's folder,
a half-received body in the recovery folder. The kernel drops a dead process's locks, so at
start :func:`sweep` removes exactly the temporaries nobody holds, and never one that another
instance sharing the folder is still writing, however old or young it is.

Writes go through :meth:`TempFile.write`: the chunks given, at the offset where the last write
ended (``pwritev``), with no buffer kept between calls. A flush of a shared buffer that is
cancelled before the buffer is cleared writes its bytes again with the next flush; here there is
nothing left over to write twice.

:meth:`TempFile.write` returns once its chunks are queued, not written: a task of the file
writes them behind, in a thread, while the caller reads the next chunks from its socket, so
receiving and writing overlap. At most :data:`WRITE_AHEAD` batches wait (a few MiB, never the
file): a caller that reads faster than the disk writes waits in :meth:`~TempFile.write`.
:meth:`~TempFile.sync` (called before any rename into place) waits for every write and raises
the first one's failure; a later :meth:`~TempFile.write` raises it too.

Every use of the descriptor off the event loop goes through :meth:`TempFile.in_thread`, which
keeps the descriptor open until the thread is done with it. A caller cancelled while its write
runs in a thread gets control back at once, and typically discards the file; were the number
closed then, the next ``open`` anywhere in the process could get it, and the still-running
``pwritev``, ``fchmod`` or ``fsync`` would act on that other file (a document being saved, a
file being sent). So :meth:`TempFile.close` only marks the file closed while a thread uses it;
the thread closes it when it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import logging
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("wopibridge.storage.tempfiles")

PREFIX = ".~wb-"
SUFFIX = ".tmp"

#: Chunks are gathered up to this size and written with one system call.
WRITE_BATCH = 1024 * 1024
#: Batches that may wait for the disk behind the one being written.
WRITE_AHEAD = 2

T = TypeVar("T")


def is_temp_name(name: str) -> bool:
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


class TempFile:
    """One exclusive, locked temporary file. One writer task owns it; its descriptor is used
    off the event loop only through :meth:`in_thread`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.size = 0
        self._fd: int | None = fd
        self._users = 0  # threads using the descriptor right now
        self._closing = False  # closed while threads used it: the last one closes it
        self._guard = threading.Lock()
        self._behind: asyncio.Queue[list[bytes] | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        #: batches queued behind a write that failed, none of them written (see
        #: :meth:`take_unwritten`)
        self._unwritten: list[list[bytes]] = []

    @classmethod
    def create_sync(cls, folder: Path) -> TempFile:
        """A fresh temporary in ``folder``, locked. A sweeper that raced the creation (locked
        and removed the name between ``open`` and ``flock``) is detected and another name
        is tried."""
        for _ in range(5):
            path = folder / f"{PREFIX}{secrets.token_hex(8)}{SUFFIX}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return cls(path, fd)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.ENOENT):
                    os.close(fd)
                    raise
            os.close(fd)
        raise OSError(errno.EEXIST, "could not create a temporary file", str(folder))

    @classmethod
    async def create(cls, folder: Path) -> TempFile:
        return await asyncio.to_thread(cls.create_sync, folder)

    @property
    def fd(self) -> int:
        assert self._fd is not None and not self._closing, "temporary file already closed"
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None or self._closing

    def _acquire(self) -> int:
        with self._guard:
            if self._fd is None or self._closing:
                raise OSError(errno.EBADF, "the temporary file was closed", str(self.path))
            self._users += 1
            return self._fd

    def _release(self) -> None:
        with self._guard:
            self._users -= 1
            if not self._users and self._closing:
                self._close_locked()

    def _close_locked(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        self._closing = False

    async def in_thread(self, work: Callable[[int], T]) -> T:
        """``work(fd)`` off the event loop; the descriptor stays open until it returns, even
        when the caller is cancelled and closes the file meanwhile. A job the executor had not
        started when the file was closed finds it closed (``EBADF``) and does nothing."""

        def run() -> T:
            fd = self._acquire()
            try:
                return work(fd)
            finally:
                self._release()

        return await asyncio.to_thread(run)

    def write_sync(self, chunks: list[bytes]) -> None:
        """Write ``chunks`` where the last write ended; the size advances only once they all
        landed."""
        self._write_at(self.fd, chunks)

    def _write_batch(self, chunks: list[bytes], fd: int) -> None:
        self._write_at(fd, chunks)

    def _write_at(self, fd: int, chunks: list[bytes]) -> None:
        offset = self.size
        total = sum(len(c) for c in chunks)
        done = 0
        views: list[bytes | memoryview] = list(chunks)
        while done < total:
            written = os.pwritev(fd, views, offset + done)
            done += written
            views = _skip(views, written)
        self.size = offset + total

    async def write(self, chunks: list[bytes]) -> None:
        """Queue ``chunks`` (a list nobody changes afterwards) to be written where the queued
        ones end; waits while :data:`WRITE_AHEAD` batches already wait. Raises the failure of
        an earlier write."""
        if self._failed is not None:
            raise self._failed
        if self.closed:
            raise OSError(errno.EBADF, "the temporary file was closed", str(self.path))
        if self._behind is None:
            self._behind = asyncio.Queue(maxsize=WRITE_AHEAD)
            self._writer = asyncio.create_task(self._write_behind(self._behind))
        await self._behind.put(chunks)

    async def _write_behind(self, behind: asyncio.Queue[list[bytes] | None]) -> None:
        """The writes, in order, one at a time. After the first failure nothing more is
        written: the failed batch and every one queued after it are kept, unwritten, for a
        caller that moves the content elsewhere (:meth:`take_unwritten`)."""
        while (chunks := await behind.get()) is not None:
            if self._failed is not None:
                self._unwritten.append(chunks)
                continue
            try:
                await self.in_thread(functools.partial(self._write_batch, chunks))
            except Exception as exc:
                self._failed = exc
                self._unwritten.append(chunks)

    async def flush(self) -> None:
        """Wait until every queued write landed; raise the first failure."""
        behind, writer = self._behind, self._writer
        if behind is not None and writer is not None:
            if not writer.done():
                await behind.put(None)
            await asyncio.shield(writer)
            self._behind = self._writer = None
        if self._failed is not None:
            raise self._failed

    async def take_unwritten(self) -> list[list[bytes]]:
        """The batches that were queued but never written because a write failed, in order
        (the content is then the first :attr:`size` bytes followed by them): what a caller
        moving the copy to another file must write there too, so that no byte is lost."""
        with contextlib.suppress(Exception):
            await self.flush()
        unwritten, self._unwritten = self._unwritten, []
        return unwritten

    def _stop_writing(self) -> None:
        """Drop the writes not started (the file is being closed); one running in a thread
        keeps the descriptor until it returns (:meth:`in_thread`)."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._behind = self._writer = None

    async def sync(self, mode: int | None = None) -> None:
        """Make the content durable (and give it ``mode``) before it is renamed into place,
        once every queued write landed."""
        await self.flush()

        def _sync(fd: int) -> None:
            if mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)

        await self.in_thread(_sync)

    def close(self) -> None:
        """Close (and so unlock) the file; its name stays wherever it is now. While a thread
        still uses the descriptor, that thread closes it when it is done."""
        self._stop_writing()
        with self._guard:
            if self._fd is None or self._closing:
                return
            if self._users:
                self._closing = True
            else:
                self._close_locked()

    def discard(self) -> None:
        """Remove the file (if it still has its temporary name) and close it."""
        with self._guard:
            if self._fd is not None and not self._closing:
                with contextlib.suppress(OSError):
                    if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                        os.unlink(self.path)
        self.close()


def _skip(views: Iterable[bytes | memoryview], count: int) -> list[bytes | memoryview]:
    rest: list[bytes | memoryview] = []
    for view in views:
        if count >= len(view):
            count -= len(view)
            continue
        rest.append(memoryview(view)[count:] if count else view)
        count = 0
    return rest


def _unheld(path: Path) -> bool:
    """Remove ``path`` if no process holds its lock; True when removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return False
            os.unlink(path)
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


def sweep(root: Path, *, recursive: bool = True) -> tuple[int, int]:
    """Remove the temporaries under ``root`` whose writer is gone; returns (files, bytes)."""
    removed = freed = 0
    walker = os.walk(root) if recursive else [(str(root), [], _names(root))]
    for folder, _dirs, files in walker:
        for name in files:
            if not is_temp_name(name):
                continue
            path = Path(folder) / name
            try:
                size = path.lstat().st_size
            except OSError:
                continue
            if _unheld(path):
                removed += 1
                freed += size
    if removed:
        log.info(
            "removed %d temporary files (%d bytes) a crash left under %s", removed, freed, root
        )
    return removed, freed


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


async def read_chunks(path: Path, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """The bytes of a file on this machine, in chunks read off the event loop, one chunk
    ahead: the next one is read while the caller sends this one (a staged save going to
    WebDAV or CS3), so reading and sending overlap with one chunk more in memory.

    Each read opens the file on its own, so an upload that stops consuming this (a storage
    that answers early) leaves no open handle behind, and nothing has to close it."""
    offset = 0
    ahead = asyncio.ensure_future(asyncio.to_thread(_read_at, path, offset, chunk_size))
    try:
        while chunk := await ahead:
            offset += len(chunk)
            ahead = asyncio.ensure_future(asyncio.to_thread(_read_at, path, offset, chunk_size))
            yield chunk
    finally:
        if not ahead.done():
            ahead.cancel()  # the read in its thread ends on its own; its result is dropped
        ahead.add_done_callback(_drop_result)


def _drop_result(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()  # seen, so that asyncio does not log it as never retrieved
