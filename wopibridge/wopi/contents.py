"""GetFile and PutFile: file bytes in and out, streamed both ways.

GetFile hands an open descriptor to the kernel (sendfile) where the storage allows it and streams
otherwise. PutFile never buffers the body: it flows from the socket into the storage's atomic
write, counted against the upload limit, so an oversized or aborted upload leaves the old
content untouched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from wopibridge.config import SETTINGS
from wopibridge.errors import BadRequest, LockMismatch, PayloadTooLarge, PreconditionFailed
from wopibridge.jsonio import json_response
from wopibridge.storage.base import CHUNK_SIZE, FileContent
from wopibridge.wopi import saving
from wopibridge.wopi.context import WopiRequest

log = logging.getLogger("wopibridge.wopi")


def upload_limit(request: web.Request) -> int:
    """The upload limit; a declared ``Content-Length`` above it is refused before reading."""
    limit = request.app[SETTINGS].server.max_upload_size
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
    return limit


async def body_chunks(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    """The request body in chunks, refusing (413) once more than ``limit`` bytes arrived."""
    received = 0
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
        yield chunk


def _int_header(wopi: WopiRequest, name: str) -> int | None:
    value = wopi.header(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if number < 0:
        raise BadRequest(f"{name} must not be negative")
    return number


class _OpenFileResponse(web.FileResponse):
    """A ``FileResponse`` over an already open file; the file is closed once it was sent.

    aiohttp prepares a returned ``FileResponse`` itself after the handler, so the descriptor
    must stay open until then and be closed by ``prepare``.

    A file rewritten in place while the kernel sends it (by a sync client or a shell, never by
    wopibridge, which replaces files whole) may come out short or torn, and aiohttp would
    still end the answer as if complete: the editor would wait for bytes that never come, or
    take a mix of two states for the document. So when the file changed during the send, the
    connection is aborted: the editor sees a failed download and asks again.
    """

    def __init__(self, content: FileContent, headers: dict[str, str]) -> None:
        assert content.local_path is not None
        super().__init__(content.local_path, chunk_size=CHUNK_SIZE, headers=headers)
        self._content = content

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            writer = await super().prepare(request)
            sent_body = self.status in (200, 206)
            if sent_body and self._content.changed() and request.transport is not None:
                log.warning(
                    "GetFile of %s: the file changed on disk while it was sent; connection "
                    "aborted so that no partial copy is taken for the document",
                    self._content.stat.file_id,
                )
                request.transport.abort()
            return writer
        finally:
            await self._content.close()


async def get_file(wopi: WopiRequest) -> web.StreamResponse:
    max_expected = _int_header(wopi, "X-WOPI-MaxExpectedSize")
    content = await wopi.storage.open_read(wopi.backend_id)
    try:
        stat = content.stat
        if max_expected is not None and stat.size > max_expected:
            raise PreconditionFailed("The file is larger than X-WOPI-MaxExpectedSize")
        headers = {
            "X-WOPI-ItemVersion": stat.version,
            "Content-Type": "application/octet-stream",
        }
        if content.local_path is not None:
            return _OpenFileResponse(content, headers)
        assert content.chunks is not None
        response = web.StreamResponse(headers=headers)
        response.content_length = stat.size
        await response.prepare(wopi.request)
        async for chunk in content.chunks:
            await response.write(chunk)
        await response.write_eof()
        await content.close()
        return response
    except BaseException:
        await content.close()
        raise


async def put_file(wopi: WopiRequest) -> web.Response:
    """PutFile: only the lock holder writes; an unlocked file only while it is empty."""
    wopi.require_edit()
    limit = upload_limit(wopi.request)
    given = wopi.header("X-WOPI-Lock") or ""
    stat = await wopi.stat()
    current = await wopi.locks.get(stat.identity)
    mismatch = None
    if current and given != current:
        mismatch = LockMismatch(current, "The file is locked by another session")
    elif not current and stat.size != 0:
        mismatch = LockMismatch("", "The file is not locked")
    if mismatch is not None:
        if given:  # the editor thought it held the lock: keep its work before refusing it
            await saving.keep_rejected(
                wopi.request,
                wopi.storage,
                wopi.backend_id,
                stat,
                wopi.access,
                body_chunks(wopi.request, limit),
                mismatch.message,
            )
        raise mismatch
    saving.check_document_changed(wopi.request.headers, stat)
    written = await saving.write(
        wopi.request,
        wopi.storage,
        wopi.backend_id,
        stat,
        wopi.access,
        body_chunks(wopi.request, limit),
        size=wopi.request.content_length,
    )
    await saving.after_write(wopi.request, wopi.locks, written, current or None)
    return json_response(
        {"LastModifiedTime": written.last_modified},
        headers={"X-WOPI-ItemVersion": written.version},
    )
