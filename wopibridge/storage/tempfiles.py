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
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

log = logging.getLogger("wopibridge.storage.tempfiles")

PREFIX = ".~wb-"
SUFFIX = ".tmp"

#: Chunks are gathered up to this size and written with one system call.
WRITE_BATCH = 1024 * 1024


def is_temp_name(name: str) -> bool:
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


class TempFile:
    """One exclusive, locked temporary file. Not thread-safe; one writer task owns it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.size = 0
        self._fd: int | None = fd

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
        assert self._fd is not None, "temporary file already closed"
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write_sync(self, chunks: list[bytes]) -> None:
        """Write ``chunks`` where the last write ended; the size advances only once they all
        landed."""
        fd, offset = self.fd, self.size
        total = sum(len(c) for c in chunks)
        done = 0
        views: list[bytes | memoryview] = list(chunks)
        while done < total:
            written = os.pwritev(fd, views, offset + done)
            done += written
            views = _skip(views, written)
        self.size = offset + total

    async def write(self, chunks: list[bytes]) -> None:
        await asyncio.to_thread(self.write_sync, chunks)

    async def sync(self, mode: int | None = None) -> None:
        """Make the content durable (and give it ``mode``) before it is renamed into place."""

        def _sync() -> None:
            if mode is not None:
                os.fchmod(self.fd, mode)
            os.fsync(self.fd)

        await asyncio.to_thread(_sync)

    def close(self) -> None:
        """Close (and so unlock) the file; its name stays wherever it is now."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Remove the file (if it still has its temporary name) and close it."""
        if self._fd is not None:
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
    """The bytes of a file on this machine, in chunks read off the event loop.

    Each read opens the file on its own, so an upload that stops consuming this (a storage
    that answers early) leaves no open handle behind, and nothing has to close it."""
    offset = 0
    while chunk := await asyncio.to_thread(_read_at, path, offset, chunk_size):
        offset += len(chunk)
        yield chunk
