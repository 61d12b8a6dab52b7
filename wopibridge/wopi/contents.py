"""GetFile: file bytes out, streamed (PutFile is :mod:`wopibridge.wopi.saves`).

GetFile hands an open descriptor to the kernel (sendfile) where the storage allows it and streams
otherwise. An editor that says how much it will take (``X-WOPI-MaxExpectedSize``; OnlyOffice
always sends its ``maxDownloadBytes``, ``wopiUtils.getWopiFileUrl``) gets a 412 naming both sizes
when the file is larger, and the log says so: the editor shows an open error instead of loading
a document cut short.
"""

from __future__ import annotations

import logging
from typing import IO, Any

from aiohttp import web, web_fileresponse
from aiohttp.abc import AbstractStreamWriter

from wopibridge.errors import BadRequest, PreconditionFailed
from wopibridge.storage.base import CHUNK_SIZE, FileContent
from wopibridge.wopi.context import WopiRequest
from wopibridge.wopi.sendfile import send_file

log = logging.getLogger("wopibridge.wopi")


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

    async def _sendfile_fallback(
        self, writer: AbstractStreamWriter, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        """aiohttp comes here when the loop has no ``sendfile`` (uvloop): the kernel still
        sends the file (:mod:`wopibridge.wopi.sendfile`), unless the transport cannot take
        it or the operator turned sendfile off (``AIOHTTP_NOSENDFILE``)."""
        if not web_fileresponse.NOSENDFILE and await send_file(writer, fobj, offset, count):
            return writer
        return await super()._sendfile_fallback(writer, fobj, offset, count)

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
            log.warning(
                "GetFile of %s refused: %d bytes, the editor takes at most %d "
                "(X-WOPI-MaxExpectedSize)",
                stat.file_id,
                stat.size,
                max_expected,
            )
            raise PreconditionFailed(
                f"The file ({stat.size} bytes) is larger than the editor accepts "
                f"(X-WOPI-MaxExpectedSize: {max_expected} bytes)"
            )
        headers = {
            "X-WOPI-ItemVersion": stat.version,
            "Content-Type": "application/octet-stream",
        }
    except BaseException:
        await content.close()
        raise
    return await send_content(wopi.request, content, headers)


async def send_content(
    request: web.Request, content: FileContent, headers: dict[str, str]
) -> web.StreamResponse:
    """The bytes of ``content`` as the answer (sendfile where it can); closes ``content``."""
    try:
        if content.local_path is not None:
            return _OpenFileResponse(content, headers)
        assert content.chunks is not None
        response = web.StreamResponse(headers=headers)
        response.content_length = content.stat.size
        await response.prepare(request)
        async for chunk in content.chunks:
            await response.write(chunk)
        await response.write_eof()
        await content.close()
        return response
    except BaseException:
        await content.close()
        raise
