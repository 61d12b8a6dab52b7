"""Scripted editor sessions against a running wopibridge (local storage, memory locks).

The editors are fakes (see :mod:`tests.editors.fakes`): they replay each editor's documented
request sequence against the real HTTP surface, opened through ``POST /wopi/open`` with their
discovery served from the real discovery documents (with the test's proof key in them).
"""

from __future__ import annotations

from tests.support.waiting import eventually
from wopibridge.security.keys import TOKENS

from .conftest import IOP
from .fakes import FakeCollabora, FakeMicrosoft, FakeOnlyOffice


async def test_collabora_session(bridge, signer):
    (bridge.root / "q3.odt").write_bytes(b"v0")
    cool, opened = await bridge.editor(FakeCollabora, "q3.odt", "collabora", signer)
    assert opened["app_url"].startswith("http://collabora.test:9980/browser/61cf2b4/cool.html?")
    info = await cool.open()
    assert info["BaseFileName"] == "q3.odt"
    assert info["UserFriendlyName"] == "Ada Lovelace"
    assert info["PostMessageOrigin"] == bridge.base
    assert info["SupportsLocks"] is True and info["UserCanWrite"] is True
    lock_file = bridge.root / ".~lock.q3.odt#"
    await eventually(lock_file.exists)
    assert lock_file.read_bytes().startswith(b"Ada Lovelace,wopibridge")
    # LOCK again is Collabora's refresh
    assert (await cool.refresh()).status == 200
    # saves round-trip LastModifiedTime from the PutFile answer
    for n in range(1, 4):
        answer = await cool.save(b"v%d" % n)
        assert answer.status == 200, answer
        assert answer.json()["LastModifiedTime"] == cool.last_modified
    assert (bridge.root / "q3.odt").read_bytes() == b"v3"
    # someone changes the file in storage: the 1010 dialog, nothing written
    (bridge.root / "q3.odt").write_bytes(b"desktop")
    answer = await cool.save(b"v4")
    assert answer.status == 409
    assert answer.json() == {"COOLStatusCode": 1010, "LOOLStatusCode": 1010}
    assert (bridge.root / "q3.odt").read_bytes() == b"desktop"
    # the user picks "Overwrite": the same save without the timestamp lands
    answer = await cool.save(b"v4", overwrite=True)
    assert answer.status == 200
    assert (bridge.root / "q3.odt").read_bytes() == b"v4"
    # Save As: UTF-7 suggested target, size, no lock header
    answer = await cool.call(
        "POST",
        "",
        {
            "X-WOPI-Override": "PUT_RELATIVE",
            "X-WOPI-SuggestedTarget": "+AMk-t+AOk-.odt",
            "X-WOPI-Size": "2",
        },
        b"sa",
    )
    assert answer.status == 200, answer
    assert answer.json()["Name"] == "\u00c9t\u00e9.odt"
    assert (bridge.root / "\u00c9t\u00e9.odt").read_bytes() == b"sa"
    # rename keeps the session: same WOPISrc, new name
    answer = await cool.override(
        "RENAME_FILE", **{"X-WOPI-Lock": cool.lock_id, "X-WOPI-RequestedName": "q3 final"}
    )
    assert answer.status == 200 and answer.json()["Name"] == "q3 final"
    assert (await cool.check_file_info())["BaseFileName"] == "q3 final.odt"
    answer = await cool.save(b"v5", exit_save=True, autosave=False)
    assert answer.status == 200
    assert (bridge.root / "q3 final.odt").read_bytes() == b"v5"
    assert (await cool.close()).status == 200


