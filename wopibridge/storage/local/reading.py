"""Reading a local file: an open descriptor handed to the kernel, so GetFile uses sendfile
and serves exactly the state that was stat'ed, even if a save replaces the file meanwhile.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from wopibridge.errors import WopiError
from wopibridge.storage.base import CHUNK_SIZE, FileContent, FileStat
from wopibridge.storage.local.identity import LocalIdentity
from wopibridge.storage.local.tree import os_error

_PROC_FD = Path("/proc/self/fd")


def _close_opened(opening: asyncio.Future[tuple[int, os.stat_result]]) -> None:
    """The descriptor of an open nobody waits for any more."""
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result()[0])


class LocalContent(FileContent):
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


class LocalReading(LocalIdentity):
    """Opening a file for reading."""

    async def open_read(self, file_id: str) -> FileContent:
        path, _ = await self._where(file_id)

        def _open() -> tuple[int, os.stat_result]:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise os_error(exc, "read") from None
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
        return LocalContent(stat, fd)
