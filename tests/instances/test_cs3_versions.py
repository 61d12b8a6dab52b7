"""The version API over a CS3 gateway (the fake gateway, real gRPC), through two instances:
the gateway keeps the versions (``ListFileVersions``, ``InitiateFileDownload`` of a version,
``RestoreFileVersion``); wopibridge lists, serves and restores them under the same API as the
local storage's.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.instances.test_cs3_fleet import gateway  # noqa: F401 - the same gateway
from tests.mesh.conftest import CS3_TOKEN
from tests.mesh.fakecs3 import RunningGateway
from tests.support.fleet import Fleet, open_on
from tests.support.procs import RedisServer
from tests.support.versionapi import call, three_saves_then_restore, versions_of


async def test_the_version_api_over_a_cs3_gateway(
    tmp_path: Path,
    gateway: RunningGateway,  # noqa: F811
    redis_server: RedisServer,
) -> None:
    table = {"type": "cs3", "gateway": gateway.address, "timeout": 5}
    fleet = Fleet(tmp_path / "fleet", redis_server.url, size=2, **{"storages.reva": table})
    fleet.start()
    root = gateway.gateway.root
    try:
        async with aiohttp.ClientSession() as session:
            src, token, _ = await open_on(session, fleet, 0, "doc.docx", CS3_TOKEN, endpoint="reva")
            _, after = await three_saves_then_restore(session, fleet, src, token, root / "doc.docx")
            assert {"ListFileVersions", "RestoreFileVersion"} <= set(gateway.gateway.calls)
            other = fleet.url_on(src, 1)
            restore = f"{other}/versions/{after[-1]['id']}/restore"

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
            assert len(await versions_of(session, other, view)) == len(after)
            status, _, _ = await call(session, "POST", restore, view, **{"X-WOPI-Lock": "L"})
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
            status, _, _ = await call(session, "GET", other + "/versions", secure)
            assert status in (401, 403, 404)
            # a version id that the file does not list reaches nothing
            status, _, _ = await call(
                session, "GET", f"{other}/versions/ZG9jLmRvY3g/contents", token
            )
            assert status == 404
        assert "Traceback" not in fleet.logs()
    finally:
        fleet.stop()
