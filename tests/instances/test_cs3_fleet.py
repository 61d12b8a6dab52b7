"""Three ``wopibridge serve`` instances over one CS3 gateway (the fake gateway, real gRPC).

CS3 ids are Reva's resource ids and the locks live on the gateway, so the instances agree
without anything of their own in Redis; this checks that they do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.mesh.conftest import CS3_TOKEN, start_gateway
from tests.mesh.fakecs3 import RunningGateway
from tests.support.fleet import Fleet, one_winner_across_sites, open_on, wopi
from tests.support.procs import RedisServer


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(tmp_path / "cs3")
    (running.gateway.root / "doc.docx").write_bytes(b"v1")
    try:
        yield running
    finally:
        await running.stop()


async def test_ids_locks_and_renames_agree_over_a_cs3_gateway(
    tmp_path: Path, gateway: RunningGateway, redis_server: RedisServer
) -> None:
    table = {"type": "cs3", "gateway": gateway.address, "timeout": 5}
    fleet = Fleet(tmp_path / "fleet", redis_server.url, **{"storages.reva": table})
    fleet.start()  # the servers are separate processes; the gateway answers from this loop
    try:
        async with aiohttp.ClientSession() as session:
            opened = [
                await open_on(session, fleet, i, "doc.docx", CS3_TOKEN, endpoint="reva")
                for i in range(3)
            ]
            src, token, _ = opened[0]
            assert {o[0].rsplit("/", 1)[1] for o in opened} == {src.rsplit("/", 1)[1]}

            assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
            for other in (1, 2):
                status, headers, _ = await wopi(
                    session, fleet.url_on(src, other), token, "LOCK", {"X-WOPI-Lock": "L2"}
                )
                assert (status, headers.get("X-WOPI-Lock")) == (409, "L")

            status, _, _ = await wopi(
                session,
                fleet.url_on(src, 1),
                token,
                "RENAME_FILE",
                {"X-WOPI-RequestedName": "final", "X-WOPI-Lock": "L"},
            )
            assert status == 200
            for other in (0, 2):
                status, _, body = await wopi(session, fleet.url_on(src, other), token)
                assert status == 200, body
                assert json.loads(body)["BaseFileName"] == "final.docx"
                status, headers, _ = await wopi(
                    session, fleet.url_on(src, other), token, "GET_LOCK"
                )
                assert (status, headers.get("X-WOPI-Lock")) == (200, "L")
        assert "Traceback" not in fleet.logs()
    finally:
        fleet.stop()


async def test_a_second_site_with_its_own_redis_agrees_through_the_gateway(
    tmp_path: Path, gateway: RunningGateway, redis_server: RedisServer
) -> None:
    """Site B (two instances on one Redis) and site A (one instance on its own Redis) share
    only the gateway: one Lock winner per round among both sites' clients, and neither saves
    over the other's lock."""
    table = {"type": "cs3", "gateway": gateway.address, "timeout": 5}
    redis_a = RedisServer(tmp_path)
    redis_a.start()
    site_b = Fleet(
        tmp_path / "b",
        redis_server.url,
        size=2,
        server={"public_url": "https://b.test"},
        **{"storages.reva": table},
    )
    site_a = Fleet(
        tmp_path / "a",
        redis_a.url,
        size=1,
        server={"public_url": "https://a.test"},
        **{"storages.reva": table},
    )
    site_b.start()
    site_a.start()
    try:
        async with aiohttp.ClientSession() as session:
            b_src, b_token, _ = await open_on(
                session, site_b, 0, "doc.docx", CS3_TOKEN, endpoint="reva"
            )
            a_src, a_token, _ = await open_on(
                session, site_a, 0, "doc.docx", CS3_TOKEN, endpoint="reva"
            )

            async def no_save_over(other: str, other_token: str, held: str) -> None:
                """The other site cannot save over the lock, with its own lock id or none."""
                for given in ("mine", ""):
                    status, headers, _ = await wopi(
                        session, other, other_token, "PUT", {"X-WOPI-Lock": given}, b"over", True
                    )
                    assert (status, headers.get("X-WOPI-Lock")) == (409, held)
                assert (gateway.gateway.root / "doc.docx").read_bytes() == b"v1"

            sites = [(site_b, b_src, b_token), (site_a, a_src, a_token)]
            await one_winner_across_sites(
                session, sites, rounds=5, clients=20, between=no_save_over
            )
        assert "Traceback" not in site_b.logs() + site_a.logs()
    finally:
        site_b.stop()
        site_a.stop()
        redis_a.stop()
