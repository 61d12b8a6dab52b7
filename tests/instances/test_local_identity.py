"""The local storage's identity rules, on the storage itself (no server)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wopibridge.config import load_settings
from wopibridge.errors import Forbidden, InsufficientStorage, NotFound
from wopibridge.storage.idmap import SqliteIdMap
from wopibridge.storage.local import LocalStorage
from wopibridge.storage.xattrid import ATTRIBUTE

ROOT = Path(__file__).resolve().parents[2]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.odt").write_bytes(b"v1")
    return folder


async def test_a_save_carries_the_id_onto_the_new_file(root: Path, tmp_path: Path) -> None:
    storage = LocalStorage("local", root, tmp_path / "state")
    stat = await storage.resolve("a.odt")
    inode = os.stat(root / "a.odt").st_ino
    await storage.write(stat.file_id, _chunks(b"v2"))
    assert os.stat(root / "a.odt").st_ino != inode, "an atomic replace"
    assert os.getxattr(root / "a.odt", ATTRIBUTE).decode() == stat.file_id
    # another instance with its own, empty index finds the same id on the file
    other = LocalStorage("local", root, tmp_path / "other-state")
    assert (await other.resolve("a.odt")).file_id == stat.file_id
    await storage.close()
    await other.close()


async def test_a_copy_that_kept_the_attribute_gets_its_own_id(root: Path, tmp_path: Path) -> None:
    storage = LocalStorage("local", root, tmp_path / "state")
    original = await storage.resolve("a.odt")
    shutil.copy2(root / "a.odt", root / "copy.odt")  # copies user xattrs, like cp -a
    assert os.getxattr(root / "copy.odt", ATTRIBUTE).decode() == original.file_id
    copy = await storage.resolve("copy.odt")
    assert copy.file_id != original.file_id
    assert (await storage.stat(original.file_id)).name == "a.odt"
    await storage.close()


async def test_a_hard_linked_file_is_not_split_by_a_save(root: Path, tmp_path: Path) -> None:
    storage = LocalStorage("local", root, tmp_path / "state")
    stat = await storage.resolve("a.odt")
    os.link(root / "a.odt", root / "b.odt")
    linked = await storage.stat(stat.file_id)
    assert "hard links" in linked.read_only_reason
    with pytest.raises(Forbidden):
        await storage.write(stat.file_id, _chunks(b"v2"))
    assert os.path.samefile(root / "a.odt", root / "b.odt")
    await storage.close()


async def test_save_as_over_a_file_keeps_its_id(root: Path, tmp_path: Path) -> None:
    storage = LocalStorage("local", root, tmp_path / "state")
    a = await storage.resolve("a.odt")
    (root / "b.odt").write_bytes(b"old b")
    b = await storage.resolve("b.odt")
    created = await storage.create(a.file_id, "b.odt", _chunks(b"new b"), overwrite=True)
    assert created.file_id == b.file_id
    await storage.close()


class _FailingFinish(SqliteIdMap):
    """The real SQLite map whose final rename step fails as on a full disk."""

    async def finish_move(self, file_id: str, old_path: str, new_path: str) -> None:
        raise InsufficientStorage("The storage is full: the file index cannot be updated")


async def test_a_rename_whose_map_update_fails_is_undone(root: Path, tmp_path: Path) -> None:
    storage = LocalStorage("local", root, tmp_path / "state", _FailingFinish(tmp_path / "i.db"))
    stat = await storage.resolve("a.odt")
    with pytest.raises(InsufficientStorage):
        await storage.rename(stat.file_id, "b.odt")
    assert (root / "a.odt").read_bytes() == b"v1" and not (root / "b.odt").exists()
    assert (await storage.stat(stat.file_id)).name == "a.odt"
    await storage.close()


async def test_without_attributes_ids_are_kept_by_path(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage("local", root, tmp_path / "state", xattrs=False)
    with caplog.at_level(logging.WARNING, "wopibridge.storage.local"):
        await storage.start()
    assert f"{root}" in caplog.text and "keeps no user extended attributes" in caplog.text
    stat = await storage.resolve("a.odt")
    with pytest.raises(OSError):
        os.getxattr(root / "a.odt", ATTRIBUTE)
    renamed = await storage.rename(stat.file_id, "b.odt")
    assert (renamed.file_id, renamed.name) == (stat.file_id, "b.odt")
    os.rename(root / "b.odt", root / "c.odt")  # outside wopibridge: the id is lost
    with pytest.raises(NotFound):
        await storage.stat(stat.file_id)
    assert (await storage.resolve("c.odt")).file_id != stat.file_id
    await storage.close()


def test_the_fleet_example_is_a_valid_configuration() -> None:
    settings = load_settings(ROOT / "deploy" / "fleet" / "instance.toml", env={})
    assert settings.locks.url.startswith("redis://")
    assert settings.server.workers == 2
