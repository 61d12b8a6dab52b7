"""Whole editor sessions with the fakes (:mod:`tests.editors.fake_collabora`,
:mod:`tests.editors.fake_onlyoffice`) against a running wopibridge on the real local storage.

Above all: no exit save is lost. After an outside change, Collabora's and OnlyOffice's exit
saves (with their timestamps) are kept byte for byte, the file keeps the outside change, the log
says where the copy is, the next open shows it, and OnlyOffice has nothing "forgotten" to replay.
"""

from __future__ import annotations

import asyncio
import logging
import os

from wopibridge.config import SETTINGS
from wopibridge.locks.keys import LOCKS
from wopibridge.security.keys import TOKENS
from wopibridge.storage.factory import STORAGES

from .conftest import IOP
from .fake_collabora import CollaboraServer, FakeCollabora
from .fake_onlyoffice import FakeOnlyOffice, OnlyOfficeServer


def kept_copies(bridge) -> dict[str, bytes]:
    """Every kept copy: conflict copies beside the files and files in the recovery folder."""
    beside = {p.name: p.read_bytes() for p in bridge.root.iterdir() if "(conflict " in p.name}
    recovery = bridge.state / "recovery"
    if recovery.exists():
        beside.update({p.name: p.read_bytes() for p in recovery.iterdir() if p.is_file()})
    return beside


async def outside_change(path, content: bytes) -> None:
    """A sync client or a desktop app replaces the file (a new modification time).

    A moment after the editor's last download: a file that changes while GetFile is still
    being finished makes the host abort that connection (see ``wopi/contents.py``)."""
    await asyncio.sleep(0.1)
    path.write_bytes(content)
    stamp = path.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(stamp, stamp))


async def listed(bridge, user: str) -> list[dict]:
    url = f"{bridge.base}/wopi/iop/kept"
    auth = {"Authorization": f"Bearer {IOP}"}
    async with bridge.http.get(url, params={"user": user}, headers=auth) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["kept"]


async def host_page(bridge, opened: dict) -> str:
    async with bridge.http.get(opened["host_url"]) as response:
        assert response.status == 200
        return await response.text()


async def test_collabora_exit_save_after_an_outside_change_is_kept(bridge, signer, caplog):
    caplog.set_level(logging.INFO)
    path = bridge.root / "report.odt"
    path.write_bytes(b"v0")
    cool, _ = await bridge.editor(FakeCollabora, "report.odt", "collabora", signer)
    await cool.open()
    cool.edit(b"my edits " * 1000)
    await outside_change(path, b"the sync client's version")
    unlock = await cool.close()  # the last view leaves: the exit save, then UNLOCK
    assert cool.last_answer is not None and cool.last_answer.status == 200
    assert not cool.doc.stopped and cool.doc.lost is None  # Collabora let go, nothing lost
    assert unlock is not None and unlock.status == 200
    assert path.read_bytes() == b"the sync client's version"
    copies = kept_copies(bridge)
    assert list(copies.values()) == [b"my edits " * 1000]
    (name,) = copies
    assert name.startswith("report (conflict Ada Lovelace ")
    assert name in caplog.text and "timestamp mismatch" in caplog.text
    # the next open by the same user says so, once
    again = await bridge.open("report.odt", "collabora")
    assert again["kept"] == [name]
    assert name in await host_page(bridge, again)
    assert "kept" not in await bridge.open("report.odt", "collabora")
    (row,) = await listed(bridge, "ada@idp")
    assert (row["name"], row["file_name"], row["where"]) == (name, "report.odt", "storage")
    assert row["size"] == 9000
    assert await listed(bridge, "someone@else") == []


async def test_kept_copies_listed_for_a_web_ui(bridge, signer):
    """``GET /wopi/iop/kept``: iop secret, a user id; recovery copies named, never located,
    and forgotten once someone removed them."""
    url = f"{bridge.base}/wopi/iop/kept"
    async with bridge.http.get(url, params={"user": "ada@idp"}) as response:
        assert response.status == 401
    auth = {"Authorization": f"Bearer {IOP}"}
    async with bridge.http.get(url, headers=auth) as response:
        assert response.status == 400
        assert await response.text() == "user must be a user id of 1 to 256 characters"
    path = bridge.root / "twice.odt"
    path.write_bytes(b"t0")
    for content in (b"first", b"second"):  # the same minute: the second goes to recovery
        cool, _ = await bridge.editor(FakeCollabora, "twice.odt", "collabora", signer)
        await cool.open()
        cool.edit(content)
        await outside_change(path, b"outside " + content)
        await cool.close()
    rows = await listed(bridge, "ada@idp")
    assert sorted(row["where"] for row in rows) == ["recovery", "storage"]
    (recovery,) = [row for row in rows if row["where"] == "recovery"]
    assert "location" not in recovery and str(bridge.state) not in str(rows)
    for kept_file in (bridge.state / "recovery").iterdir():
        kept_file.unlink()
    assert [row["where"] for row in await listed(bridge, "ada@idp")] == ["storage"]


