"""HTTP bodies of the remote storages: a file state whose bytes arrive as a response body
(WebDAV GET, CS3 data transfer), and the request body of an upload."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator

import aiohttp

from wopibridge.errors import Unavailable
from wopibridge.storage.base import CHUNK_SIZE, FileContent, FileStat


class HttpFileContent(FileContent):
    """Streams a response body in chunks; a transfer that breaks off is ``Unavailable``
    naming the storage, so GetFile never sends a silently truncated file as complete."""

    def __init__(self, stat: FileStat, response: aiohttp.ClientResponse, storage: str) -> None:
        super().__init__(stat=stat)
        self._response: aiohttp.ClientResponse | None = response
        self._storage = storage
        self.chunks = self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        response = self._response
        if response is None:
            return
        try:
            async for block in response.content.iter_chunked(CHUNK_SIZE):
                yield block
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unavailable(f"The storage {self._storage} stopped sending the file") from exc

    async def close(self) -> None:
        if self._response is not None:
            self._response.release()
            self._response = None


def _retrieve(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()


async def upload_body(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` as an upload's request body (empty chunks skipped).

    aiohttp sends a request body from a task of its own. When the server cut the connection,
    the request already failed with that error, yet the task may still fail on its last write
    (``write_eof`` on a closing transport) with nobody left to read that failure, which asyncio
    then logs as "Task exception was never retrieved", with a traceback. This generator runs in
    that task and marks its outcome as seen: the failure was reported once, by the request.
    """
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(_retrieve)
    async for block in chunks:
        if block:
            yield block
