"""SIGKILL in the middle of a 50 MB PutFile leaves the previous content byte-identical."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp
import pytest

from tests.support.server import ServerProcess
from tests.support.wopi import open_remote

SIZE = 50 * 1024 * 1024


@pytest.mark.slow
async def test_kill_during_put_file_keeps_old_content(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "srv")
    data = tmp_path / "srv" / "data"
    data.mkdir(parents=True)
    original = os.urandom(1024 * 1024) * 3
    (data / "big.bin").write_bytes(original)
    digest = hashlib.sha256(original).hexdigest()
    server.start()
    sent = 0
    try:
        async with aiohttp.ClientSession() as session:
            url, token = await open_remote(session, server.url, "big.bin")
            async with session.post(
                url,
                params={"access_token": token},
                headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "L"},
            ) as resp:
                assert resp.status == 200

            killed = asyncio.Event()

            async def body_stream():
                nonlocal sent
                chunk = b"\xab" * (1024 * 1024)
                while sent < SIZE:
                    if sent >= SIZE // 2 and not killed.is_set():
                        # the server holds a half-written temporary file: kill it now
                        await asyncio.sleep(0.3)
                        server.kill()
                        killed.set()
                    yield chunk
                    sent += len(chunk)

            with pytest.raises(aiohttp.ClientError):
                async with session.post(
                    url + "/contents",
                    params={"access_token": token},
                    headers={
                        "X-WOPI-Override": "PUT",
                        "X-WOPI-Lock": "L",
                        "Content-Length": str(SIZE),
                    },
                    data=body_stream(),
                ) as resp:
                    await resp.read()
            assert killed.is_set()
    finally:
        server.stop()
    assert hashlib.sha256((data / "big.bin").read_bytes()).hexdigest() == digest
    leftovers = [p for p in data.iterdir() if p.name not in ("big.bin", ".wopibridge")]
    # the kill really hit mid-upload: the half-written temporary file is still there
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".~wb-")
    assert 0 < leftovers[0].stat().st_size < SIZE
    # a restarted server serves the old content and a later save succeeds
    server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/contents", params={"access_token": token}) as resp,
        ):
            assert hashlib.sha256(await resp.read()).hexdigest() == digest
    finally:
        server.stop()
