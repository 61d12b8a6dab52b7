"""Secure view and embedded view over HTTP, against the editor fakes.

Each editor reads its own part of the secure-view properties; the lists below are what each
one documents or reads (Collabora: ``EDITORS.md``, from ``wsd/wopi/CheckFileInfo.cpp``;
OnlyOffice: ``DocService/sources/wopiClient.js``, which turns ``ReadOnly``/``UserCanWrite``,
``DisablePrint``/``HidePrintOption`` and ``CopyPasteRestrictions`` into editor permissions;
Microsoft: the CheckFileInfo reference, whose names for this are ``RestrictedWebViewOnly``,
``ProtectInClient``, ``DisablePrint``, ``CopyPasteRestrictions`` and
``DisableBrowserCachingOfUserContent``). Every one of them must be restrictive in secure view
and none of them set in an ordinary view.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from wopibridge.apps import keys as apps_keys

from .conftest import IOP, signed
from .fakes import FakeCollabora, FakeMicrosoft, FakeOnlyOffice, ProofSigner

#: property → its restrictive value, per editor (see the module docstring for the sources).
READS: dict[str, dict[str, Any]] = {
    "collabora": {
        "UserCanWrite": False,
        "UserCanNotWriteRelative": True,
        "UserCanRename": False,
        "DisablePrint": True,
        "DisableExport": True,
        "DisableCopy": True,
        "HidePrintOption": True,
        "HideSaveOption": True,
        "HideExportOption": True,
        "DownloadAsPostMessage": False,
        "EnableInsertRemoteImage": False,
    },
    "onlyoffice": {
        "ReadOnly": True,
        "UserCanWrite": False,
        "UserCanNotWriteRelative": True,
        "UserCanRename": False,
        "UserCanReview": False,
        "DisablePrint": True,
        "HidePrintOption": True,
        "CopyPasteRestrictions": "BlockAll",
    },
    "msoffice": {
        "ReadOnly": True,
        "UserCanWrite": False,
        "UserCanNotWriteRelative": True,
        "UserCanRename": False,
        "DisablePrint": True,
        "CopyPasteRestrictions": "BlockAll",
        "RestrictedWebViewOnly": True,
        "ProtectInClient": True,
        "DisableBrowserCachingOfUserContent": True,
    },
}
#: Properties that only secure view sets (absent from an ordinary view's answer).
SECURE_ONLY = {
    "DisablePrint",
    "DisableExport",
    "DisableCopy",
    "HidePrintOption",
    "HideSaveOption",
    "HideExportOption",
    "CopyPasteRestrictions",
    "DisableBrowserCachingOfUserContent",
    "RestrictedWebViewOnly",
    "ProtectInClient",
    "UserCanReview",
    "WatermarkText",
}
EDITORS = [
    ("collabora", FakeCollabora, "report.odt"),
    ("onlyoffice", FakeOnlyOffice, "report.docx"),
    ("msoffice", FakeMicrosoft, "report.docx"),
]


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize(("app", "cls", "name"), EDITORS)
async def test_secure_view_properties_per_editor(bridge, signer, app, cls, name):
    (bridge.root / name).write_bytes(b"secret content")
    editor, opened = await bridge.editor(cls, name, app, signer, mode="secureview")
    assert opened["mode"] == "secureview"
    assert claims(opened["form_parameters"]["access_token"])["mode"] == "secureview"
    info = await editor.check_file_info()
    for prop, value in READS[app].items():
        assert info.get(prop) == value, (app, prop, info.get(prop))
    if app == "collabora":  # the only one of the three that draws WOPI's watermark
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert info["WatermarkText"] == f"Ada Lovelace {today}"
    else:
        assert "WatermarkText" not in info
    # the editor itself still gets the bytes: its requests are signed
    assert await editor.get_file() == b"secret content"

    viewer, _ = await bridge.editor(cls, name, app, signer, mode="view")
    plain = await viewer.check_file_info()
    assert not SECURE_ONLY & set(plain), (app, SECURE_ONLY & set(plain))
    assert plain["UserCanWrite"] is False


async def test_watermark_template_from_the_app_table(bridge, signer):
    (bridge.root / "plan.odt").write_bytes(b"p")
    collabora = bridge.app[apps_keys.EDITORS].get("collabora")
    object.__setattr__(collabora.config, "watermark_text", "{user} <{email}> {file} {date} {x}")
    opened = await bridge.open(
        "plan.odt",
        "collabora",
        "secureview",
        user={"id": "ada@idp", "name": "Ada", "email": "ada@example.org"},
    )
    editor = FakeCollabora(
        bridge.http, opened["app_url"], opened["form_parameters"]["access_token"], signer
    )
    info = await editor.check_file_info()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert info["WatermarkText"] == f"Ada <ada@example.org> plan.odt {today} {{x}}"


async def test_secure_get_file_needs_the_editors_proof(bridge, signer):
    (bridge.root / "pay.docx").write_bytes(b"salaries")
    editor, opened = await bridge.editor(FakeOnlyOffice, "pay.docx", "onlyoffice", signer, "view")
    token = opened["form_parameters"]["access_token"]
    # an ordinary view token: the browser may fetch the bytes without a proof
    async with bridge.http.get(f"{editor.wopisrc}/contents?access_token={token}") as answer:
        assert answer.status == 200
    editor, opened = await bridge.editor(
        FakeOnlyOffice, "pay.docx", "onlyoffice", signer, "secureview"
    )
    token = opened["form_parameters"]["access_token"]
    async with bridge.http.get(f"{editor.wopisrc}/contents?access_token={token}") as answer:
        assert answer.status == 401
        assert "only the editor" in await answer.text()
    # CheckFileInfo without a proof is fine: it gives no content
    async with bridge.http.get(f"{editor.wopisrc}?access_token={token}") as answer:
        assert answer.status == 200
    assert await editor.get_file() == b"salaries"
    # signed by a key no editor publishes: refused as a failed proof
    forger = FakeOnlyOffice(bridge.http, opened["app_url"], token, ProofSigner())
    assert (await forger.call("GET", "/contents")).status == 500


async def test_secure_token_is_only_good_for_its_own_app(bridge, signer, discovery_server):
    """OnlyOffice gets a key of its own; a Collabora secure-view token presented by
    OnlyOffice (signed with OnlyOffice's key) is refused, and so is one presented unsigned."""
    other = ProofSigner()
    discovery_server.docs["onlyoffice"] = signed(discovery_server.docs["onlyoffice"], other)
    await bridge.app[apps_keys.DISCOVERY].get("onlyoffice", force=True)
    (bridge.root / "memo.docx").write_bytes(b"memo")
    opened = await bridge.open("memo.docx", "collabora", "secureview")
    token = opened["form_parameters"]["access_token"]
    assert claims(token)["app"] == "collabora"
    as_onlyoffice = FakeOnlyOffice(bridge.http, opened["app_url"], token, other)
    assert (await as_onlyoffice.call("GET", "/contents")).status == 500
    assert (await as_onlyoffice.call("GET")).status == 500
    as_collabora = FakeCollabora(bridge.http, opened["app_url"], token, signer)
    assert await as_collabora.get_file() == b"memo"
    # and OnlyOffice with its own token and its own key works
    own = await bridge.open("memo.docx", "onlyoffice", "secureview")
    mine = FakeOnlyOffice(
        bridge.http, own["app_url"], own["form_parameters"]["access_token"], other
    )
    assert await mine.get_file() == b"memo"


async def test_upgrading_a_secure_view_session_is_refused(bridge, signer):
    (bridge.root / "board.odt").write_bytes(b"minutes")
    (bridge.root / "other.odt").write_bytes(b"other")
    editor, opened = await bridge.editor(
        FakeCollabora, "board.odt", "collabora", signer, "secureview"
    )
    token = opened["form_parameters"]["access_token"]
    # the mode in the URL: extra query parameters change nothing
    tampered = f"{editor.wopisrc}?access_token={token}&mode=edit&permission=edit"
    answer = await editor.call("GET", url=tampered)
    assert answer.status == 200
    assert answer.json()["UserCanWrite"] is False
    assert answer.json()["DisableExport"] is True
    # the same token posted into the edit action's URL (a changed form): still secure view
    edit_url = opened["app_url"].replace("permission=readonly", "permission=edit")
    again = FakeCollabora(bridge.http, edit_url, token, signer)
    assert (await again.check_file_info())["HideSaveOption"] is True
    # nothing that writes, and no Save As (which would mint an edit token for the copy)
    assert (await editor.override("LOCK", **{"X-WOPI-Lock": "L"})).status == 401
    assert (await editor.put_file(b"changed", **{"X-WOPI-Lock": "L"})).status == 401
    put_relative = await editor.override(
        "PUT_RELATIVE", **{"X-WOPI-SuggestedTarget": ".odt", "X-WOPI-Size": "1"}
    )
    assert put_relative.status == 401
    assert (await editor.override("RENAME_FILE", **{"X-WOPI-RequestedName": "x"})).status == 401
    assert (await editor.override("DELETE")).status == 401
    # the token reused on another file
    other_id = (await bridge.open("other.odt", "collabora", "view"))["file_id"]
    other_src = editor.wopisrc.rsplit("/", 1)[0] + "/" + other_id
    assert (await editor.call("GET", url=f"{other_src}?access_token={token}")).status == 404
    assert (await editor.call("GET", url=f"{other_src}/contents?access_token={token}")).status == (
        404
    )
    # a tampered host-page link
    host = opened["host_url"]
    async with bridge.http.get(host[:-4] + ("AAAA" if host[-4:] != "AAAA" else "BBBB")) as page:
        assert page.status == 404
    assert (bridge.root / "board.odt").read_bytes() == b"minutes"


async def test_openinapp_view_only_is_secure_view(bridge, signer):
    (bridge.root / "paper.docx").write_bytes(b"p")
    query = {
        "fileid": "paper.docx",
        "viewmode": "VIEW_MODE_VIEW_ONLY",
        "userid": "ann@idp",
        "username": "Ann Example",
        "email": "ann@example.org",
        "appname": "Collabora",
        "appurl": "https://cool.example/cool.html?",
        "appviewurl": "https://cool.example/cool.html?permission=readonly&",
    }
    async with bridge.http.get(
        f"{bridge.base}/wopi/iop/openinapp",
        params=query,
        headers={"Authorization": f"Bearer {IOP}"},
    ) as response:
        assert response.status == 200
        body = await response.json()
    assert body["app-url"].startswith("https://cool.example/cool.html?permission=readonly&")
    token = body["form-parameters"]["access_token"]
    assert claims(token)["mode"] == "secureview"
    editor = FakeCollabora(bridge.http, body["app-url"], token, signer)
    info = await editor.check_file_info()
    assert info["DisableCopy"] is True
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert info["WatermarkText"] == f"Ann Example ann@example.org {today}"


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        ("onlyoffice", "deck.docx", "https://test.server.prv/hosting/wopi/word/view?embed=1&"),
        (
            "msoffice",
            "deck.docx",
            "https://FFC-word-view.officeapps.live.com/wv/wordviewerframe.aspx?",
        ),
        (
            "collabora",
            "deck.odt",
            "http://collabora.test:9980/browser/",
        ),  # no embedview: falls back
    ],
)
async def test_embedded_view_per_editor(bridge, signer, app, name, expected):
    (bridge.root / name).write_bytes(b"e")
    opened = await bridge.open(name, app, "embedview")
    assert opened["app_url"].startswith(expected), opened["app_url"]
    assert opened["mode"] == "view"
    token = opened["form_parameters"]["access_token"]
    assert claims(token)["mode"] == "view"
    if app == "msoffice":  # Microsoft's embedview action is its own frame
        discovery = bridge.app[apps_keys.DISCOVERY].peek("msoffice")
        assert discovery is not None
        embed = discovery.action_for(".docx", "embedview")
        assert embed is not None
        assert urlsplit(opened["app_url"]).path == urlsplit(embed.urlsrc).path
    cls = {"onlyoffice": FakeOnlyOffice, "msoffice": FakeMicrosoft}.get(app, FakeCollabora)
    editor = cls(bridge.http, opened["app_url"], token, signer)
    info = await editor.check_file_info()
    assert info["UserCanWrite"] is False
    assert (await editor.put_file(b"x")).status == 401


async def test_openinapp_embedded_uses_the_embedview_action(bridge):
    (bridge.root / "deck.docx").write_bytes(b"e")
    query = {
        "fileid": "deck.docx",
        "viewmode": "VIEW_MODE_EMBEDDED",
        "userid": "ann@idp",
        "appname": "OnlyOffice",
        "appviewurl": "https://oo.example/view?",
    }
    async with bridge.http.get(
        f"{bridge.base}/wopi/iop/openinapp",
        params=query,
        headers={"Authorization": f"Bearer {IOP}"},
    ) as response:
        assert response.status == 200
        body = await response.json()
    url = urlsplit(body["app-url"])
    assert (url.netloc, url.path) == ("test.server.prv", "/hosting/wopi/word/view")
    assert parse_qs(url.query)["embed"] == ["1", "true"]
    assert claims(body["form-parameters"]["access_token"])["mode"] == "view"
