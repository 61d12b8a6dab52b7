"""What a crash mid-upload leaves is swept at the next start, and nothing a live writer holds.

A real ``wopibridge serve`` receives two uploads, one to the local storage (its temporary file
beside the file) and one to a WebDAV storage (its copy in ``<state_dir>/recovery/``), and is
killed with SIGKILL half way through both. Meanwhile another writer (this test process, standing
for a second instance sharing the folders) holds temporary files of its own in both places.
After a restart the crashed ones are gone and the live writer's are untouched.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest

from tests.mesh.conftest import DavServer
from tests.support.procs import wait_for_port
from tests.support.server import ServerProcess
from tests.support.wopi import IOP_SECRET
from wopibridge.storage.tempfiles import TempFile

MIB = 1024 * 1024


async def open_for_edit(
    session: aiohttp.ClientSession, base: str, fileid: str, **extra: str
) -> tuple[str, dict[str, str]]:
    async with session.get(
        f"{base}/wopi/iop/openinapp",
        params={
            "fileid": fileid,
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u@idp",
            "appurl": "https://editor/x?",
            **extra,
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    wopi_src = unquote(body["app-url"].split("WOPISrc=", 1)[1])
    token = {"access_token": body["form-parameters"]["access_token"]}
    async with session.post(
        wopi_src, params=token, headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "L"}
    ) as resp:
        assert resp.status == 200, await resp.text()
    return wopi_src, token


async def endless_upload(
    session: aiohttp.ClientSession, url: str, token: dict[str, str], sent: int
) -> None:
    """Send ``sent`` bytes of a 100 MiB body, then nothing more (until the server dies)."""

    async def body() -> AsyncIterator[bytes]:
        block = os.urandom(MIB)
        for _ in range(sent // MIB):
            yield block
        await asyncio.sleep(3600)

    headers = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": "L", "Content-Length": str(100 * MIB)}
    try:
        async with session.post(f"{url}/contents", params=token, data=body(), headers=headers):
            pass
    except aiohttp.ClientError:
        return  # the server was killed


def temporaries(folder: Path) -> set[Path]:
    return set(folder.glob(".~wb-*.tmp")) if folder.exists() else set()


async def wait_for_temporaries(folder: Path, minimum: int, timeout: float = 30) -> set[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {p for p in temporaries(folder) if p.stat().st_size >= minimum}
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no temporary file of {minimum} bytes appeared in {folder}")


@pytest.mark.slow
async def test_sigkill_mid_upload_leftovers_swept_live_writer_untouched(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "remote.odt").write_bytes(b"remote original")
    dav = DavServer(share)
    dav.start()
    server = ServerProcess(tmp_path / "srv", **{"storages.dav": dav.table()})
    data = tmp_path / "srv" / "data"
    recovery = tmp_path / "srv" / "state" / "recovery"
    data.mkdir(parents=True)
    (data / "local.odt").write_bytes(b"local original")
    server.start()
    live: list[TempFile] = []
    try:
        async with aiohttp.ClientSession() as session:
            local_url, local_token = await open_for_edit(session, server.url, "local.odt")
            dav_url, dav_token = await open_for_edit(
                session, server.url, "remote.odt", endpoint="dav"
            )
            uploads = [
                asyncio.create_task(endless_upload(session, local_url, local_token, 40 * MIB)),
                asyncio.create_task(endless_upload(session, dav_url, dav_token, 40 * MIB)),
            ]
            crashed = await wait_for_temporaries(data, 8 * MIB)
            crashed |= await wait_for_temporaries(recovery, 8 * MIB)
            # another instance's writers, alive through the crash and the restart
            live = [TempFile.create_sync(data), TempFile.create_sync(recovery)]
            for temp in live:
                temp.write_sync([b"still being written"])
            server.kill()
            await asyncio.gather(*uploads)

        assert crashed <= temporaries(data) | temporaries(recovery)
        server.start(wait=False)
        wait_for_port(server.port, timeout=30)
        left = temporaries(data) | temporaries(recovery)
        assert left == {t.path for t in live}, (left, crashed)
        for temp in live:
            temp.write_sync([b" and more"])
            assert temp.path.read_bytes() == b"still being written and more"
        assert (data / "local.odt").read_bytes() == b"local original"
        assert (share / "remote.odt").read_bytes() == b"remote original"
        log = server.log()
        assert f"a crash left under {data}" in log
        assert f"a crash left under {recovery}" in log
    finally:
        for temp in live:
            temp.discard()
        server.stop()
        dav.stop()
