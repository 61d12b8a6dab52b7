"""wopibridge over a real xrootd server: three instances on one Redis, a second site on its
own Redis, ``xrdfs mv`` behind its back, and the server going away and coming back.

The server runs as the unprivileged ``xrootd`` user (:mod:`tests.support.xrootd`); the tests
look at its export folder directly to see the bytes and the attributes on the files.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.fleet import Fleet, one_winner_per_round, open_on, running_fleet, wopi
from tests.support.procs import RedisServer
from tests.support.requires import require_binary
from tests.support.xrootd import XrootdServer, require_client, xattrs, xrootd_server

require_client()


@pytest.fixture
def xrd(tmp_path: Path) -> Iterator[XrootdServer]:
    with xrootd_server() as server:
        (server.data / "team").mkdir()
        (server.data / "team" / "plan.docx").write_bytes(b"v1")
        yield server


def storage_table(server: XrootdServer, **extra: Any) -> dict[str, Any]:
    return server.table(root="/", site="xrd-site", **extra)


@pytest.fixture
def fleet(tmp_path: Path, xrd: XrootdServer, redis_server: RedisServer) -> Iterator[Fleet]:
    sections = {"storages.xrd": storage_table(xrd)}
    with running_fleet(tmp_path / "fleet", redis_server.url, **sections) as f:
        yield f
        assert "Traceback" not in f.logs()


def _id(src: str) -> str:
    return src.rsplit("/", 1)[1]


async def test_open_edit_and_lock_across_the_fleet(fleet: Fleet, xrd: XrootdServer) -> None:
    plan = xrd.data / "team" / "plan.docx"
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="xrd")
        status, _, body = await wopi(session, src, token)
        assert status == 200, body
        info = json.loads(body)
        assert (info["BaseFileName"], info["Size"]) == ("plan.docx", 2)
        first_version = info["Version"]
        for other in (1, 2):
            again, _, _ = await open_on(session, fleet, other, "team/plan.docx", endpoint="xrd")
            assert _id(again) == _id(src), "every instance reads the id on the file"
            status, _, content = await wopi(session, fleet.url_on(src, other), token, contents=True)
            assert (status, content) == (200, b"v1")

        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        for other in (1, 2):
            status, headers, _ = await wopi(
                session, fleet.url_on(src, other), token, "LOCK", {"X-WOPI-Lock": "L2"}
            )
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L")
        lock = json.loads(_b64(xattrs(plan)["iop.lock"]))
        assert lock["lock_id"] == "L" and lock["app_name"] == "wopibridge"
        assert 0 < lock["expiration"]["seconds"] - time.time() <= 30 * 60 + 5

        file_id = xattrs(plan)["wopibridge.id"]
        status, headers, _ = await wopi(
            session, fleet.url_on(src, 1), token, "PUT", {"X-WOPI-Lock": "L"}, b"v2", contents=True
        )
        assert status == 200
        assert plan.read_bytes() == b"v2"
        attrs = xattrs(plan)
        assert attrs["wopibridge.id"] == file_id, "the id followed the save"
        assert json.loads(_b64(attrs["iop.lock"]))["lock_id"] == "L", "the lock followed the save"
        status, _, body = await wopi(session, fleet.url_on(src, 2), token)
        assert json.loads(body)["Version"] != first_version
        assert not [p.name for p in plan.parent.iterdir() if p.name.startswith(".~wb-")]


async def test_xrdfs_mv_keeps_the_id_and_the_lock(fleet: Fleet, xrd: XrootdServer) -> None:
    xrdfs = require_binary("xrdfs")
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="xrd")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        subprocess.run(
            [xrdfs, xrd.url, "mv", "/team/plan.docx", "/team/moved.docx"],
            check=True,
            capture_output=True,
        )
        moved, moved_token, _ = await open_on(session, fleet, 1, "team/moved.docx", endpoint="xrd")
        assert _id(moved) == _id(src)
        status, headers, _ = await wopi(session, fleet.url_on(moved, 2), moved_token, "GET_LOCK")
        assert (status, headers.get("X-WOPI-Lock")) == (200, "L")
        # the editor's session goes on at the new path, through any instance
        status, _, body = await wopi(
            session, fleet.url_on(src, 1), token, "PUT", {"X-WOPI-Lock": "L"}, b"moved v2", True
        )
        assert status == 200, body
    assert (xrd.data / "team" / "moved.docx").read_bytes() == b"moved v2"


async def test_another_site_with_its_own_redis_sees_the_lock(
    tmp_path: Path, fleet: Fleet, xrd: XrootdServer
) -> None:
    """Site B shares nothing with site A but the storage: its own Redis, its own secrets."""
    plan = xrd.data / "team" / "plan.docx"
    other_redis = RedisServer(tmp_path / "redis-b")
    (tmp_path / "redis-b").mkdir()
    other_redis.start()
    try:
        with running_fleet(
            tmp_path / "site-b", other_redis.url, size=1, **{"storages.xrd": storage_table(xrd)}
        ) as site_b:
            async with aiohttp.ClientSession() as session:
                src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="xrd")
                b_src, b_token, _ = await open_on(
                    session, site_b, 0, "team/plan.docx", endpoint="xrd"
                )
                assert _id(b_src) == _id(src), "both sites read the id on the file"
                assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "A"}))[0] == 200

                status, headers, _ = await wopi(
                    session, b_src, b_token, "LOCK", {"X-WOPI-Lock": "B"}
                )
                assert (status, headers.get("X-WOPI-Lock")) == (409, "A")
                status, headers, _ = await wopi(
                    session, b_src, b_token, "PUT", {"X-WOPI-Lock": "B"}, b"B's", contents=True
                )
                assert (status, headers.get("X-WOPI-Lock")) == (409, "A")
                # without a lock at all (a new file's first save): still refused
                status, _, _ = await wopi(session, b_src, b_token, "PUT", {}, b"B's", contents=True)
                assert status == 409
                assert plan.read_bytes() == b"v1"

                status, _, _ = await wopi(
                    session, src, token, "PUT", {"X-WOPI-Lock": "A"}, b"A's", contents=True
                )
                assert status == 200
                assert plan.read_bytes() == b"A's"
                assert (await wopi(session, src, token, "UNLOCK", {"X-WOPI-Lock": "A"}))[0] == 200
                status, _, _ = await wopi(session, b_src, b_token, "LOCK", {"X-WOPI-Lock": "B"})
                assert status == 200
                status, headers, _ = await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "A2"})
                assert (status, headers.get("X-WOPI-Lock")) == (409, "B")
            assert "Traceback" not in site_b.logs()
    finally:
        other_redis.stop()


async def test_server_down_is_503_then_back_without_a_restart(
    fleet: Fleet, xrd: XrootdServer
) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="xrd")
        xrd.stop()
        status, _, body = await wopi(session, src, token)
        assert status == 503
        assert b"xrd" in body and b"Traceback" not in body
        assert str(xrd.port).encode() not in body and b"127.0.0.1" not in body
        async with session.get(f"{fleet[0].url}/ready") as resp:
            assert resp.status == 503
            assert "xrd" in await resp.text()
        xrd.start()
        deadline = time.monotonic() + 10
        while True:
            status, _, _ = await wopi(session, src, token)
            if status == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert status == 200, "served again within 10 s of the server's return"
        async with session.get(f"{fleet[0].url}/ready") as resp:
            assert resp.status == 200


@pytest.mark.slow
async def test_sixty_clients_over_three_instances_one_winner_per_round(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="xrd")
        await one_winner_per_round(session, fleet, src, token, rounds=10)


def _b64(value: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@pytest.mark.slow
async def test_hundred_mib_up_and_down_byte_exact_in_bounded_memory(
    tmp_path: Path, xrd: XrootdServer
) -> None:
    """100 MiB GetFile and PutFile through one instance: the bytes match both ways and the
    instance's resident memory grows by less than 50 MB (the bodies stream)."""
    from bench.rss import RssSampler

    block = os.urandom(1024 * 1024)
    blocks = 100
    big = xrd.data / "team" / "big.bin"
    with big.open("wb") as handle:
        for _ in range(blocks):
            handle.write(block)
    sections = {"storages.xrd": storage_table(xrd)}
    with running_fleet(tmp_path / "one", "memory://", size=1, **sections) as fleet:
        server = fleet[0]
        pid = server.proc.pid if server.proc else 0
        async with aiohttp.ClientSession() as session:
            src, token, _ = await open_on(session, fleet, 0, "team/big.bin", endpoint="xrd")
            assert (await wopi(session, src, token))[0] == 200  # warm: imports, connection
            digest, size = hashlib.sha256(), 0
            with RssSampler(pid) as down:
                async with session.get(f"{src}/contents", params={"access_token": token}) as r:
                    assert r.status == 200
                    async for chunk in r.content.iter_chunked(1024 * 1024):
                        digest.update(chunk)
                        size += len(chunk)
            assert size == blocks * len(block)
            assert digest.digest() == hashlib.sha256(block * blocks).digest()

            assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "big"}))[0] == 200
            reversed_block = block[::-1]

            async def body() -> AsyncIterator[bytes]:
                for _ in range(blocks):
                    yield reversed_block

            with RssSampler(pid) as up:
                async with session.post(
                    f"{src}/contents",
                    params={"access_token": token},
                    headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "big"},
                    data=body(),
                ) as r:
                    assert r.status == 200, await r.text()
        assert "Traceback" not in server.log()
    assert big.stat().st_size == blocks * len(block)
    with big.open("rb") as handle:
        landed = hashlib.sha256()
        while chunk := handle.read(1024 * 1024):
            landed.update(chunk)
    assert landed.digest() == hashlib.sha256(reversed_block * blocks).digest()
    assert down.growth < 50_000_000, f"GetFile grew RSS by {down.growth / 1e6:.1f} MB"
    assert up.growth < 50_000_000, f"PutFile grew RSS by {up.growth / 1e6:.1f} MB"
