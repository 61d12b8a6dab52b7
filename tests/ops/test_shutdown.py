"""SIGTERM drains an instance: ``/ready`` fails first while everything is still served, then
the listener closes, and uploads and downloads in flight finish byte-exact before exit 0.

Real ``wopibridge serve`` processes, a real ``redis-server``; the clients read and send slowly
on purpose, so that both transfers are still running when the signal arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.fleet import running_fleet
from tests.support.procs import RedisServer
from tests.support.rolling import RoundRobin, ready_within, restart
from tests.support.server import ServerProcess
from tests.support.wopi import open_remote

MiB = 1024 * 1024


def _pattern(size: int, seed: bytes) -> bytes:
    """``size`` bytes that differ at every offset, so a shifted or truncated copy shows."""
    block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


async def _slow_body(data: bytes, rate: float) -> AsyncIterator[bytes]:
    chunk = 256 * 1024
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]
        await asyncio.sleep(chunk / rate)


async def _slow_read(resp: aiohttp.ClientResponse, rate: float) -> bytes:
    parts = []
    async for part in resp.content.iter_chunked(256 * 1024):
        parts.append(part)
        await asyncio.sleep(len(part) / rate)
    return b"".join(parts)


async def test_sigterm_lets_a_slow_download_and_a_slow_upload_finish(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    big = _pattern(100 * MiB, b"download")
    (data / "big.bin").write_bytes(big)
    (data / "doc.bin").write_bytes(b"old")
    upload = _pattern(20 * MiB, b"upload")
    server = ServerProcess(
        tmp_path / "one",
        server={"drain_seconds": 2, "shutdown_timeout": 25},
        storage={"root": str(data)},
    )
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            big_src, big_token = await open_remote(session, server.url, "big.bin")
            doc_src, doc_token = await open_remote(session, server.url, "doc.bin")
            async with session.post(
                doc_src,
                params={"access_token": doc_token},
                headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "L1"},
            ) as resp:
                assert resp.status == 200

            async def download() -> tuple[int, bytes]:
                async with (
                    aiohttp.ClientSession() as own,
                    own.get(big_src + "/contents", params={"access_token": big_token}) as resp,
                ):
                    return resp.status, await _slow_read(resp, 12 * MiB)

            async def save() -> tuple[int, str]:
                async with (
                    aiohttp.ClientSession() as own,
                    own.post(
                        doc_src + "/contents",
                        params={"access_token": doc_token},
                        headers={
                            "X-WOPI-Override": "PUT",
                            "X-WOPI-Lock": "L1",
                            "Content-Length": str(len(upload)),
                        },
                        data=_slow_body(upload, 4 * MiB),
                    ) as resp,
                ):
                    return resp.status, await resp.text()

            transfers = asyncio.gather(download(), save())
            await asyncio.sleep(1.0)
            assert server.proc is not None
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            await ready_within(session, server.url, 503, within=1.0, since=signalled)
            async with (
                aiohttp.ClientSession() as fresh,
                fresh.get(big_src, params={"access_token": big_token}) as resp,
            ):
                assert resp.status == 200, "CheckFileInfo is still served while draining"
                assert resp.headers.get("Connection", "").lower() == "close"
            (got_status, got), (put_status, put_body) = await transfers
        code = await asyncio.to_thread(server.proc.wait, 30)
        stopped = time.monotonic() - signalled
    finally:
        server.stop()
    assert got_status == 200 and len(got) == len(big) and got == big, "the download is byte-exact"
    assert put_status == 200, put_body
    assert (data / "doc.bin").read_bytes() == upload, "the save in flight landed whole"
    assert code == 0 and stopped < 30
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    for step in ("draining (SIGTERM)", "stopped accepting; 2 requests in flight", "drained in"):
        assert step in log, log[-3000:]


async def test_sigint_stops_at_once(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "one", server={"drain_seconds": 30})
    server.start()
    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(server.proc.wait, 10)
    assert code == 0 and time.monotonic() - started < 5
    assert "stopping now (SIGINT)" in server.log()


@pytest.mark.parametrize("workers", [1, 2])
async def test_rolling_restart_of_two_instances_fails_no_request(
    tmp_path: Path, redis_server: RedisServer, workers: int
) -> None:
    """Two instances on one folder and one Redis; a client sends CheckFileInfo, Lock and
    Unlock round-robin and tries the other instance only when a connection is refused. Each
    instance in turn gets SIGTERM and is started again: no request ends in a 5xx, or in a
    reset."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "report.docx").write_bytes(b"v1")
    sections = {"server": {"drain_seconds": 1, "workers": workers}, "storage": {"root": str(data)}}
    with running_fleet(tmp_path / "fleet", redis_server.url, size=2, **sections) as fleet:
        servers = fleet.servers
        async with aiohttp.ClientSession() as session:
            src, token = await open_remote(session, servers[0].url, "report.docx")
        client = RoundRobin([s.url for s in servers], src, token)
        running = asyncio.create_task(client.run(minimum=400))
        for server in servers:
            await client.wait_for(client.sent + 40)
            await restart(server)
        client.done = True
        await running
    print(f"refused {client.refused_retries}, held {client.held}")
    assert client.sent >= 400
    assert client.failures == [], client.failures[:10]
    # it met a stopped instance: refused, or held while one stopped listening
    assert client.refused_retries + client.held > 0, (client.refused_retries, client.held)
    for server in servers:
        log = server.log()
        assert "Traceback" not in log, log[-3000:]
        assert "drained in" in log
