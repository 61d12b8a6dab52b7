"""GetFile's kernel sendfile on uvloop, which has no ``loop.sendfile`` of its own.

The server runs on a real uvloop loop in a thread, over real loopback sockets; the clients are
plain sockets (a reader that stops reading fills the socket's buffers, which is what makes the
send wait for writability). ``os.sendfile`` is counted to show the kernel, not aiohttp's
read-and-write fallback, moved the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.procs import free_port
from tests.support.requires import require_module
from wopibridge.storage.base import FileContent, FileStat
from wopibridge.wopi import sendfile
from wopibridge.wopi.contents import send_content

SIZE = 24 * 1024 * 1024 + 12345  # more than one STEP, not a multiple of it


class UvloopServer:
    """An aiohttp server answering ``GET /`` with the file through ``send_content``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.calls = 0
        self.closed: list[bool] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        st = self.path.stat()
        stat = FileStat("id", self.path.name, st.st_size, st.st_mtime_ns, "v1", "id")
        closed = self.closed

        class Content(FileContent):
            async def close(self) -> None:
                closed.append(True)

        content = Content(stat=stat, local_path=self.path)
        return await send_content(request, content, {"Content-Type": "application/octet-stream"})

    def _run(self) -> None:
        uvloop = require_module("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> UvloopServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        out.write(os.urandom(SIZE))
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls: list[int] = []
    real = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sent = real(out_fd, in_fd, offset, count)
        calls.append(sent)
        return sent

    monkeypatch.setattr(sendfile.os, "sendfile", counting)
    yield calls


def get(port: int, pause: float = 0.0, headers: str = "") -> tuple[bytes, bytes]:
    """The raw answer's head and body; ``pause`` seconds without reading after the request."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET / HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n".encode())
        time.sleep(pause)
        data = bytearray()
        while chunk := sock.recv(1 << 20):
            data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_the_kernel_sends_the_file_on_uvloop(big_file: Path, counted: list[int]) -> None:
    with UvloopServer(big_file) as server:
        head, body = get(server.port, pause=0.3)  # the send waits for a reader that is away
    assert head.startswith(b"HTTP/1.1 200")
    assert f"Content-Length: {SIZE}".encode() in head
    assert hashlib.sha256(body).digest() == hashlib.sha256(big_file.read_bytes()).digest()
    assert sum(counted) == SIZE and len(counted) > 1
    assert server.closed == [True]


def test_a_reader_that_leaves_mid_file_costs_nothing(big_file: Path, counted: list[int]) -> None:
    with UvloopServer(big_file) as server:
        fds = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                sock.recv(100_000)  # part of it, then gone (the kernel resets the rest)
        deadline = time.monotonic() + 10
        while len(server.closed) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.closed == [True] * 5
        # every duplicate descriptor was closed, and the server still answers in full
        head, body = get(server.port)
        assert head.startswith(b"HTTP/1.1 200") and len(body) == SIZE
        assert len(os.listdir("/proc/self/fd")) <= fds
    assert sum(counted) < 7 * SIZE


def test_tls_is_never_given_to_sendfile() -> None:
    class Transport(asyncio.Transport):
        def __init__(self, extra: dict[str, object]) -> None:
            super().__init__(extra)

        def is_closing(self) -> bool:
            return False

    plain = socket.socket()
    try:
        assert sendfile.usable(Transport({"socket": plain})) is plain
        assert sendfile.usable(Transport({"socket": plain, "ssl_object": object()})) is None
        assert sendfile.usable(Transport({})) is None
        assert sendfile.usable(None) is None
    finally:
        plain.close()


def test_a_range_is_sent_from_its_offset(big_file: Path, counted: list[int]) -> None:
    start, end = 3 * 1024 * 1024 + 7, 5 * 1024 * 1024 + 99
    with UvloopServer(big_file) as server:
        head, body = get(server.port, headers=f"Range: bytes={start}-{end}\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    assert body == big_file.read_bytes()[start : end + 1]
    assert sum(counted) == end + 1 - start
