"""File bodies over XRootD, streamed both ways with a few requests in flight.

One request per block would wait a round trip per mebibyte; a window of :data:`WINDOW`
requests in flight keeps the connection busy (``xrdcp`` does the same) while memory stays
bounded by ``WINDOW`` blocks, whatever the file's size.

Reads serve one open of the file: a save replaces the file with an ``mv`` (a new inode), so
the open one keeps the state that was stat'ed to the end. Writes go into a temporary file that
the caller moves into place once it is complete; a source that fails, or a server that does
not take a block, removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator

from wopibridge.errors import Unavailable, WopiError
from wopibridge.storage.base import FileContent, FileStat
from wopibridge.storage.xrootd.client import Answer, XrdClient, XrdFile
from wopibridge.storage.xrootd.guard import RESERVED_PREFIX

BLOCK = 1024 * 1024
WINDOW = 4


def _retrieve(task: asyncio.Task[Answer]) -> None:
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()


class XrdFileContent(FileContent):
    """The bytes of one open file, read ahead in blocks; a read that fails or comes short is
    ``Unavailable`` naming the storage, so GetFile never sends a truncated file as whole."""

    def __init__(self, stat: FileStat, handle: XrdFile) -> None:
        super().__init__(stat=stat)
        self._handle: XrdFile | None = handle
        self.chunks = self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        handle = self._handle
        if handle is None:
            return
        size = self.stat.size
        pending: deque[asyncio.Task[Answer]] = deque()
        offset = 0
        try:
            while offset < size or pending:
                while offset < size and len(pending) < WINDOW:
                    length = min(BLOCK, size - offset)
                    pending.append(asyncio.ensure_future(handle.read(offset, length)))
                    offset += length
                answer = await pending.popleft()
                if not answer.ok or not answer.response:
                    raise Unavailable(f"The storage {handle.client.name} stopped sending the file")
                yield bytes(answer.response)
        finally:
            for task in pending:
                task.add_done_callback(_retrieve)

    async def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(WopiError):
                await handle.close()


def temp_name() -> str:
    """A name for an upload in progress, reserved for wopibridge (``names.check_name``)."""
    return f"{RESERVED_PREFIX}{secrets.token_hex(8)}.tmp"


async def upload(client: XrdClient, path: str, chunks: AsyncIterable[bytes]) -> int:
    """Write ``chunks`` into a new file at ``path`` (which must not exist); its size.

    On any failure the file is removed and the error raised."""
    flags = client.flags
    mode = flags.AccessMode.UR | flags.AccessMode.UW | flags.AccessMode.GR | flags.AccessMode.OR
    handle = client.new_file()
    opened = await handle.open(path, flags.OpenFlags.NEW, mode)
    if not opened.ok:
        raise client.error(opened, what="write")
    pending: deque[asyncio.Task[Answer]] = deque()
    offset = 0
    buffer = bytearray()

    async def settle(limit: int) -> None:
        while len(pending) > limit:
            answer = await pending.popleft()
            if not answer.ok:
                raise client.error(answer, what="write")

    def send(block: bytes) -> None:
        nonlocal offset
        pending.append(asyncio.ensure_future(handle.write(block, offset)))
        offset += len(block)

    try:
        async for chunk in chunks:
            buffer += chunk
            while len(buffer) >= BLOCK:
                send(bytes(buffer[:BLOCK]))
                del buffer[:BLOCK]
                await settle(WINDOW - 1)
        if buffer:
            send(bytes(buffer))
        await settle(0)
        closed = await handle.close()
        if not closed.ok:
            raise client.error(closed, what="write")
    except BaseException:
        for task in pending:
            task.add_done_callback(_retrieve)
        with contextlib.suppress(WopiError):
            await _settle_quietly(pending)
            await handle.close()
        with contextlib.suppress(WopiError):
            await client.fs("rm", path)
        raise
    return offset


async def _settle_quietly(pending: deque[asyncio.Task[Answer]]) -> None:
    """Wait for writes in flight (their blocks must outlive them) before closing."""
    with contextlib.suppress(BaseException):
        await asyncio.gather(*pending, return_exceptions=True)