async def test_onlyoffice_session(bridge, signer):
    (bridge.root / "plan.docx").write_bytes(b"d0")
    oo, opened = await bridge.editor(FakeOnlyOffice, "plan.docx", "onlyoffice", signer)
    assert "/hosting/wopi/word/edit?" in opened["app_url"]
    info = await oo.open()
    version = info["Version"]
    assert (await oo.refresh()).status == 200
    answer = await oo.save(b"d1")
    assert answer.status == 200, answer
    assert "LastModifiedTime" in answer.json()
    # OnlyOffice caches by Version: it must change on every save
    info2 = await oo.check_file_info()
    assert info2["Version"] != version
    # another session cannot take the docId lock with a different id
    other, _ = await bridge.editor(FakeOnlyOffice, "plan.docx", "onlyoffice", signer)
    answer = await other.override("LOCK", **{"X-WOPI-Lock": "other-doc"})
    assert answer.status == 409 and answer.headers["X-WOPI-Lock"] == oo.lock_id
    # Save As with conversion
    answer = await oo.call(
        "POST",
        "",
        {
            "X-WOPI-Override": "PUT_RELATIVE",
            "X-WOPI-SuggestedTarget": ".pdf",
            "X-WOPI-FileConversion": "true",
            "X-WOPI-Size": "3",
        },
        b"pdf",
    )
    assert answer.status == 200, answer
    assert answer.json()["Name"] == "plan.pdf"
    # the X-LOOL family carries the 1010 protocol too
    stale = await oo.put_file(
        b"stale", **{"X-WOPI-Lock": oo.lock_id, "X-LOOL-WOPI-Timestamp": info["LastModifiedTime"]}
    )
    assert stale.status == 409
    assert stale.json() == {"COOLStatusCode": 1010, "LOOLStatusCode": 1010}
    assert (bridge.root / "plan.docx").read_bytes() == b"d1"
    answer = await oo.save(b"d2", exit_save=True)
    assert answer.status == 200
    assert (await oo.close()).status == 200
    assert (bridge.root / "plan.docx").read_bytes() == b"d2"


async def test_onlyoffice_new_empty_file(bridge, signer):
    (bridge.root / "new.docx").write_bytes(b"")
    opened = await bridge.open("new.docx", "onlyoffice")
    assert "/hosting/wopi/word/edit?" in opened["app_url"]  # the editnew action
    ms = await bridge.open("new.docx", "msoffice")
    assert "new=1" in ms["app_url"]


async def test_microsoft_validator_style_flow(bridge, signer):
    (bridge.root / "memo.docx").write_bytes(b"m0")
    ms, _ = await bridge.editor(FakeMicrosoft, "memo.docx", "msoffice", signer)
    info = await ms.check_file_info()
    assert info["ClosePostMessage"] is True
    lock = {"X-WOPI-Lock": ms.lock_id}
    assert (await ms.override("LOCK", **lock)).status == 200
    answer = await ms.override("GET_LOCK")
    assert answer.headers["X-WOPI-Lock"] == ms.lock_id
    assert (await ms.override("REFRESH_LOCK", **lock)).status == 200
    answer = await ms.override(
        "LOCK", **{"X-WOPI-Lock": ms.new_lock_id, "X-WOPI-OldLock": ms.lock_id}
    )
    assert answer.status == 200
    answer = await ms.put_file(b"m1", **{"X-WOPI-Lock": ms.lock_id})
    assert answer.status == 409 and answer.headers["X-WOPI-Lock"] == ms.new_lock_id
    assert (bridge.root / "memo.docx").read_bytes() == b"m0"
    answer = await ms.put_file(b"m1", **{"X-WOPI-Lock": ms.new_lock_id})
    assert answer.status == 200
    assert (await ms.override("UNLOCK", **{"X-WOPI-Lock": ms.new_lock_id})).status == 200
    answer = await ms.put_file(b"m2")
    assert answer.status == 409 and answer.headers["X-WOPI-Lock"] == ""


