"""Two sites, one file: two wopibridge processes with their own configuration, one Redis, one
WebDAV share (a real wsgidav). Site A's edit session holds the WOPI lock; site B sees it.

The share is owned by site B (``site = "site-b"`` in both configurations); site A reaches it as
an OCM share with the shared secret, site B with its own service account. Both compute the same
lock key, the file's identity at its owning site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest

from tests.mesh.conftest import DAV_PASSWORD, DAV_TOKEN, DAV_USER, DavServer
from tests.mesh.sites import WopiSite
from tests.support.procs import RedisServer

IOP_SECRET = "two-sites-iop-secret-0123456789ab"


@pytest.fixture
def redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def site_config(name: str, redis_url: str, storage: dict[str, Any]) -> dict[str, Any]:
    return {
        "locks": {"url": redis_url, "prefix": "mesh:"},
        "security": {
            "token_secret": f"{name}-token-secret-0123456789abcdef",
            "iop_secret": IOP_SECRET,
        },
        "storages": {"share": storage},
    }


async def open_file(http: aiohttp.ClientSession, site: WopiSite) -> dict[str, Any]:
    async with http.get(
        f"{site.url}/wopi/iop/openinapp",
        params={
            "fileid": "Shared/plan.docx",
            "endpoint": "share",
            "viewmode": "VIEW_MODE_READ_WRITE",
            "appname": "Collabora",
            "appurl": "https://editor.example.org/edit",
            "appviewurl": "https://editor.example.org/view",
            "userid": "lise@site",
            "username": "Lise Meitner",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def endpoint(site: WopiSite, answer: dict[str, Any]) -> tuple[str, dict[str, str]]:
    src = unquote(answer["app-url"].split("WOPISrc=")[1])
    return site.url + urlsplit(src).path, {
        "access_token": answer["form-parameters"]["access_token"]
    }


@pytest.mark.slow
async def test_lock_is_shared_across_sites(
    tmp_path: Path, dav_server: DavServer, dav_root: Path, redis: RedisServer
) -> None:
    (dav_root / "Shared").mkdir()
    (dav_root / "Shared" / "plan.docx").write_bytes(b"plan v1")
    share_url = f"{dav_server.url}/{dav_root.name}"
    site_a = WopiSite(
        tmp_path / "a",
        site_config(
            "a",
            redis.url,
            {
                "type": "webdav",
                "url": share_url,
                "auth": "ocm",
                "shared_secret": DAV_TOKEN,
                "site": "site-b",
            },
        ),
    )
    site_b = WopiSite(
        tmp_path / "b",
        site_config(
            "b",
            redis.url,
            {
                "type": "webdav",
                "url": share_url,
                "auth": "basic",
                "username": DAV_USER,
                "password": DAV_PASSWORD,
                "site": "site-b",
            },
        ),
    )
    site_a.start()
    site_b.start()
    try:
        async with aiohttp.ClientSession() as http:
            a_answer = await open_file(http, site_a)
            b_early = await open_file(http, site_b)  # before anyone edits: an edit session
            assert "forced-viewmode-reason" not in b_early
            a_url, a_token = endpoint(site_a, a_answer)
            b_url, b_edit = endpoint(site_b, b_early)

            async with http.post(
                a_url,
                params=a_token,
                headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "site-A-lock"},
            ) as r:
                assert r.status == 200, await r.text()

            # Site B's open now gets a read-only token, with a reason.
            b_answer = await open_file(http, site_b)
            assert b_answer["forced-viewmode-reason"]
            assert b_answer["app-url"].startswith("https://editor.example.org/view?")
            b_url2, b_view = endpoint(site_b, b_answer)
            assert b_url2 == b_url
            async with http.get(b_url, params=b_view) as r:
                info = await r.json()
                assert info["UserCanWrite"] is False

            # Site B's editor (with its earlier edit token) cannot take the lock: 409, A's id.
            async with http.post(
                b_url,
                params=b_edit,
                headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "site-B-lock"},
            ) as r:
                assert r.status == 409
                assert r.headers["X-WOPI-Lock"] == "site-A-lock"
            async with http.post(
                f"{b_url}/contents",
                params=b_edit,
                data=b"B's edit",
                headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "site-B-lock"},
            ) as r:
                assert r.status == 409
                assert r.headers["X-WOPI-Lock"] == "site-A-lock"

            # Site A saves through its lock; the bytes land on the shared storage.
            async with http.post(
                f"{a_url}/contents",
                params=a_token,
                data=b"plan v2",
                headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "site-A-lock"},
            ) as r:
                assert r.status == 200, await r.text()
            assert (dav_root / "Shared" / "plan.docx").read_bytes() == b"plan v2"

            # Site A still edits: a second open at A keeps edit mode (same-site co-editing).
            a_again = await open_file(http, site_a)
            assert "forced-viewmode-reason" not in a_again

            # Once A unlocks, B can edit.
            async with http.post(
                a_url,
                params=a_token,
                headers={"X-WOPI-Override": "UNLOCK", "X-WOPI-Lock": "site-A-lock"},
            ) as r:
                assert r.status == 200
            b_after = await open_file(http, site_b)
            assert "forced-viewmode-reason" not in b_after
            async with http.post(
                b_url,
                params=b_edit,
                headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "site-B-lock"},
            ) as r:
                assert r.status == 200
    finally:
        site_a.stop()
        site_b.stop()
