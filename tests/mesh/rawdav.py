"""A deliberately rude HTTP server on raw asyncio streams, for what wsgidav will not do on demand.

It serves one file, ``/dav/doc.odt``, to ``PROPFIND`` and ``GET`` (etag ``v1``, with an active
lock reported once :attr:`RawDav.reveal_lock` is set, when ``PROPPATCH`` also answers 423) and
treats every ``PUT`` by :attr:`RawDav.mode`:

- ``close``: read about half of the body (``half`` bytes), then close the connection (FIN);
- ``reset``: the same, then reset it (``SO_LINGER`` 0: RST, unread bytes dropped);
- ``early423``: read ``half`` bytes, answer ``423 Locked``
  and close, as a server that checks its locks late does; it then reports the lock (a lock
  taken between our PROPFIND and our PUT);
- ``stall``: read ``half`` bytes, then neither read nor answer (a hung server);
- ``silent``: neither send ``100 Continue`` nor read nor answer.

Every PUT (but ``silent``) is answered ``100 Continue`` at once when it asks, as cheroot does,
and counted in
:attr:`RawDav.puts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

from tests.support.procs import free_port

MULTISTATUS = (
    '<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"><d:response>'
    "<d:href>{href}</d:href><d:propstat><d:prop><d:resourcetype/>"
    '<d:getetag>"v1"</d:getetag><d:getcontentlength>8</d:getcontentlength>'
    "<d:getlastmodified>Mon, 30 Nov 2026 10:00:00 GMT</d:getlastmodified>"
    "<d:lockdiscovery>{lock}</d:lockdiscovery>"
    "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
)
ACTIVE_LOCK = (
    "<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope><d:exclusive/></d:lockscope>"
    "<d:depth>0</d:depth><d:owner>desktop</d:owner></d:activelock>"
)


class RawDav:
    def __init__(self, mode: str = "close") -> None:
        self.mode = mode
        self.half = 0
        self.reveal_lock = False
        self.puts = 0
        self.port = free_port()
        #: called when an ``early423`` refusal is sent (a test takes its lock there)
        self.on_refuse: Callable[[], None] | None = None
        self._server: asyncio.Server | None = None
        self._stalled: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dav"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        for writer in self._stalled:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                if method == "PUT":
                    await self._put(reader, writer, headers)
                    return
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                writer.write(self._answer(method, target))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()

    def _answer(self, method: str, target: str) -> bytes:
        status, extra, body = "405 Method Not Allowed", "", b""
        if method == "PROPFIND" and not target.rstrip("/").endswith(("/dav", "/doc.odt")):
            status = "404 Not Found"  # one file only: no lock files, no conflict copies
        elif method == "PROPFIND":
            lock = ACTIVE_LOCK if self.reveal_lock else ""
            status, body = "207 Multi-Status", MULTISTATUS.format(href=target, lock=lock).encode()
        elif method == "PROPPATCH":
            status = "423 Locked" if self.reveal_lock else "207 Multi-Status"
        elif method == "GET":
            status, extra, body = "200 OK", 'ETag: "v1"\r\n', b"original"
        head = f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    async def _read_about(self, reader: asyncio.StreamReader, count: int) -> None:
        got = 0
        while got < count:
            block = await reader.read(min(65536, count - got))
            if not block:
                return
            got += len(block)

    async def _put(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> None:
        self.puts += 1
        if self.mode == "silent":  # never a 100 Continue, never a byte read
            self._stalled.append(writer)
            return
        if headers.get("expect", "").lower() == "100-continue":  # as cheroot does, at once
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        await self._read_about(reader, self.half)
        if self.mode == "stall":
            self._stalled.append(writer)
            return
        if self.mode == "early423":
            self.reveal_lock = True
            if self.on_refuse is not None:
                self.on_refuse()
            writer.write(b"HTTP/1.1 423 Locked\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        if self.mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
