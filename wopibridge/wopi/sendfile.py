"""The kernel's ``sendfile`` for a GetFile on an event loop that has none (uvloop).

asyncio's loop hands a file to the kernel (``loop.sendfile``), and aiohttp's ``FileResponse``
uses it. uvloop does not implement it: aiohttp then reads the file in a thread and writes every
chunk through the transport, copying each byte twice, and a GetFile of 100 MiB took about 30%
longer. :func:`send_file` does what asyncio's loop does, on any transport that lets it:

* only a plain TCP or Unix stream: on TLS the kernel would send the file unencrypted;
* the transport's own buffer is emptied first (the response headers may wait in it), so the
  file's bytes follow the headers on the wire;
* ``os.sendfile`` then runs on a duplicate of the socket's descriptor, since uvloop refuses to
  watch a descriptor one of its transports owns; the duplicate is watched for writability when
  the socket's buffer is full, and closed at the end, whatever happens;
* a peer that left, or a transport closed meanwhile (the server stopping), ends the send with
  ``ConnectionResetError``, as a write to a closed transport does.

Where any of that is missing it answers ``False`` before sending a byte, and aiohttp's own
fallback runs.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import IO, Any

from aiohttp.abc import AbstractStreamWriter

#: Bytes one ``sendfile`` call may move: the loop takes its other callbacks in between.
STEP = 1 << 20


def usable(transport: asyncio.BaseTransport | None) -> socket.socket | None:
    """The plain stream socket under ``transport``, or ``None`` when sendfile cannot serve it."""
    if transport is None or transport.is_closing():
        return None
    if transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or getattr(sock, "type", None) != socket.SOCK_STREAM:
        return None
    return sock  # type: ignore[no-any-return]


async def send_file(writer: AbstractStreamWriter, fobj: IO[Any], offset: int, count: int) -> bool:
    """Send ``count`` bytes of ``fobj`` from ``offset`` on ``writer``'s transport; ``False``
    (nothing sent) when it cannot take a kernel sendfile (see the module docstring)."""
    transport: asyncio.Transport | None = getattr(writer, "transport", None)
    sock = usable(transport)
    if transport is None or sock is None or not hasattr(os, "sendfile"):
        return False
    try:
        source = fobj.fileno()
        target = os.dup(sock.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    loop = asyncio.get_running_loop()
    try:
        await _flushed(transport, writer)
        while count > 0:
            if transport.is_closing():
                raise ConnectionResetError("Connection lost")
            try:
                sent = os.sendfile(target, source, offset, min(count, STEP))
            except BlockingIOError:
                await _writable(loop, target)
                continue
            except (BrokenPipeError, ConnectionError) as exc:
                raise ConnectionResetError("Connection lost") from exc
            if sent == 0:  # the file ended early: it was cut short on disk meanwhile
                break
            offset += sent
            count -= sent
    finally:
        os.close(target)
    return True


async def _flushed(transport: asyncio.WriteTransport, writer: AbstractStreamWriter) -> None:
    """Wait until the transport has written everything given to it before (the headers)."""
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)  # pauses the writer until it is empty
    try:
        await writer.drain()
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)
    if transport.get_write_buffer_size() or transport.is_closing():
        raise ConnectionResetError("Connection lost")


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
