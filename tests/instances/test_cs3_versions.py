"""The version API over a CS3 gateway (the fake gateway, real gRPC), through two instances:
the gateway keeps the versions (``ListFileVersions``, ``InitiateFileDownload`` of a version,
``RestoreFileVersion``); wopibridge lists, serves and restores them under the same API as the
local storage's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mesh.conftest import CS3_TOKEN, start_gateway
from tests.mesh.fakecs3 import RunningGateway
from tests.support.fleet import Fleet, open_on, wopi
from tests.support.procs import RedisServer


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(tmp_path / "cs3")
    (running.gateway.root / "doc.docx").write_bytes(b"v1")
    try:
        yield running
    finally:
        await running.stop()


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with session.request(
        method, url, params={"access_token": token}, headers=headers
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def _versions(session: aiohttp.ClientSession, url: str, token: str) -> list[dict[str, Any]]:
    status, _, body = await _call(session, "GET", url + "/versions", token)
    assert status == 200, body
    found: list[dict[str, Any]] = json.loads(body)["versions"]
    return found


async def test_the_version_api_over_a_cs3_gateway(
    tmp_path: Path, gateway: RunningGateway, redis_server: RedisServer
) -> None:
    table = {"type": "cs3", "gateway": gateway.address, "timeout": 5}
    fleet = Fleet(tmp_path / "fleet", redis_server.url, size=2, **{"storages.reva": table})
    fleet.start()
    root = gateway.gateway.root
    try:
        async with aiohttp.ClientSession() as session:
            src, token, _ = await open_on(session, fleet, 0, "doc.docx", CS3_TOKEN, endpoint="reva")
            assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
            for body in (b"second", b"third save", b"fourth and last"):
                status, _, answer = await wopi(
                    session, src, token, "PUT", {"X-WOPI-Lock": "L"}, body, contents=True
                )
                assert status == 200, answer

            other = fleet.url_on(src, 1)
            versions = await _versions(session, other, token)
            assert [v["size"] for v in versions] == [10, 6, 2]
            assert "ListFileVersions" in gateway.gateway.calls
            for version, expected in zip(versions, (b"third save", b"second", b"v1"), strict=True):
                status, _, content = await _call(
                    session, "GET", f"{other}/versions/{version['id']}/contents", token
                )
                assert (status, content) == (200, expected)

            restore = f"{other}/versions/{versions[-1]['id']}/restore"
            status, headers, _ = await _call(session, "POST", restore, token)
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L")
            assert (root / "doc.docx").read_bytes() == b"fourth and last"
            status, _, answer = await _call(session, "POST", restore, token, **{"X-WOPI-Lock": "L"})
            assert status == 200, answer
            assert "RestoreFileVersion" in gateway.gateway.calls
            assert (root / "doc.docx").read_bytes() == b"v1"
            after = await _versions(session, src, token)
            status, _, content = await _call(
                session, "GET", f"{src}/versions/{after[0]['id']}/contents", token
            )
            assert (status, content) == (200, b"fourth and last"), "nothing lost by a restore"

            # a view token lists and downloads but cannot restore; secure view gets nothing
            _, view, _ = await open_on(
                session,
                fleet,
                1,
                "doc.docx",
                CS3_TOKEN,
                endpoint="reva",
                viewmode="VIEW_MODE_READ_ONLY",
            )
            assert len(await _versions(session, other, view)) == len(after)
            status, _, _ = await _call(session, "POST", restore, view, **{"X-WOPI-Lock": "L"})
            assert status in (401, 403)
            _, secure, _ = await open_on(
                session,
                fleet,
                0,
                "doc.docx",
                CS3_TOKEN,
                endpoint="reva",
                viewmode="VIEW_MODE_VIEW_ONLY",
            )
            status, _, _ = await _call(session, "GET", other + "/versions", secure)
            assert status in (401, 403, 404)
            # a version id that the file does not list reaches nothing
            status, _, _ = await _call(
                session, "GET", f"{other}/versions/ZG9jLmRvY3g/contents", token
            )
            assert status == 404
        assert "Traceback" not in fleet.logs()
    finally:
        fleet.stop()
