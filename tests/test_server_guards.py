"""What a started ``wopibridge serve`` does with clients that misbehave at the HTTP level:
request heads sent too slowly, requests that cannot be parsed, wrong iop secrets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.server import ServerProcess, running_server
from tests.support.wopi import IOP_SECRET, open_remote


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("guards")
    (workdir / "data").mkdir()
    (workdir / "data" / "a.docx").write_bytes(b"a")
    with running_server(workdir, server={"header_timeout": 1, "read_timeout": 1}) as started:
        yield started


async def _raw(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def test_trickled_request_heads_are_cut_off(server: ServerProcess) -> None:
    """200 connections sending their head a byte at a time: each is answered 408 and closed
    one header_timeout (1 s here) after it started, not kept for the keep-alive timeout."""
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200

    async def trickle() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        answer = b""
        try:
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                chunk = await _read_ready(reader, 0.05)
                if chunk is None:  # closed by the server
                    break
                answer += chunk
            answer += await asyncio.wait_for(reader.read(), timeout=5)
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            writer.close()
        return time.monotonic() - started, answer

    results = await asyncio.gather(*(trickle() for _ in range(200)))
    durations = sorted(d for d, _ in results)
    assert durations[-1] < 5, durations[-10:]
    answers = [a for _, a in results]
    assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) >= 190
    # the server still answers promptly afterwards
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/health") as r:
        assert r.status == 200


async def test_a_stalled_body_closes_the_connection(server: ServerProcess) -> None:
    """Headers announce 100 bytes, 10 arrive, then nothing: closed after read_timeout (1 s),
    and nothing is stored."""
    async with aiohttp.ClientSession() as session:
        wopi_src, token = await open_remote(session, server.url, "a.docx")
    path = wopi_src.split("127.0.0.1", 1)[1].split("/", 1)[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(
        f"POST /{path}?access_token={token} HTTP/1.1\r\n"
        "Host: x\r\nX-WOPI-Override: PUT_USER_INFO\r\nContent-Length: 100\r\n\r\n".encode()
        + b"0123456789"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    closed_after = time.monotonic() - started
    writer.close()
    assert 0.9 < closed_after < 4, closed_after
    assert not answer.startswith(b"HTTP/1.1 200"), answer
    async with (
        aiohttp.ClientSession() as session,
        session.get(wopi_src, params={"access_token": token}) as resp,
    ):
        assert (await resp.json())["UserInfo"] == ""


async def test_a_slow_but_steady_body_is_not_cut(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        wopi_src, token = await open_remote(session, server.url, "a.docx")

        async def steady():
            for _ in range(6):
                yield b"x" * 10
                await asyncio.sleep(0.5)

        async with session.post(
            wopi_src,
            params={"access_token": token},
            headers={"X-WOPI-Override": "PUT_USER_INFO"},
            data=steady(),
        ) as resp:
            assert resp.status == 200, await resp.text()
        async with session.get(wopi_src, params={"access_token": token}) as resp:
            assert (await resp.json())["UserInfo"] == "x" * 60


async def _read_ready(reader: asyncio.StreamReader, wait: float) -> bytes | None:
    """What arrived within ``wait`` seconds (``b""`` if nothing), ``None`` at end of stream."""
    try:
        chunk = await asyncio.wait_for(reader.read(4096), timeout=wait)
    except TimeoutError:
        return b""
    return chunk or None


async def test_prompt_requests_on_a_kept_alive_connection_are_not_cut(
    server: ServerProcess,
) -> None:
    """The deadline runs per request head: a connection used for several seconds is fine."""
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.get(f"{server.url}/health") as resp:
                assert resp.status == 200
            await asyncio.sleep(0.6)


@pytest.mark.parametrize(
    "payload",
    [
        b"GET /wopi/files/x?access_token=SECRET-TOKEN-123 HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /wopi/files/x?access_token=SECRET-TOKEN-123 HTTP/9.9\r\nHost: x\r\n\r\n",
        b"G\x01T /wopi/files/x?access_token=SECRET-TOKEN-123 HTTP/1.1\r\n\r\n",
        b"GET /wopi/files/x?access_token=SECRET-TOKEN-123" + b"A" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"POST /wopi/open HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ],
)
async def test_malformed_requests_get_our_own_short_answer(
    server: ServerProcess, payload: bytes
) -> None:
    answer = await _raw(server.port, payload)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:200]
    assert b"SECRET-TOKEN" not in answer
    assert body.rstrip().endswith(b"the request could not be read"), body
    assert len(body) < 100
    assert "SECRET-TOKEN" not in server.log()
    assert "Traceback" not in server.log()


async def test_repeated_wrong_iop_secrets_are_logged_with_the_peer_rate_limited(
    server: ServerProcess,
) -> None:
    before = server.log().count("iop secret")
    async with aiohttp.ClientSession() as session:

        async def wrong() -> int:
            async with session.post(
                f"{server.url}/wopi/open",
                headers={"Authorization": "Bearer wrong-secret"},
                json={"path": "a.docx", "user": {"id": "u"}},
            ) as resp:
                return resp.status

        statuses = []
        for _ in range(30):
            statuses += await asyncio.gather(*(wrong() for _ in range(100)))
        assert set(statuses) == {401}
        # the right secret still works
        await open_remote(session, server.url, "a.docx", IOP_SECRET)
    await asyncio.sleep(0.2)
    lines = [
        line
        for line in server.log().splitlines()[before:]
        if "iop secret" in line and "127.0.0.1" in line
    ]
    assert lines, server.log()[-2000:]
    assert len(lines) <= 5  # 3,000 failures in a few seconds: a line or two, not 3,000
    assert "wrong-secret" not in server.log()


def test_sigterm_still_runs_the_cleanup(tmp_path: Path) -> None:
    """The server's own run loop stops on SIGTERM like aiohttp's run_app: cleanly, exit 0."""
    server = ServerProcess(tmp_path / "srv")
    server.start()
    assert server.proc is not None
    proc = server.proc
    server.stop()
    assert proc.returncode == 0, server.log()
    assert "Traceback" not in server.log()
