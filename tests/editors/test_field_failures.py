"""One regression test for each field failure listed at the end of EDITORS.md, replayed with
the fake editors of :mod:`tests.editors.fakes` against a running wopibridge."""

from __future__ import annotations

import asyncio
import os

from tests.support.waiting import eventually
from wopibridge.security.keys import TOKENS
from wopibridge.wopi.saves import entry as saving

from .fakes import FakeCollabora, FakeOnlyOffice


async def test_no_false_document_changed_from_timestamps(bridge, signer):
    """nextcloud/richdocuments#5832, CollaboraOnline/online#168: a stale or re-formatted
    timestamp made Collabora show "document changed" when nothing changed."""
    path = bridge.root / "t.odt"
    path.write_bytes(b"0")
    # a modification time with nanoseconds, as real file systems have
    os.utime(path, ns=(1_764_000_000_123_456_789, 1_764_000_000_123_456_789))
    cool, _ = await bridge.editor(FakeCollabora, "t.odt", "collabora", signer)
    info = await cool.open()
    assert info["LastModifiedTime"] == "2025-11-24T16:00:00.123456Z"
    for n in range(10):
        answer = await cool.save(b"save %d" % n)
        assert answer.status == 200, answer
        assert answer.json()["LastModifiedTime"]  # never empty
    assert (await cool.check_file_info())["LastModifiedTime"] == cool.last_modified
    # a second session opened meanwhile sees the same string and saves without a conflict
    # (Collabora shares one lock and one timestamp across a document's views)
    other, _ = await bridge.editor(FakeCollabora, "t.odt", "collabora", signer, server=cool.server)
    assert (await other.open())["LastModifiedTime"] == cool.last_modified
    assert other.lock_id == cool.lock_id
    assert (await other.save(b"from the other view")).status == 200


async def test_closed_session_does_not_leave_the_file_locked(bridge, signer, monkeypatch):
    """owncloud/ocis#3936, #7561: a reopened file came up read-only because the previous
    session's lock was never released."""
    (bridge.root / "r.odt").write_bytes(b"r")
    first, _ = await bridge.editor(FakeCollabora, "r.odt", "collabora", signer)
    await first.open()
    assert (await first.save(b"r1", exit_save=True)).status == 200
    assert (await first.close()).status == 200
    await eventually(lambda: not (bridge.root / ".~lock.r.odt#").exists())
    second, _ = await bridge.editor(FakeCollabora, "r.odt", "collabora", signer)
    assert (await second.open())["UserCanWrite"] is True
    # the editor said it closed (exit save) but its Unlock never arrived: the lock goes soon
    monkeypatch.setattr(saving, "EXIT_LOCK_TTL", 1.0)
    assert (await second.save(b"r2", exit_save=True)).status == 200
    third, _ = await bridge.editor(FakeOnlyOffice, "r.odt", "collabora", signer)
    assert (await third.override("LOCK", **{"X-WOPI-Lock": "third"})).status == 409
    await asyncio.sleep(1.3)
    assert (await third.override("LOCK", **{"X-WOPI-Lock": "third"})).status == 200


async def test_expired_token_is_401_so_lock_refresh_stops(bridge, signer):
    """CollaboraOnline/online#5870: lock refresh loops after a 403 from an expired token.
    An expired token is 401 on every call, never 403 or a 500."""
    (bridge.root / "e.odt").write_bytes(b"e")
    opened = await bridge.open("e.odt", "collabora")
    raw, _ = bridge.app[TOKENS].mint(
        file_id=opened["file_id"],
        user_id="ada@idp",
        user_name="Ada",
        app="collabora",
        mode="edit",
        ttl=1,
    )
    cool = FakeCollabora(bridge.http, opened["app_url"], raw, signer)
    assert (await cool.refresh()).status == 200
    await asyncio.sleep(2.1)
    for answer in (await cool.refresh(), await cool.call("GET"), await cool.save(b"x")):
        assert answer.status == 401, answer


async def test_rename_keeps_one_session(bridge, signer):
    """nextcloud/richdocuments#3492: renaming in the editor split the document into two
    sessions. The file id survives the rename, so the same WOPISrc keeps working."""
    (bridge.root / "old.odt").write_bytes(b"o")
    cool, opened = await bridge.editor(FakeCollabora, "old.odt", "collabora", signer)
    await cool.open()
    answer = await cool.override(
        "RENAME_FILE", **{"X-WOPI-Lock": cool.lock_id, "X-WOPI-RequestedName": "new"}
    )
    assert answer.status == 200
    info = await cool.check_file_info()
    assert info["BaseFileName"] == "new.odt"
    assert (await cool.save(b"after rename")).status == 200
    assert (bridge.root / "new.odt").read_bytes() == b"after rename"
    assert not (bridge.root / "old.odt").exists()
    again = await bridge.open("new.odt", "collabora")
    assert again["file_id"] == opened["file_id"]


async def test_corrupted_or_refused_saves_stay_recoverable(bridge, signer):
    """Euro-Office/server#42: a corrupted save was pushed via PutFile over good content.
    An empty body over a non-empty file keeps the previous content in the recovery folder;
    a save refused because the lock was lost is kept as a conflict copy beside the file."""
    (bridge.root / "c.odt").write_bytes(b"precious")
    cool, _ = await bridge.editor(FakeCollabora, "c.odt", "collabora", signer)
    await cool.open()
    assert (await cool.save(b"")).status == 200
    kept = list((bridge.state / "recovery").iterdir())
    assert [p.read_bytes() for p in kept] == [b"precious"]
    # the lock is lost (another session took it after an unlock): the save becomes a copy
    assert (await cool.close()).status == 200
    other, _ = await bridge.editor(FakeOnlyOffice, "c.odt", "collabora", signer)
    assert (await other.override("LOCK", **{"X-WOPI-Lock": "someone-else"})).status == 200
    answer = await cool.save(b"work in progress", overwrite=True)
    assert answer.status == 409
    copies = [p.name for p in bridge.root.iterdir() if "(conflict Ada Lovelace" in p.name]
    assert len(copies) == 1
    assert (bridge.root / copies[0]).read_bytes() == b"work in progress"
    assert (bridge.root / "c.odt").read_bytes() == b""
