"""Two ``wopibridge serve`` processes on one Redis: a document opened through the first keeps
being saved by the second after the first is killed (SIGKILL, no chance to hand anything over)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.procs import RedisServer
from tests.support.server import ServerProcess
from tests.support.wopi import TOKEN_SECRET
from wopibridge.bridge.docid import lock_id
from wopibridge.bridge.keys import BRIDGE
from wopibridge.locks import open_lock_store
from wopibridge.security.tokens import TokenCodec
from wopibridge.storage.local import LocalStorage
from wopibridge.storage.redis_idmap import RedisIdMap

from .etherpad_server import EtherpadServer
from .harness import Host, wait_for
from .test_etherpad_bridge import pad_api, pad_of

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_second_instance_takes_over_saving(
    tmp_path: Path, redis: RedisServer, etherpad: EtherpadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run this checkout's code, whichever checkout the package is installed from.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    shared = {
        "server": {"state_dir": str(tmp_path / "state")},
        "storage": {"root": str(tmp_path / "data")},
        "apps.etherpad": {
            "url": etherpad.url,
            "apikey": etherpad.apikey,
            "save_interval": 0.5,
            "unlock_delay": 0.5,
            "poll_interval": 0.2,
        },
    }
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "paper.txt").write_bytes(b"v1\n")
    # the file's id as the servers will see it: on the file, mapped in their Redis
    ids = RedisIdMap.from_url(redis.url, "wopibridge:", "local")
    storage = LocalStorage("local", tmp_path / "data", tmp_path / "state", ids)
    stat = await storage.resolve("paper.txt")
    token, _ = TokenCodec(TOKEN_SECRET, 3600).mint(
        file_id=f"local.{stat.file_id}", user_id="ann", user_name="Ann", mode="edit"
    )
    first = ServerProcess(tmp_path / "first", redis.url, **shared)
    second = ServerProcess(tmp_path / "second", redis.url, **shared)
    locks = open_lock_store(redis.url, "wopibridge:")
    try:
        first.start()
        second.start()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{first.url}/wopi/bridge/open?app=etherpad",
                data={"access_token": token},
                allow_redirects=False,
            ) as response:
                assert response.status == 303, await response.text()
                pad = pad_of(response.headers["Location"])
            assert await locks.get(stat.identity) == lock_id(pad)

            first.kill()
            await pad_api(etherpad, "setText", padID=pad, text="v2 after the first died\n")
            took = await wait_for(
                lambda: (
                    (tmp_path / "data" / "paper.txt").read_bytes() == b"v2 after the first died\n"
                ),
                timeout=20,
            )
            assert took < 15
            assert "bridge saved" in second.log()
            assert await locks.get(stat.identity) == lock_id(pad)

            # The second instance also serves the close and lets go of the lock.
            await pad_api(etherpad, "setText", padID=pad, text="v3\n")
            async with http.post(
                f"{second.url}/wopi/bridge/{pad}",
                params={"access_token": token, "close": "true"},
            ) as response:
                assert response.status == 202

            async def unlocked() -> bool:
                return await locks.get(stat.identity) == ""

            await wait_for(unlocked, timeout=10)
            assert (tmp_path / "data" / "paper.txt").read_bytes() == b"v3\n"
    finally:
        first.stop()
        second.stop()
        await locks.close()
        await storage.close()


async def test_one_instance_saves_a_document_at_a_time(
    make_host, redis_server: RedisServer, etherpad: EtherpadServer
) -> None:
    """Two instances on one Redis, both running their save loop over the same documents."""
    table = {
        "etherpad": {
            "url": etherpad.url,
            "apikey": etherpad.apikey,
            "save_interval": 0.2,
            "unlock_delay": 60,
            "poll_interval": 0.1,
        }
    }
    first: Host = await make_host(table, locks=redis_server.url, name="shared")
    second: Host = await make_host(table, locks=redis_server.url, name="shared")
    stat = await first.put_file("both.txt", b"0\n")
    _, url = await first.open(stat, "etherpad")
    pad = pad_of(url)
    _, url_b = await second.open(stat, "etherpad", user="bob")
    assert pad_of(url_b) == pad
    holders = set()
    for n in range(1, 16):
        await pad_api(etherpad, "setText", padID=pad, text=f"{n}\n")
        await asyncio.sleep(0.1)
        held = [host for host in (first, second) if pad in host.app[BRIDGE].held]
        assert len(held) <= 1
        holders.update(id(host) for host in held)
    await wait_for(lambda: first.read("both.txt") == b"15\n")
    assert len(holders) == 1
