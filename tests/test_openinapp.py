"""Reva's ``/wopi/iop/openinapp`` contract (MESH.md), exactly as Reva calls it."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.support.wopi import IOP_SECRET, TOKEN_SECRET

BASE = {
    "fileid": "docs/paper.odt",
    "endpoint": "",
    "viewmode": "VIEW_MODE_READ_WRITE",
    "appname": "Collabora",
    "appurl": "https://collabora.example/browser/dist/cool.html?",
    "appviewurl": "https://collabora.example/browser/dist/cool.html?permission=readonly&",
    "userid": "0123-abcd@https://idp.example",
    "username": "Ann Example",
    "usertype": "regular",
    "folderurl": "https://cloud.example/files/docs",
}


async def _open(client, headers=None, **params):
    query = {**BASE, **params}
    query = {k: v for k, v in query.items() if v is not None}
    return await client.get(
        "/wopi/iop/openinapp",
        params=query,
        headers=headers if headers is not None else {"Authorization": f"Bearer {IOP_SECRET}"},
    )


def _setup(data_dir: Path) -> None:
    (data_dir / "docs").mkdir()
    (data_dir / "docs" / "paper.odt").write_bytes(b"odt")


async def test_edit_open(client, data_dir: Path) -> None:
    _setup(data_dir)
    resp = await _open(
        client,
        headers={"Authorization": f"Bearer {IOP_SECRET}", "TokenHeader": "reva-user-token-xyz"},
    )
    assert resp.status == 200
    body = await resp.json()
    url = urlsplit(body["app-url"])
    assert url.netloc == "collabora.example" and url.path.endswith("/cool.html")
    wopi_src = parse_qs(url.query)["WOPISrc"][0]
    assert wopi_src.startswith("http://127.0.0.1:8880/wopi/files/local.")
    params = body["form-parameters"]
    assert set(params) == {"access_token", "access_token_ttl"}
    assert "reva-user-token-xyz" not in body["app-url"]
    claims = jwt.decode(params["access_token"], TOKEN_SECRET, algorithms=["HS256"])
    assert claims["mode"] == "edit" and claims["user_name"] == "Ann Example"
    assert "reva-user-token-xyz" not in str(claims)
    ttl = int(params["access_token_ttl"])
    assert abs(ttl - (time.time() + 36000) * 1000) < 5000
    assert "forced-viewmode-reason" not in body
    info = await client.get(
        "/wopi/files/" + wopi_src.rsplit("/", 1)[1], params={"access_token": params["access_token"]}
    )
    info_body = await info.json()
    assert info_body["BaseFileName"] == "paper.odt"
    assert info_body["BreadcrumbFolderUrl"] == BASE["folderurl"]


async def test_view_modes_give_view_tokens(client, data_dir: Path) -> None:
    _setup(data_dir)
    for mode in (
        "VIEW_MODE_READ_ONLY",
        "VIEW_MODE_VIEW_ONLY",
        "VIEW_MODE_PREVIEW",
        "VIEW_MODE_EMBEDDED",
    ):
        body = await (await _open(client, viewmode=mode)).json()
        claims = jwt.decode(
            body["form-parameters"]["access_token"], TOKEN_SECRET, algorithms=["HS256"]
        )
        # VIEW_MODE_VIEW_ONLY is secure view: still read-only, with its restrictions bound in
        assert claims["mode"] == ("secureview" if mode == "VIEW_MODE_VIEW_ONLY" else "view")
        assert "permission=readonly&WOPISrc=" in body["app-url"]


async def test_file_id_survives_and_is_reused(client, data_dir: Path) -> None:
    _setup(data_dir)
    first = await (await _open(client)).json()
    second = await (await _open(client, userid="bob@idp", username="Bob")).json()
    assert first["app-url"] == second["app-url"]
    by_id = urlsplit(first["app-url"]).query.split("WOPISrc=")[1]
    file_id = by_id.rsplit("%2F", 1)[1]
    third = await (await _open(client, fileid=file_id.split(".", 1)[1])).json()
    assert third["app-url"] == first["app-url"]


async def test_guest_name(client, data_dir: Path) -> None:
    _setup(data_dir)
    body = await (await _open(client, username=None, usertype="anonymous")).json()
    claims = jwt.decode(body["form-parameters"]["access_token"], TOKEN_SECRET, algorithms=["HS256"])
    assert claims["user_name"].startswith("Guest ")


async def test_errors_are_short_sentences(client, data_dir: Path) -> None:
    _setup(data_dir)
    cases = [
        (await _open(client, headers={}), 401, "Client not authorized"),
        (
            await _open(client, headers={"Authorization": "Bearer wrong"}),
            401,
            "Client not authorized",
        ),
        (await _open(client, fileid=None), 400, "Missing parameter: fileid"),
        (await _open(client, viewmode="VIEW_MODE_FANCY"), 400, "Unknown view mode"),
        (await _open(client, fileid="docs/missing.odt"), 404, "File not found"),
        (await _open(client, appurl=None, appviewurl=None), 400, "Missing parameter: appurl"),
        (await _open(client, fileid="docs"), 404, "File not found"),
    ]
    for resp, status, text in cases:
        assert resp.status == status
        assert await resp.text() == text


async def test_an_endpoint_naming_no_storage_opens_nothing_among_several(
    aiohttp_client, make_settings, data_dir: Path, tmp_path: Path
) -> None:
    """With one storage, Reva's own id for it (not its name here) opens the file there. With
    several, the same reference could name another file on another storage, one the user was
    never granted: 404, and iop/new creates nothing in the default storage either."""
    from wopibridge.app import create_app

    _setup(data_dir)
    single = await aiohttp_client(create_app(make_settings()))
    resp = await _open(single, endpoint="1284d238-aa92$space")
    assert resp.status == 200, await resp.text()
    await single.close()

    (tmp_path / "projects").mkdir()
    settings = make_settings(
        storages={"projects": {"type": "local", "root": str(tmp_path / "projects")}},
        apps={"codimd": {"url": "http://127.0.0.1:9"}},
    )
    several = await aiohttp_client(create_app(settings))
    resp = await _open(several, endpoint="1284d238-aa92$space")
    assert resp.status == 404, await resp.text()
    assert await resp.text() == "The storage of this file is not served here"
    for endpoint in ("local", "projects$x"):  # named storages still open
        (tmp_path / "projects" / "docs").mkdir(exist_ok=True)
        (tmp_path / "projects" / "docs" / "paper.odt").write_bytes(b"p")
        assert (await _open(several, endpoint=endpoint)).status == 200
    new = await several.post(
        "/wopi/iop/new",
        params={
            "filename": "Minutes.md",
            "folder": "docs",
            "endpoint": "1284d238-aa92$space",
            "userid": "u",
            "appname": "codimd",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert (new.status, await new.text()) == (404, "The storage of this file is not served here")
    assert sorted(p.name for p in (data_dir / "docs").iterdir()) == ["paper.odt"]
