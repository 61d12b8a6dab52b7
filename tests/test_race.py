"""Two wopibridge instances on one Redis: 50 clients race to Lock one file, exactly one wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.support.procs import RedisServer
from tests.support.server import running_server
from tests.support.wopi import open_remote


async def test_fifty_clients_two_instances_one_winner(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    shared_state = tmp_path / "state"
    shared_data = tmp_path / "data"
    shared_data.mkdir()
    (shared_data / "shared.docx").write_bytes(b"doc")
    common = {
        "lock_url": redis.url,
        "server": {"state_dir": str(shared_state)},
        "storage": {"root": str(shared_data)},
    }
    try:
        with (
            running_server(tmp_path / "a", **common) as a,
            running_server(tmp_path / "b", **common) as b,
        ):
            async with aiohttp.ClientSession() as session:
                src_a, token_a = await open_remote(session, a.url, "shared.docx")
                src_b, token_b = await open_remote(session, b.url, "shared.docx")
                file_a = src_a.rsplit("/", 1)[1]
                assert src_b.rsplit("/", 1)[1] == file_a
                targets = [(a.url, token_a), (b.url, token_b)]

                async def attempt(i: int, round_: int) -> tuple[int, str]:
                    base, token = targets[i % 2]
                    async with session.post(
                        f"{base}/wopi/files/{file_a}",
                        params={"access_token": token},
                        headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": f"R{round_}-C{i}"},
                    ) as resp:
                        return resp.status, resp.headers.get("X-WOPI-Lock", "")

                for round_ in range(5):
                    results = await asyncio.gather(*(attempt(i, round_) for i in range(50)))
                    winners = [i for i, (status, _) in enumerate(results) if status == 200]
                    assert len(winners) == 1, results
                    winner_lock = f"R{round_}-C{winners[0]}"
                    assert all(lock == winner_lock for status, lock in results if status == 409)
                    assert sum(status == 409 for status, _ in results) == 49
                    base, token = targets[0]
                    async with session.post(
                        f"{base}/wopi/files/{file_a}",
                        params={"access_token": token},
                        headers={"X-WOPI-Override": "UNLOCK", "X-WOPI-Lock": winner_lock},
                    ) as resp:
                        assert resp.status == 200
    finally:
        redis.stop()
