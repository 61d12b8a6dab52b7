"""WebDAV as real servers speak it, on wsgidav and on Debian's Apache with ``mod_dav_fs``.

Apache marks an ETag weak (``W/"…"``) for about a second after a change, and compares
``If-Match`` strongly: a host that sends the weak ETag's value as ``If-Match`` gets 412 for
every read and save in that second. Each flow below is what an editor does at once after a
change: GetFile, Lock, a save with the timestamp it was given, and another 0.3 s later with
the timestamp that save answered. All must be 200, with no conflict copy and nothing kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.editors.conftest import fixture_bytes
from tests.mesh.apachedav import ApacheDav
from tests.mesh.conftest import DAV_PASSWORD, DAV_USER, DavServer, basic_auth
from tests.mesh.test_app_mesh import IOP_SECRET, TOKEN_SECRET, Client, openinapp, wopi_path
from wopibridge.app import create_app
from wopibridge.config import load_settings
from wopibridge.errors import FileExists
from wopibridge.storage.webdav import WebDavConfig, WebDavStorage

Server = DavServer | ApacheDav


#: wsgidav as it comes, Apache, and wsgidav with one quirk of servers met in the field each
SERVERS = ["wsgidav", "apache", "no-etags", "ignore-preconditions", "etag-on-lock"]


@pytest.fixture(scope="module", params=SERVERS)
def real_dav(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp(f"real-{request.param}") / "share"
    root.mkdir()
    server: Server
    if request.param == "apache":
        server = ApacheDav(root, DAV_USER, DAV_PASSWORD)
    else:
        quirks = () if request.param == "wsgidav" else (request.param,)
        server = DavServer(root, quirks=quirks)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def discovery(aiohttp_server: Any) -> AsyncIterator[str]:
    body = fixture_bytes("collabora-runtime.xml")

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/xml")

    app = web.Application()
    app.router.add_get("/hosting/discovery", serve)
    server = await aiohttp_server(app, host="127.0.0.1")
    yield str(server.make_url("/hosting/discovery"))


@pytest.fixture
async def client(
    real_dav: Server, tmp_path: Path, discovery: str, aiohttp_client: Client
) -> TestClient:
    folder = real_dav.root / tmp_path.name
    folder.mkdir()
    env = {
        "WOPIBRIDGE_STORAGE_ROOT": str(tmp_path / "data"),
        "WOPIBRIDGE_SERVER_STATE_DIR": str(tmp_path / "state"),
        "WOPIBRIDGE_SECURITY_TOKEN_SECRET": TOKEN_SECRET,
        "WOPIBRIDGE_SECURITY_IOP_SECRET": IOP_SECRET,
        "WOPIBRIDGE_APPS_COLLABORA_DISCOVERY_URL": discovery,
    }
    for key, value in real_dav.table(url=f"{real_dav.url}/{folder.name}").items():
        env[f"WOPIBRIDGE_STORAGES_DAV_{key.upper()}"] = str(value)
    return await aiohttp_client(create_app(load_settings(None, env=env)))


def _folder(real_dav: Server, tmp_path: Path) -> Path:
    return real_dav.root / tmp_path.name


async def _edit_at_once(client: TestClient, path: str, token: str, folder: Path) -> None:
    """GetFile, Lock, a save at once with the editor's timestamp, another 0.3 s later."""
    params = {"access_token": token}
    info = await client.get(path, params=params)
    assert info.status == 200, await info.text()
    stamp = (await info.json())["LastModifiedTime"]
    got = await client.get(f"{path}/contents", params=params)
    assert got.status == 200, await got.text()
    lock = {"X-WOPI-Lock": "editor-lock"}
    locked = await client.post(path, params=params, headers={"X-WOPI-Override": "LOCK", **lock})
    assert locked.status == 200, await locked.text()
    for body in (b"first save", b"second save"):
        saved = await client.post(
            f"{path}/contents",
            params=params,
            data=body,
            headers={"X-WOPI-Override": "PUT", "X-COOL-WOPI-Timestamp": stamp, **lock},
        )
        assert saved.status == 200, (body, await saved.text())
        stamp = (await saved.json())["LastModifiedTime"]
        await asyncio.sleep(0.3)
    unlocked = await client.post(path, params=params, headers={"X-WOPI-Override": "UNLOCK", **lock})
    assert unlocked.status == 200
    assert not [p.name for p in folder.iterdir() if "(conflict " in p.name]