async def test_onlyoffice_exit_save_after_an_outside_change_is_kept(bridge, signer, caplog):
    caplog.set_level(logging.INFO)
    path = bridge.root / "plan.docx"
    path.write_bytes(b"d0")
    server = OnlyOfficeServer(signer, signer)
    opened = await bridge.open("plan.docx", "onlyoffice")
    token = opened["form_parameters"]["access_token"]
    oo = server.editor(bridge.http, opened["app_url"], token)
    await oo.open()
    oo.edit(b"onlyoffice edits")
    await outside_change(path, b"changed on a desktop")
    answer = await oo.save(exit_save=True)  # the last editor left: its one save
    assert answer.status == 200, answer
    assert oo.lock_id not in server.cache  # saved: nothing forgotten, nothing to replay
    assert (await oo.close()).status == 200
    assert path.read_bytes() == b"changed on a desktop"
    assert list(kept_copies(bridge).values()) == [b"onlyoffice edits"]
    (name,) = kept_copies(bridge)
    assert name in caplog.text
    # the next session opens the newer file, and the notice names the copy
    again = await bridge.open("plan.docx", "onlyoffice")
    assert again["kept"] == [name]
    oo2 = server.editor(bridge.http, again["app_url"], again["form_parameters"]["access_token"])
    await oo2.open()
    assert not oo2.not_assembled
    assert oo2.cached.content == b"changed on a desktop"


async def test_a_replayed_forgotten_onlyoffice_copy_does_not_overwrite_a_newer_file(bridge, signer):
    """OnlyOffice's save failed (its token had expired): the edits went "forgotten" and the
    unlock failed too, so the cache stays. Someone changes the file; at the next session
    OnlyOffice replays the forgotten copy with the old timestamp. It is kept, not landed."""
    path = bridge.root / "memo.docx"
    path.write_bytes(b"m0")
    server = OnlyOfficeServer(signer, signer)
    opened = await bridge.open("memo.docx", "onlyoffice")
    raw, _ = bridge.app[TOKENS].mint(
        file_id=opened["file_id"], user_id="ada@idp", user_name="Ada", app="onlyoffice",
        mode="edit", ttl=2,
    )  # fmt: skip
    oo = server.editor(bridge.http, opened["app_url"], raw)
    await oo.open()
    oo.edit(b"edits made before the token expired")
    await asyncio.sleep(2.2)
    assert (await oo.save(exit_save=True)).status == 401
    assert server.cache[oo.lock_id].forgotten == b"edits made before the token expired"
    # the lock expires meanwhile (here: the owner unlocks it), someone else saves a newer file
    lock_store = bridge.app[LOCKS]
    identity = (await bridge.app[STORAGES].default.resolve("memo.docx")).identity
    await lock_store.unlock(identity, oo.lock_id)
    await outside_change(path, b"newer, by a colleague")
    again = await bridge.open("memo.docx", "onlyoffice")
    replay = server.editor(bridge.http, again["app_url"], again["form_parameters"]["access_token"])
    await replay.open()
    assert replay.not_assembled  # "File not assembled": the forgotten copy is loaded
    assert (await replay.close()).status == 200  # its save at the end, then UNLOCK
    assert path.read_bytes() == b"newer, by a colleague"
    assert list(kept_copies(bridge).values()) == [b"edits made before the token expired"]
    assert replay.lock_id not in server.cache


async def test_collabora_live_conflict_dialog_then_overwrite(bridge, signer):
    """A save while the user is there: the 1010 dialog (nothing kept: the editor still holds
    it), and its "Overwrite" lands."""
    path = bridge.root / "q.odt"
    path.write_bytes(b"q0")
    cool, _ = await bridge.editor(FakeCollabora, "q.odt", "collabora", signer)
    await cool.open()
    cool.edit(b"q1")
    assert (await cool.save()).status == 200
    await outside_change(path, b"desktop")
    cool.edit(b"q2")
    answer = await cool.save()
    assert answer.status == 409 and answer.json()["COOLStatusCode"] == 1010
    assert cool.doc.conflict and "kind=documentconflict" in cool.doc.messages[-1]
    assert path.read_bytes() == b"desktop" and kept_copies(bridge) == {}
    assert (await cool.overwrite()).status == 200
    assert path.read_bytes() == b"q2"
    assert (await cool.close()).status == 200


