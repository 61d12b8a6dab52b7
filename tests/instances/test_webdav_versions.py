"""The version API over WebDAV, through two instances: a real wsgidav serving the files at a
Nextcloud-style URL, with a **fake** of Nextcloud's versions DAV API (``--nextcloud-versions``
of :mod:`tests.mesh.davserver`), which keeps a version on every upload as Nextcloud does.
wopibridge finds the ``versions`` collection from the files URL and the file's ``oc:fileid``.
A plain WebDAV server (no such collection) answers 501.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mesh.conftest import DAV_PASSWORD, DAV_USER, DavServer
from tests.support.fleet import Fleet, open_on, wopi
from tests.support.procs import RedisServer


@pytest.fixture
def nextcloud(tmp_path: Path) -> Iterator[DavServer]:
    root = tmp_path / "nc"
    root.mkdir()
    (root / "doc.docx").write_bytes(b"v1")
    server = DavServer(root, nextcloud_versions=tmp_path / "nc-versions")
    server.start()
    yield server
    server.stop()


def _table(server: DavServer, url: str) -> dict[str, Any]:
    return {
        "type": "webdav",
        "url": url,
        "auth": "basic",
        "username": DAV_USER,
        "password": DAV_PASSWORD,
        "timeout": 10,
    }


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with session.request(
        method, url, params={"access_token": token}, headers=headers
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_the_version_api_over_nextcloud_webdav(
    tmp_path: Path, nextcloud: DavServer, redis_server: RedisServer
) -> None:
    files = f"http://127.0.0.1:{nextcloud.port}/remote.php/dav/files/{DAV_USER}"
    plain = nextcloud.url  # the same folder at /dav: no versions collection there
    fleet = Fleet(
        tmp_path / "fleet",
        redis_server.url,
        size=2,
        **{"storages.nc": _table(nextcloud, files), "storages.plain": _table(nextcloud, plain)},
    )
    fleet.start()
    try:
        async with aiohttp.ClientSession() as session:
            src, token, _ = await open_on(session, fleet, 0, "doc.docx", endpoint="nc")
            assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
            for body in (b"second", b"third save", b"fourth and last"):
                status, _, answer = await wopi(
                    session, src, token, "PUT", {"X-WOPI-Lock": "L"}, body, contents=True
                )
                assert status == 200, answer

            other = fleet.url_on(src, 1)
            status, _, body = await _call(session, "GET", other + "/versions", token)
            assert status == 200, body
            versions = json.loads(body)["versions"]
            assert [v["size"] for v in versions] == [10, 6, 2]
            for version, expected in zip(versions, (b"third save", b"second", b"v1"), strict=True):
                status, _, content = await _call(
                    session, "GET", f"{other}/versions/{version['id']}/contents", token
                )
                assert (status, content) == (200, expected)

            restore = f"{other}/versions/{versions[-1]['id']}/restore"
            status, headers, _ = await _call(session, "POST", restore, token)
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L")
            assert (nextcloud.root / "doc.docx").read_bytes() == b"fourth and last"
            status, _, answer = await _call(session, "POST", restore, token, **{"X-WOPI-Lock": "L"})
            assert status == 200, answer
            assert (nextcloud.root / "doc.docx").read_bytes() == b"v1"
            status, _, body = await _call(session, "GET", src + "/versions", token)
            after = json.loads(body)["versions"]
            status, _, content = await _call(
                session, "GET", f"{src}/versions/{after[0]['id']}/contents", token
            )
            assert (status, content) == (200, b"fourth and last"), "nothing lost by a restore"
            status, _, _ = await _call(session, "GET", f"{src}/versions/1/contents", token)
            assert status == 404

            # the same files through a WebDAV URL without a versions collection: a clear 501
            src2, token2, _ = await open_on(session, fleet, 1, "doc.docx", endpoint="plain")
            status, _, body = await _call(session, "GET", src2 + "/versions", token2)
            assert status == 501
            assert b"keeps no versions" in body
        assert "Traceback" not in fleet.logs()
    finally:
        fleet.stop()
