"""The WOPI surface over WebDAV and CS3 storages, through the real app.

openinapp picks the storage from ``endpoint``, the Reva token from ``TokenHeader`` travels sealed
in the access token, a storage that is down answers 503 naming it, and ``/ready`` says which.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.mesh.conftest import (
    CS3_TOKEN,
    DAV_PASSWORD,
    DAV_TOKEN,
    DAV_USER,
    DavServer,
    start_gateway,
)
from tests.support.procs import free_port
from wopibridge.app import create_app
from wopibridge.config import load_settings

TOKEN_SECRET = "mesh-token-secret-0123456789abcdefgh"
IOP_SECRET = "mesh-iop-secret-0123456789abcdef"
Client = Callable[[web.Application], Awaitable[TestClient]]


def make_app(tmp_path: Path, storages: dict[str, dict[str, Any]]) -> web.Application:
    env = {
        "WOPIBRIDGE_STORAGE_ROOT": str(tmp_path / "data"),
        "WOPIBRIDGE_SERVER_STATE_DIR": str(tmp_path / "state"),
        "WOPIBRIDGE_SECURITY_TOKEN_SECRET": TOKEN_SECRET,
        "WOPIBRIDGE_SECURITY_IOP_SECRET": IOP_SECRET,
    }
    for name, table in storages.items():
        for key, value in table.items():
            env[f"WOPIBRIDGE_STORAGES_{name.upper()}_{key.upper()}"] = str(value)
    return create_app(load_settings(None, env=env))


async def openinapp(client: TestClient, **params: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {IOP_SECRET}"}
    if "token_header" in params:
        headers["TokenHeader"] = params.pop("token_header")
    query = {
        "viewmode": "VIEW_MODE_READ_WRITE",
        "appname": "Collabora",
        "appurl": "https://editor.example.org/edit",
        "appviewurl": "https://editor.example.org/view",
        "userid": "einstein@idp",
        "username": "Albert Einstein",
        **params,
    }
    response = await client.get("/wopi/iop/openinapp", params=query, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def wopi_path(answer: dict[str, Any]) -> str:
    src = answer["app-url"].split("WOPISrc=")[1]
    return urlsplit(unquote(src)).path


async def test_webdav_session(
    tmp_path: Path, dav_server: DavServer, dav_root: Path, aiohttp_client: Client
) -> None:
    (dav_root / "Bericht ü.docx").write_bytes(b"original")
    url = f"{dav_server.url}/{dav_root.name}"
    app = make_app(
        tmp_path,
        {
            "nextcloud": {
                "type": "webdav",
                "url": url,
                "auth": "basic",
                "username": DAV_USER,
                "password": DAV_PASSWORD,
            }
        },
    )
    client = await aiohttp_client(app)
    answer = await openinapp(client, fileid="Bericht ü.docx", endpoint="nextcloud")
    path = wopi_path(answer)
    assert path.startswith("/wopi/files/nextcloud.")
    token = {"access_token": answer["form-parameters"]["access_token"]}

    info = await (await client.get(path, params=token)).json()
    assert info["BaseFileName"] == "Bericht ü.docx" and info["Size"] == 8
    assert info["UserCanWrite"] is True
    got = await client.get(f"{path}/contents", params=token)
    assert got.status == 200 and await got.read() == b"original"

    lock = {"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "lock-1"}
    assert (await client.post(path, params=token, headers=lock)).status == 200
    put = await client.post(
        f"{path}/contents",
        params=token,
        data=b"edited through WOPI",
        headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "lock-1"},
    )
    assert put.status == 200, await put.text()
    assert (dav_root / "Bericht ü.docx").read_bytes() == b"edited through WOPI"
    assert put.headers["X-WOPI-ItemVersion"] != info.get("Version")

    # RenameFile keeps the WOPISrc working (the backend id follows the rename).
    renamed = await client.post(
        path,
        params=token,
        headers={
            "X-WOPI-Override": "RENAME_FILE",
            "X-WOPI-Lock": "lock-1",
            "X-WOPI-RequestedName": "Umbenannt",
        },
    )
    assert renamed.status == 200, await renamed.text()
    assert (dav_root / "Umbenannt.docx").read_bytes() == b"edited through WOPI"
    info = await (await client.get(path, params=token)).json()
    assert info["BaseFileName"] == "Umbenannt.docx"

    ready = await client.get("/ready")
    assert ready.status == 200, await ready.text()


async def test_storage_down_answers_503_naming_it(tmp_path: Path, aiohttp_client: Client) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "doc.docx").write_bytes(b"safe")
    server = DavServer(share)
    server.start()
    app = make_app(
        tmp_path,
        {
            "farsite": {
                "type": "webdav",
                "url": server.url,
                "auth": "basic",
                "username": DAV_USER,
                "password": DAV_PASSWORD,
                "retries": 1,
                "timeout": 2,
            }
        },
    )
    client = await aiohttp_client(app)
    try:
        answer = await openinapp(client, fileid="doc.docx", endpoint="farsite")
    finally:
        server.stop()
    path = wopi_path(answer)
    token = {"access_token": answer["form-parameters"]["access_token"]}

    info = await client.get(path, params=token)
    assert info.status == 503
    assert "farsite" in await info.text()
    put = await client.post(
        f"{path}/contents", params=token, data=b"lost?", headers={"X-WOPI-Override": "PUT"}
    )
    assert put.status == 503 and "farsite" in await put.text()
    assert (share / "doc.docx").read_bytes() == b"safe"

    ready = await client.get("/ready")
    assert ready.status == 503
    body = await ready.json()
    assert "storage:farsite" in body["failing"]
    assert "storage:local" not in body["failing"]
    assert "farsite" in body["failing"]["storage:farsite"]


async def test_cs3_session_with_sealed_reva_token(
    tmp_path: Path, http: aiohttp.ClientSession, aiohttp_client: Client
) -> None:
    running = await start_gateway(tmp_path / "cs3")
    try:
        (running.gateway.root / "Home").mkdir()
        (running.gateway.root / "Home" / "notes.md").write_bytes(b"# notes")
        app = make_app(tmp_path, {"cernbox": {"type": "cs3", "gateway": running.address}})
        client = await aiohttp_client(app)

        # Reva calls with its storage id as endpoint and the opaque id as fileid.
        stat_answer = await openinapp(
            client, fileid="Home/notes.md", endpoint="cernbox", token_header=CS3_TOKEN
        )
        token = stat_answer["form-parameters"]["access_token"]
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert CS3_TOKEN not in json.dumps(claims), "the Reva token is readable in the token"
        path = wopi_path(stat_answer)
        info = await (await client.get(path, params={"access_token": token})).json()
        assert info["BaseFileName"] == "notes.md"

        opaque = next(iter(running.gateway.ids))
        answer = await openinapp(
            client, fileid=opaque, endpoint="fake-storage$fake-space", token_header=CS3_TOKEN
        )
        assert wopi_path(answer) == path
        params = {"access_token": answer["form-parameters"]["access_token"]}
        got = await client.get(f"{path}/contents", params=params)
        assert await got.read() == b"# notes"

        lock = {"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "cs3-lock"}
        assert (await client.post(path, params=params, headers=lock)).status == 200
        assert "SetLock" in running.gateway.calls, "the lock lives on the gateway"
        put = await client.post(
            f"{path}/contents",
            params=params,
            data=b"# edited",
            headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "cs3-lock"},
        )
        assert put.status == 200, await put.text()
        assert (running.gateway.root / "Home" / "notes.md").read_bytes() == b"# edited"

        # PutRelativeFile: the new file's token carries the sealed Reva token too.
        relative = await client.post(
            path,
            params=params,
            data=b"%PDF-1.7 export",
            headers={"X-WOPI-Override": "PUT_RELATIVE", "X-WOPI-SuggestedTarget": ".pdf"},
        )
        assert relative.status == 200, await relative.text()
        new_url = (await relative.json())["Url"]
        new_path, new_query = urlsplit(new_url).path, urlsplit(new_url).query
        got = await client.get(f"{new_path}/contents?{new_query}")
        assert got.status == 200 and await got.read() == b"%PDF-1.7 export"
        assert (running.gateway.root / "Home" / "notes.pdf").read_bytes() == b"%PDF-1.7 export"

        # Without the user's token, the gateway refuses.
        anonymous = await client.get(
            "/wopi/iop/openinapp",
            params={
                "fileid": "Home/notes.md",
                "endpoint": "cernbox",
                "userid": "x",
                "viewmode": "VIEW_MODE_VIEW_ONLY",
                "appurl": "https://e/",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        )
        assert anonymous.status == 401
    finally:
        await running.stop()


async def test_gateway_down_is_named(tmp_path: Path, aiohttp_client: Client) -> None:
    app = make_app(
        tmp_path,
        {
            "cernbox": {
                "type": "cs3",
                "gateway": f"127.0.0.1:{free_port()}",
                "timeout": 1,
            }
        },
    )
    client = await aiohttp_client(app)
    ready = await client.get("/ready")
    assert ready.status == 503
    assert "storage:cernbox" in (await ready.json())["failing"]
    response = await client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "x.docx",
            "endpoint": "cernbox",
            "userid": "u",
            "viewmode": "VIEW_MODE_VIEW_ONLY",
            "appurl": "https://e/",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}", "TokenHeader": CS3_TOKEN},
    )
    assert response.status == 503
    assert "cernbox" in await response.text()


pytestmark = pytest.mark.filterwarnings("error")


async def test_webdav_as_the_user(
    tmp_path: Path, dav_server: DavServer, dav_root: Path, aiohttp_client: Client
) -> None:
    """``auth = "user"``: the user's own token (TokenHeader) is the WebDAV credential."""
    (dav_root / "mine.docx").write_bytes(b"mine")
    app = make_app(
        tmp_path,
        {"home": {"type": "webdav", "url": f"{dav_server.url}/{dav_root.name}", "auth": "user"}},
    )
    client = await aiohttp_client(app)
    assert (await client.get("/ready")).status == 200
    answer = await openinapp(client, fileid="mine.docx", endpoint="home", token_header=DAV_TOKEN)
    path = wopi_path(answer)
    token = {"access_token": answer["form-parameters"]["access_token"]}
    assert DAV_TOKEN not in token["access_token"]
    got = await client.get(f"{path}/contents", params=token)
    assert await got.read() == b"mine"
    refused = await client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "mine.docx",
            "endpoint": "home",
            "userid": "u",
            "viewmode": "VIEW_MODE_VIEW_ONLY",
            "appurl": "https://e/",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}", "TokenHeader": "wrong-token"},
    )
    assert refused.status == 401
