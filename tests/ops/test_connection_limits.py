"""Connections are a bounded resource: a flood of idle connections at a 1,024 open-file limit
leaves ``/health`` answering, a worker whose connections are all busy answers a new one 503,
and ``accept()`` failures are one counted log line a second, not a traceback each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import time
from pathlib import Path

import pytest

from tests.support.server import ServerProcess
from wopibridge.ops.connections import connection_cap, quiet_accept_failures


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _get(port: int, path: str, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def many_files() -> None:
    """This test process holds 1,050 sockets: raise its own soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard open-file limit ({hard}) is too low for 1,050 client sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_1050_idle_connections_at_a_1024_limit_leave_health_answering(
    tmp_path: Path, many_files: None
) -> None:
    server = ServerProcess(tmp_path / "one")
    server.start(nofile=1024)
    assert server.proc is not None
    pid = server.proc.pid
    idle: list[socket.socket] = []
    try:
        base_files, base_rss = _open_files(pid), _rss_kib(pid)
        for count in range(1050):
            if count % 50 == 0:  # within the listen backlog: every one is accepted
                time.sleep(0.05)
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", server.port))
            idle.append(sock)
        deadline = time.monotonic() + 8
        while "reached: idle connections closed" not in server.log():
            assert time.monotonic() < deadline, "the flood never reached the cap"
            time.sleep(0.1)
        peak_files, peak_rss = _open_files(pid), _rss_kib(pid)
        started = time.monotonic()
        answer = _get(server.port, "/health")
        took = time.monotonic() - started
        print(
            f"\nidle flood at a 1,024 limit: open files {base_files} -> {peak_files}, "
            f"RSS {base_rss} KiB -> {peak_rss} KiB, /health in {took * 1000:.0f} ms"
        )
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert took < 2.0
        assert peak_files < 1024
    finally:
        for sock in idle:
            sock.close()
        server.stop()
    log = server.log()
    cap = connection_cap(10000, 1024)
    assert f"open-file limit 1024: at most {cap} connections" in log
    assert f"connection cap {cap} reached: idle connections closed" in log
    assert "Traceback" not in log
    assert len(log) < 100_000, "a few lines, not one per connection"


def test_a_new_connection_is_answered_503_when_every_connection_is_busy(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "one", server={"max_connections": 5})
    server.start()
    busy: list[socket.socket] = []
    try:
        for _ in range(5):  # a request head begun and not finished: busy, not idle
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")
            busy.append(sock)
        time.sleep(0.3)
        answer = _get(server.port, "/health")
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"Retry-After: 1" in answer
        busy[0].sendall(b"\r\n")  # one finishes its request: it is answered as usual
        assert busy[0].recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in busy:
            sock.close()
        server.stop()
    log = server.log()
    assert "connection cap 5 reached, all busy: new connections answered 503" in log
    assert "Traceback" not in log


async def test_accept_failures_are_one_counted_line_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    failures = quiet_accept_failures(loop)
    try:
        with caplog.at_level(logging.WARNING, logger="wopibridge.server"):
            for _ in range(1000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )

            # asyncio's retry of the accept, due after a stop closed the socket: no traceback
            def _start_serving() -> None:
                pass

            handle = loop.call_later(3600, _start_serving)
            loop.call_exception_handler(
                {
                    "message": "Exception in callback _start_serving()",
                    "exception": OSError(9, "Bad file descriptor"),
                    "handle": handle,
                }
            )
            handle.cancel()
    finally:
        loop.set_exception_handler(previous)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    messages = [r.getMessage() for r in caplog.records]
    lines = [m for m in messages if "accepting again" not in m]
    assert len(lines) == 1, lines
    assert "accept() failed" in lines[0] and "Too many open files" in lines[0]
    assert failures.total == 1000


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "one", server={"keepalive_timeout": 1})
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert sock.recv(65536) == b"", "the server closes the idle connection"
            assert 0.5 < time.monotonic() - started < 4
    finally:
        server.stop()
