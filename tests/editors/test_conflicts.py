"""Conflict copies and the recovery folder, on the real local storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from wopibridge.errors import Locked, VersionConflict
from wopibridge.instruments import Instruments
from wopibridge.storage.base import Capabilities
from wopibridge.storage.local import LocalStorage
from wopibridge.wopi.saves.keeper import ConflictKeeper
from wopibridge.wopi.saves.naming import Owner, conflict_name


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 5, 32, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def leftovers(tmp_path):
    """Temporary files (a body's copy) left anywhere, or anything in the recovery folder."""
    temps = [p for p in tmp_path.rglob(".~wb-*")]
    recovery = tmp_path / "state" / "recovery"
    return temps + (list(recovery.iterdir()) if recovery.exists() else [])


@pytest.fixture
async def storage(tmp_path):
    store = LocalStorage("local", tmp_path / "data", tmp_path / "state")
    (tmp_path / "data" / "docs").mkdir(parents=True)
    (tmp_path / "data" / "docs" / "q3 report.odt").write_bytes(b"original")
    yield store
    await store.close()


@pytest.mark.parametrize(
    ("name", "user", "expected"),
    [
        ("q3.odt", "Ada Lovelace", "q3 (conflict Ada Lovelace 2026-11-25 0532 UTC).odt"),
        ("README", "bob", "README (conflict bob 2026-11-25 0532 UTC)"),
        (".hidden.txt", "a/b\\c:d", ".hidden (conflict a_b_c_d 2026-11-25 0532 UTC).txt"),
        ("x.tar.gz", "", "x.tar (conflict unknown 2026-11-25 0532 UTC).gz"),
    ],
)
def test_conflict_name(name, user, expected):
    assert conflict_name(name, user, Clock()()) == expected


async def test_one_copy_per_user_file_and_minute_then_recovery(storage, tmp_path, caplog):
    clock = Clock()
    instruments = Instruments.create()
    keeper = ConflictKeeper(tmp_path / "state" / "recovery", clock=clock, instruments=instruments)
    stat = await storage.resolve("docs/q3 report.odt")
    first = await keeper.keep(
        storage, stat.file_id, stat, Owner("Ada"), body(b"mine ", b"v1"), "lock"
    )
    assert first.where == "storage"
    copy = tmp_path / "data" / "docs" / "q3 report (conflict Ada 2026-11-25 0532 UTC).odt"
    assert copy.read_bytes() == b"mine v1"
    assert first.name in caplog.text
    # same user, same file, same minute: the second one goes to the recovery folder
    clock.now += timedelta(seconds=30)
    second = await keeper.keep(storage, stat.file_id, stat, Owner("Ada"), body(b"mine v2"), "lock")
    assert second.where == "recovery"
    assert second.path.read_bytes() == b"mine v2"
    assert second.path.parent == tmp_path / "state" / "recovery"
    assert str(second.path) in caplog.text
    assert copy.read_bytes() == b"mine v1"
    # another user in the same minute, or the next minute: a copy beside the file again
    other = await keeper.keep(storage, stat.file_id, stat, Owner("Bob"), body(b"his"), "lock")
    assert other.where == "storage"
    clock.now += timedelta(seconds=40)
    later = await keeper.keep(storage, stat.file_id, stat, Owner("Ada"), body(b"v3"), "lock")
    assert later.name == "q3 report (conflict Ada 2026-11-25 0533 UTC).odt"
    assert (tmp_path / "data" / "docs" / "q3 report.odt").read_bytes() == b"original"
    assert sorted(p.name for p in (tmp_path / "state" / "recovery").iterdir()) == [second.path.name]
    kept = instruments.registry.get_sample_value
    assert kept("wopibridge_conflict_copies_total", {"where": "storage"}) == 3
    assert kept("wopibridge_conflict_copies_total", {"where": "recovery"}) == 1


async def test_guarded_write_keeps_a_body_the_storage_consumed_then_refused(storage, tmp_path):
    """LocalStorage checks the version again after it read the whole body (just before the
    rename): the body is gone from the request by then, and must still be kept."""
    keeper = ConflictKeeper(tmp_path / "state" / "recovery", clock=Clock())
    stat = await storage.resolve("docs/q3 report.odt")

    async def racing_body() -> AsyncIterator[bytes]:
        yield b"edited "
        # someone saves from a desktop while the editor's upload is still streaming
        (tmp_path / "data" / "docs" / "q3 report.odt").write_bytes(b"desktop save")
        yield b"in the browser"

    written = await keeper.write(
        storage, stat.file_id, stat, Owner("Ada"), racing_body(), expected_version=stat.version
    )
    assert isinstance(written.error, VersionConflict)
    docs = tmp_path / "data" / "docs"
    assert (docs / "q3 report.odt").read_bytes() == b"desktop save"
    copy = docs / "q3 report (conflict Ada 2026-11-25 0532 UTC).odt"
    assert copy.read_bytes() == b"edited in the browser"
    assert not leftovers(tmp_path)  # the body was written once, beside the file, and moved


async def test_guarded_write_refused_before_reading_keeps_the_unread_body(storage, tmp_path):
    keeper = ConflictKeeper(tmp_path / "state" / "recovery", clock=Clock())
    stat = await storage.resolve("docs/q3 report.odt")
    written = await keeper.write(
        storage, stat.file_id, stat, Owner("Ada"), body(b"a", b"b"), expected_version="stale"
    )
    assert isinstance(written.error, VersionConflict)
    copy = tmp_path / "data" / "docs" / "q3 report (conflict Ada 2026-11-25 0532 UTC).odt"
    assert copy.read_bytes() == b"ab"


async def test_guarded_write_success_leaves_no_spool(storage, tmp_path):
    keeper = ConflictKeeper(tmp_path / "state" / "recovery", clock=Clock())
    stat = await storage.resolve("docs/q3 report.odt")
    big = [bytes([i]) * 300_000 for i in range(8)]
    written = await keeper.write(
        storage, stat.file_id, stat, Owner("Ada"), body(*big), expected_version=stat.version
    )
    new = written.stat
    assert new is not None
    assert new.size == 2_400_000 and new.version != stat.version
    assert (tmp_path / "data" / "docs" / "q3 report.odt").read_bytes() == b"".join(big)
    assert not leftovers(tmp_path)


async def test_storage_lock_during_write_keeps_a_copy(storage, tmp_path):
    """A storage that refuses with 423 half way (as a WebDAV lock does)."""
    keeper = ConflictKeeper(tmp_path / "state" / "recovery", clock=Clock())
    stat = await storage.resolve("docs/q3 report.odt")

    class LockedOnWrite:  # a remote storage: the body streams to it, a copy is spooled
        name = "local"
        capabilities = Capabilities()

        def __getattr__(self, attr):
            return getattr(storage, attr)

        async def write(self, file_id, chunks, *, expected_version=None):
            async for _ in chunks:
                raise Locked("The file is locked in storage")

    written = await keeper.write(
        LockedOnWrite(), stat.file_id, stat, Owner("Ada"), body(b"1", b"2")
    )
    assert isinstance(written.error, Locked)
    copy = tmp_path / "data" / "docs" / "q3 report (conflict Ada 2026-11-25 0532 UTC).odt"
    assert copy.read_bytes() == b"12"


async def test_previous_content_is_kept_before_an_empty_save(storage, tmp_path):
    keeper = ConflictKeeper(tmp_path / "state" / "recovery", clock=Clock())
    stat = await storage.resolve("docs/q3 report.odt")
    kept = await keeper.keep_previous(storage, stat.file_id, stat, Owner("ada@idp", "Ada"))
    assert kept.where == "recovery"
    assert kept.path.read_bytes() == b"original"
    assert "previous version" in kept.name