async def test_desktop_lock_opens_read_only(bridge, signer):
    (bridge.root / "budget.xlsx").write_bytes(b"x")
    owner = b"\x0cGrace Hopper".ljust(54, b"\x00")
    (bridge.root / "~$budget.xlsx").write_bytes(owner)
    opened = await bridge.open("budget.xlsx", "msoffice")
    assert opened["mode"] == "view"
    assert opened["forced_viewmode_reason"] == (
        "The file is open in Microsoft Office by Grace Hopper; it opens read-only"
    )
    assert "/x/_layouts/xlviewerinternal.aspx?" in opened["app_url"]


async def test_unreachable_editor_answers_503(bridge, discovery_server):
    (bridge.root / "x.docx").write_bytes(b"x")
    auth = {"Authorization": f"Bearer {IOP}"}
    body = {"path": "x.docx", "app": "down", "user": {"id": "u"}}
    async with bridge.http.post(f"{bridge.base}/wopi/open", json=body, headers=auth) as response:
        assert response.status == 503
        text = await response.text()
        assert text.startswith("The down editor is not available right now")
    # the others keep working; discovery lost later keeps serving the cached document
    discovery_server.failing.add("onlyoffice")
    assert (await bridge.open("x.docx", "onlyoffice"))["app"] == "onlyoffice"
    async with bridge.http.get(f"{bridge.base}/ready") as response:
        text = await response.text()
        assert "down" in text and "HTTP 503" in text


async def test_open_api_errors(bridge):
    (bridge.root / "a.odt").write_bytes(b"a")
    url = f"{bridge.base}/wopi/open"
    async with bridge.http.post(url, json={"path": "a.odt"}) as response:
        assert response.status == 401
    auth = {"Authorization": f"Bearer {IOP}"}
    cases = [
        ({"path": "a.odt", "user": {"id": "u"}, "mode": "write"}, 400),
        ({"path": "a.odt", "user": {}}, 400),
        ({"path": "a.odt", "file_id": "x", "user": {"id": "u"}}, 400),
        ({"path": "missing.odt", "user": {"id": "u"}}, 404),
        ({"path": "a.odt", "user": {"id": "u"}, "app": "wordstar"}, 404),
        ({"path": "a.odt", "user": {"id": "u"}, "close_url": "javascript:alert(1)"}, 400),
    ]
    for body, status in cases:
        async with bridge.http.post(url, json=body, headers=auth) as response:
            assert response.status == status, (body, await response.text())
            assert "Traceback" not in await response.text()
    async with bridge.http.post(url, data=b"{", headers=auth) as response:
        assert response.status == 400


async def test_open_chooses_the_app_by_extension(bridge):
    for name, app in (("a.odt", "collabora"), ("b.djvu", "onlyoffice"), ("c.one", "msoffice")):
        (bridge.root / name).write_bytes(b"x")
        opened = await bridge.open(name, "", "view")
        assert opened["app"] == app, name
    # view-only formats open read-only even when an edit was asked for
    (bridge.root / "d.pdf").write_bytes(b"%PDF")
    opened = await bridge.open("d.pdf", "onlyoffice", "edit")
    assert opened["mode"] == "view"
    assert opened["forced_viewmode_reason"] == "onlyoffice can only view .pdf files"


async def test_lock_files_only_for_office_editors(bridge, signer):
    """Lock files announce web editing sessions of the configured office editors; tokens of
    other apps (or none) lock without touching the folder."""
    (bridge.root / "n.odt").write_bytes(b"n")
    opened = await bridge.open("n.odt", "collabora")
    raw, _ = bridge.app[TOKENS].mint(
        file_id=opened["file_id"], user_id="u", user_name="U", app="", mode="edit"
    )
    plain = FakeMicrosoft(bridge.http, opened["app_url"], raw, signer)
    assert (await plain.override("LOCK", **{"X-WOPI-Lock": "L"})).status == 200
    assert sorted(p.name for p in bridge.root.iterdir() if p.name != ".wopibridge") == ["n.odt"]
    assert (await plain.override("UNLOCK", **{"X-WOPI-Lock": "L"})).status == 200
