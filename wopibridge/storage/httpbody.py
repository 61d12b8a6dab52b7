"""HTTP bodies of the remote storages: a file state whose bytes arrive as a response body
(WebDAV GET, CS3 data transfer), and the request body of an upload."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import TypeVar

import aiohttp

from wopibridge.errors import Unavailable
from wopibridge.storage.base import CHUNK_SIZE, FileContent, FileStat

_T = TypeVar("_T")


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


class Upload:
    """The request body of one upload, and a watch on whether the server still takes it.

    aiohttp's read timeout starts once the body is sent; before that, a server that neither
    reads the body nor answers (one that never sends the ``100 Continue`` a PUT waits for, or
    stops reading half way) would hold the save forever. :meth:`guard` gives up on the request
    once the server has kept the next chunk waiting for the storage's timeout. Time spent waiting
    for the editor's bytes does not count: a slow editor is not a hung storage.
    """

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self._waiting_since: float | None = time.monotonic()  # for the sender to start

    async def body(self) -> AsyncIterator[bytes]:
        """``chunks`` as the request body (empty chunks skipped).

        aiohttp sends a body from a task of its own. When the server cut the connection, the
        request already failed with that error, yet the task may still fail on its last write
        (``write_eof`` on a closing transport) with nobody left to read that failure, which
        asyncio then logs as "Task exception was never retrieved", with a traceback. This
        generator runs in that task and marks its outcome as seen: the failure was reported
        once, by the request.
        """
        task = asyncio.current_task()
        if task is not None:
            task.add_done_callback(_retrieve)
        self._waiting_since = None
        async for block in self._chunks:
            if block:
                self._waiting_since = time.monotonic()
                yield block
                self._waiting_since = None
        self._waiting_since = None

    async def guard(self, request: Awaitable[_T], patience: float) -> _T:
        """Await ``request``; raise ``TimeoutError`` (and cancel it) once the server kept a
        chunk waiting for ``patience`` seconds."""
        task = asyncio.ensure_future(request)
        try:
            while not task.done():
                since = self._waiting_since
                left = patience if since is None else patience - (time.monotonic() - since)
                if left <= 0:
                    raise TimeoutError("the storage stopped taking the upload")
                await asyncio.wait({task}, timeout=left)
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