async def test_collabora_lost_lock_and_overwrite_do_not_loop(bridge, signer):
    """The lock expired while the document sat idle. The next save still lands (the editor's
    timestamp proves it saw the current file) and takes the lock again; after an outside
    change, one dialog, and its Overwrite lands instead of asking again."""
    path = bridge.root / "idle.odt"
    path.write_bytes(b"i0")
    cool, _ = await bridge.editor(FakeCollabora, "idle.odt", "collabora", signer)
    await cool.open()
    identity = (await bridge.app[STORAGES].default.resolve("idle.odt")).identity
    await bridge.app[LOCKS].unlock(identity, cool.lock_id)  # as if it had expired
    assert (await cool.save(b"i1")).status == 200
    assert await bridge.app[LOCKS].get(identity) == cool.lock_id
    await bridge.app[LOCKS].unlock(identity, cool.lock_id)
    await outside_change(path, b"outside")
    answer = await cool.save(b"i2")
    assert answer.status == 409 and cool.doc.conflict
    assert list(kept_copies(bridge).values()) == [b"i2"]  # kept before the refusal
    answer = await cool.overwrite()
    assert answer.status == 200, answer
    assert path.read_bytes() == b"i2"
    assert await bridge.app[LOCKS].get(identity) == cool.lock_id


async def test_validator_style_save_on_a_lost_lock_is_still_409(bridge, signer):
    """Without the editors' flags (Microsoft's validator) a lost lock is the WOPI 409."""
    (bridge.root / "v.odt").write_bytes(b"v")
    cool, _ = await bridge.editor(FakeCollabora, "v.odt", "collabora", signer)
    answer = await cool.put_file(b"w", **{"X-WOPI-Lock": "never-taken"})
    assert answer.status == 409 and answer.headers["X-WOPI-Lock"] == ""
    assert (bridge.root / "v.odt").read_bytes() == b"v"


async def test_two_views_share_one_lock_and_rename_reloads_both(bridge, signer):
    path = bridge.root / "shared.odt"
    path.write_bytes(b"s0")
    server = CollaboraServer()
    first, opened = await bridge.editor(
        FakeCollabora, "shared.odt", "collabora", signer, server=server
    )
    second, _ = await bridge.editor(FakeCollabora, "shared.odt", "collabora", signer, server=server)
    await first.open()
    await second.open()
    assert first.lock_id == second.lock_id and first.lock_id.startswith("cool-lock")
    assert len(first.lock_id) == len("cool-lock") + 8
    assert first.editable and second.editable
    second.edit(b"s1")
    assert (await second.save()).status == 200
    # rename: the document goes as the body; Name and Url come back; every view reloads
    answer = await first.rename("shared final")
    assert answer.status == 200, answer
    body = answer.json()
    assert body["Name"] == "shared final" and body["LastModifiedTime"]
    assert f"/wopi/files/{opened['file_id']}?access_token=" in body["Url"]
    assert first.info["BaseFileName"] == second.info["BaseFileName"] == "shared final.odt"
    assert (bridge.root / "shared final.odt").read_bytes() == b"s1"
    second.edit(b"s2")
    assert (await second.save()).status == 200
    assert await first.close() is None  # another view is still there
    assert (await second.close()).status == 200
    assert (bridge.root / "shared final.odt").read_bytes() == b"s2"


async def test_collabora_save_as_then_the_original_saves_without_a_false_conflict(bridge, signer):
    (bridge.root / "orig.odt").write_bytes(b"o0")
    cool, _ = await bridge.editor(FakeCollabora, "orig.odt", "collabora", signer)
    await cool.open()
    answer = await cool.save_as("Kopie.odt", b"copy")
    assert answer.status == 200, answer
    assert answer.json()["Name"] == "Kopie.odt"
    assert (bridge.root / "Kopie.odt").read_bytes() == b"copy"
    # Collabora took the answer's LastModifiedTime as the original's next timestamp: the
    # original's, so its next save is still checked (none would drop the check) and lands
    assert cool.last_modified == (await cool.check_file_info())["LastModifiedTime"]
    cool.edit(b"o1")
    assert (await cool.save()).status == 200
    assert (bridge.root / "orig.odt").read_bytes() == b"o1"


async def test_failed_lock_opens_read_only_and_says_why(bridge, signer):
    (bridge.root / "busy.odt").write_bytes(b"b")
    holder, _ = await bridge.editor(FakeCollabora, "busy.odt", "collabora", signer)
    await holder.open()
    late, _ = await bridge.editor(FakeCollabora, "busy.odt", "collabora", signer)
    await late.open()  # another Collabora server: its own lock id
    assert not late.editable
    assert late.lock_failure_reason == "The file is locked by another session"
    # OnlyOffice falls back to view mode the same way
    (bridge.root / "busy.docx").write_bytes(b"b")
    desk, _ = await bridge.editor(FakeCollabora, "busy.docx", "collabora", signer)
    await desk.open()
    oo, _ = await bridge.editor(FakeOnlyOffice, "busy.docx", "onlyoffice", signer)
    await oo.open()
    assert not oo.editable