async def _plain_put(server: Server, name: str, body: bytes) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{server.url}/{name}",
            data=body,
            headers={"Authorization": basic_auth()},
        ) as response,
    ):
        assert response.status in (201, 204), response.status


async def test_changed_over_webdav_then_saved_at_once(
    client: TestClient, real_dav: Server, tmp_path: Path
) -> None:
    folder = _folder(real_dav, tmp_path)
    (folder / "report.odt").write_bytes(b"v0")
    await _plain_put(real_dav, f"{folder.name}/report.odt", b"changed over WebDAV")
    answer = await openinapp(client, fileid="report.odt", endpoint="dav")
    await _edit_at_once(
        client, wopi_path(answer), answer["form-parameters"]["access_token"], folder
    )
    assert (folder / "report.odt").read_bytes() == b"second save"
    assert not list((tmp_path / "state" / "recovery").glob("*"))


async def _new_memo(client: TestClient) -> dict[str, Any]:
    """``POST /wopi/iop/new`` for ``Memo.odt`` on the WebDAV storage, as Reva would."""
    response = await client.post(
        "/wopi/iop/new",
        params={
            "filename": "Memo.odt",
            "userid": "ann@idp",
            "appname": "Collabora",
            "endpoint": "dav",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_new_document_then_saved_at_once(
    client: TestClient, real_dav: Server, tmp_path: Path
) -> None:
    folder = _folder(real_dav, tmp_path)
    body = await _new_memo(client)
    src = unquote(body["app-url"].split("WOPISrc=")[1].split("&")[0])
    await _edit_at_once(client, urlsplit(src).path, body["form-parameters"]["access_token"], folder)
    assert (folder / "Memo.odt").read_bytes() == b"second save"


async def test_renamed_then_saved_at_once(
    client: TestClient, real_dav: Server, tmp_path: Path
) -> None:
    folder = _folder(real_dav, tmp_path)
    (folder / "draft.odt").write_bytes(b"v0")
    answer = await openinapp(client, fileid="draft.odt", endpoint="dav")
    path, token = wopi_path(answer), answer["form-parameters"]["access_token"]
    renamed = await client.post(
        path,
        params={"access_token": token},
        headers={"X-WOPI-Override": "RENAME_FILE", "X-WOPI-RequestedName": "final"},
    )
    assert renamed.status == 200, await renamed.text()
    await _edit_at_once(client, path, token, folder)
    assert (folder / "final.odt").read_bytes() == b"second save"
    assert not (folder / "draft.odt").exists()


async def test_a_new_document_never_overwrites(
    client: TestClient, real_dav: Server, tmp_path: Path
) -> None:
    """Even on a server that ignores ``If-None-Match``, a taken name is never written over."""
    folder = _folder(real_dav, tmp_path)
    (folder / "Memo.odt").write_bytes(b"taken")
    assert (await _new_memo(client))["name"] == "Memo (1).odt"
    assert (folder / "Memo.odt").read_bytes() == b"taken"
    assert sorted(p.name for p in folder.iterdir()) == ["Memo (1).odt", "Memo.odt"]


async def test_create_over_a_taken_name_is_refused(
    real_dav: Server, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The storage's create, raced by a file that appeared after any look: ``FileExists``, and
    the other file's bytes stay (servers ignoring ``If-None-Match`` included)."""
    folder = _folder(real_dav, tmp_path)
    folder.mkdir()
    (folder / "taken.odt").write_bytes(b"someone else's")
    table = real_dav.table(url=f"{real_dav.url}/{folder.name}")
    storage = WebDavStorage("dav", WebDavConfig.from_table("dav", table), http)

    async def body() -> AsyncIterator[bytes]:
        yield b"ours"

    with pytest.raises(FileExists):
        await storage.create_in("", "taken.odt", body())
    sibling = await storage.resolve("taken.odt")
    with pytest.raises(FileExists):
        await storage.create(sibling.file_id, "taken.odt", body())
    assert (folder / "taken.odt").read_bytes() == b"someone else's"
    assert sorted(p.name for p in folder.iterdir()) == ["taken.odt"], "no temporary left"
    created = await storage.create_in("", "fresh.odt", body())
    assert created.name == "fresh.odt" and (folder / "fresh.odt").read_bytes() == b"ours"
