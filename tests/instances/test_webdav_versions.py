"""The version API over WebDAV, through two instances: a real wsgidav serving the files at a
Nextcloud-style URL, with a **fake** of Nextcloud's versions DAV API (``--nextcloud-versions``
of :mod:`tests.mesh.davserver`), which keeps a version on every upload as Nextcloud does.
wopibridge finds the ``versions`` collection from the files URL and the file's ``oc:fileid``.
A plain WebDAV server (no such collection) answers 501.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mesh.conftest import DAV_PASSWORD, DAV_USER, DavServer
from tests.support.fleet import Fleet, open_on
from tests.support.procs import RedisServer
from tests.support.versionapi import call, three_saves_then_restore


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
            await three_saves_then_restore(session, fleet, src, token, nextcloud.root / "doc.docx")
            status, _, _ = await call(session, "GET", f"{src}/versions/1/contents", token)
            assert status == 404

            # the same files through a WebDAV URL without a versions collection: a clear 501
            src2, token2, _ = await open_on(session, fleet, 1, "doc.docx", endpoint="plain")
            status, _, body = await call(session, "GET", src2 + "/versions", token2)
            assert status == 501
            assert b"keeps no versions" in body
        assert "Traceback" not in fleet.logs()
    finally:
        fleet.stop()