async def test_token_expiry_during_a_long_session(bridge, signer):
    """401 on save: Collabora drops the view's token (no UNLOCK with it either)."""
    (bridge.root / "long.odt").write_bytes(b"l")
    opened = await bridge.open("long.odt", "collabora")
    raw, _ = bridge.app[TOKENS].mint(
        file_id=opened["file_id"], user_id="ada@idp", user_name="Ada", app="collabora",
        mode="edit", ttl=2,
    )  # fmt: skip
    cool = FakeCollabora(bridge.http, opened["app_url"], raw, signer)
    await cool.open()
    await asyncio.sleep(2.2)
    assert (await cool.refresh()).status == 401
    cool.edit(b"late edit")
    assert (await cool.save()).status == 401
    assert cool.token_dropped and "kind=saveunauthorized" in cool.doc.messages[-1]


async def test_save_over_the_upload_limit_turns_collabora_read_only(bridge, signer):
    (bridge.root / "big.odt").write_bytes(b"small")
    settings = bridge.app[SETTINGS]
    cool, _ = await bridge.editor(FakeCollabora, "big.odt", "collabora", signer)
    await cool.open()
    cool.edit(b"x" * (settings.server.max_upload_size + 1))
    answer = await cool.save()
    assert answer.status == 413
    assert cool.doc.read_only and "kind=savetoolarge" in cool.doc.messages[-1]
    assert (bridge.root / "big.odt").read_bytes() == b"small"
    assert kept_copies(bridge) == {}


async def test_collabora_reloading_a_crashed_document_is_not_locked_out(bridge, signer):
    """The same Collabora server loads the document again with a new lock id for the same
    user: the old lock had no holder left, so it is handed over. Another user, or a restarted
    server (a new server id), gets the document read-only until the old lock expires."""
    (bridge.root / "crash.odt").write_bytes(b"c0")
    server = CollaboraServer()
    before, _ = await bridge.editor(FakeCollabora, "crash.odt", "collabora", signer, server=server)
    await before.open()
    old_lock = before.lock_id
    server.crash_documents()
    after, _ = await bridge.editor(FakeCollabora, "crash.odt", "collabora", signer, server=server)
    await after.open()
    assert after.editable and after.lock_id != old_lock
    after.edit(b"c1")
    assert (await after.save()).status == 200
    # another user's reload on the same server is not trusted
    server.crash_documents()
    opened = await bridge.open("crash.odt", "collabora")
    raw, _ = bridge.app[TOKENS].mint(
        file_id=opened["file_id"], user_id="bob@idp", user_name="Bob", app="collabora",
        mode="edit",
    )  # fmt: skip
    bob = server.view(bridge.http, opened["app_url"], raw, signer)
    await bob.open()
    assert not bob.editable
    # nor is a restarted server (a new server id), even for the same user
    server.crash()
    again, _ = await bridge.editor(FakeCollabora, "crash.odt", "collabora", signer, server=server)
    await again.open()
    assert not again.editable
    assert again.lock_failure_reason == "The file is locked by another session"


async def test_onlyoffice_session_rename_save_as_and_reopen(bridge, signer):
    """OnlyOffice: LOCK before GetFile with its docId, REFRESH_LOCK, a rename (it reads
    ``Name``), a conversion by PutRelativeFile, its one save when the last editor leaves, and
    the same lock id on the next open."""
    (bridge.root / "notes.docx").write_bytes(b"n0")
    server = OnlyOfficeServer(signer, signer)
    opened = await bridge.open("notes.docx", "onlyoffice")
    oo = server.editor(bridge.http, opened["app_url"], opened["form_parameters"]["access_token"])
    await oo.open()
    assert oo.editable and oo.lock_id == opened["file_id"]
    assert (await oo.refresh()).status == 200
    renamed = await oo.rename("Notizen")
    assert renamed.status == 200 and renamed.json()["Name"] == "Notizen"
    converted = await oo.save_as(".pdf", b"%PDF", conversion=True)
    assert converted.status == 200 and converted.json()["Name"] == "Notizen.pdf"
    oo.edit(b"n1")
    assert (await oo.close()).status == 200  # its save, then UNLOCK
    assert (bridge.root / "Notizen.docx").read_bytes() == b"n1"
    again = await bridge.open("Notizen.docx", "onlyoffice")
    oo2 = server.editor(bridge.http, again["app_url"], again["form_parameters"]["access_token"])
    await oo2.open()
    assert oo2.editable and oo2.lock_id == oo.lock_id
    assert oo2.cached.content == b"n1"
