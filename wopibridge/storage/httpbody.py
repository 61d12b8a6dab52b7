"""A file state whose bytes arrive as an HTTP response body (WebDAV GET, CS3 data transfer)."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
