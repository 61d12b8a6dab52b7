"""What the editors add to Reva's ``/wopi/iop/openinapp``: the editor URL from discovery when
Reva sends no ``appurl``, and read-only opening when a desktop office holds the file."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt

from .conftest import IOP

QUERY = {
    "fileid": "paper.docx",
    "viewmode": "VIEW_MODE_READ_WRITE",
    "userid": "ann@idp",
    "username": "Ann Example",
    "usertype": "regular",
}


async def _open(bridge, **params):
    query = {k: v for k, v in {**QUERY, **params}.items() if v is not None}
    async with bridge.http.get(
        f"{bridge.base}/wopi/iop/openinapp",
        params=query,
        headers={"Authorization": f"Bearer {IOP}"},
    ) as response:
        return (
            response.status,
            await response.text(),
            (await response.json() if response.status == 200 else None),
        )


async def test_app_url_from_discovery_when_reva_sends_none(bridge):
    (bridge.root / "paper.docx").write_bytes(b"p")
    status, _, body = await _open(bridge, appname="OnlyOffice", lang="de-DE")
    assert status == 200
    url = urlsplit(body["app-url"])
    assert (url.netloc, url.path) == ("test.server.prv", "/hosting/wopi/word/edit")
    query = parse_qs(url.query)
    assert query["ui"] == ["de-DE"]
    assert query["wopisrc"][0].startswith(f"{bridge.base}/wopi/files/local.")
    status, _, body = await _open(bridge, appname="MsOffice", viewmode="VIEW_MODE_READ_ONLY")
    assert status == 200
    assert "/wv/wordviewerframe.aspx?" in body["app-url"]
    # Reva's appurl still wins when given
    status, _, body = await _open(
        bridge, appname="Collabora", appurl="https://cool.example/cool.html?"
    )
    assert body["app-url"].startswith("https://cool.example/cool.html?WOPISrc=")
    # without appurl and without a configured app: the foundation's answer stands
    status, text, _ = await _open(bridge, appname="Wordstar")
    assert status == 400 and text == "Missing parameter: appurl"


async def test_unreachable_editor_is_a_503_sentence(bridge):
    (bridge.root / "paper.docx").write_bytes(b"p")
    status, text, _ = await _open(bridge, appname="down")
    assert status == 503
    assert text.startswith("The down editor is not available right now")


async def test_desktop_lock_forces_view_mode(bridge):
    (bridge.root / "paper.docx").write_bytes(b"p")
    (bridge.root / ".~lock.paper.docx#").write_bytes(b"Bo Desk,bo,BO-PC,25.11.2026 05:00,x;")
    status, _, body = await _open(
        bridge,
        appname="Collabora",
        appurl="https://cool.example/cool.html?",
        appviewurl="https://cool.example/cool.html?permission=readonly&",
    )
    assert status == 200
    assert body["forced-viewmode-reason"] == (
        "The file is open in LibreOffice by Bo Desk; it opens read-only"
    )
    assert body["app-url"].startswith("https://cool.example/cool.html?permission=readonly&")
    claims = jwt.decode(
        body["form-parameters"]["access_token"], options={"verify_signature": False}
    )
    assert claims["mode"] == "view"
    # a view request is not marked as downgraded
    status, _, body = await _open(
        bridge,
        appname="Collabora",
        appurl="https://cool.example/cool.html?",
        viewmode="VIEW_MODE_VIEW_ONLY",
    )
    assert "forced-viewmode-reason" not in body
