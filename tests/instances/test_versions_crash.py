"""A save killed (SIGKILL) at the one moment that matters, just before or just after the rename
that replaces the file and keeps its previous content, leaves the file and its versions
consistent: either the save did not happen and no version claims it did, or it happened and
the previous content is a version.

The kill is real: a child process runs the storage's save and kills itself with SIGKILL at the
chosen step; another storage over the same folder (another instance) then looks.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wopibridge.errors import NotFound
from wopibridge.storage.local import LocalStorage, keeping
from wopibridge.storage.versions import VersionLimits

CHILD = """
import asyncio, os, signal, sys
from pathlib import Path
from wopibridge.storage.local import LocalStorage, keeping
from wopibridge.storage.versions import VersionLimits

root, state, when = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
real = keeping.exchange

def exchange(first, second):
    if when == "after":
        real(first, second)
    os.kill(os.getpid(), signal.SIGKILL)

keeping.exchange = exchange

async def body():
    yield b"the new content"

async def main():
    storage = LocalStorage("local", root, state)
    storage.keep_versions(VersionLimits())
    stat = await storage.resolve("doc.odt")
    await storage.write(stat.file_id, body())

asyncio.run(main())
"""


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _storage(root: Path, state: Path) -> LocalStorage:
    storage = LocalStorage("local", root, state)
    storage.keep_versions(VersionLimits())
    return storage


async def _saved_once(tmp_path: Path) -> tuple[Path, LocalStorage, str]:
    """``doc.odt`` saved once over ``first``: its one version is ``first``."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "doc.odt").write_bytes(b"first")
    storage = await _storage(root, tmp_path / "state")
    file_id = (await storage.resolve("doc.odt")).file_id
    await storage.write(file_id, _chunks(b"second"))
    assert [v.size for v in await storage.list_versions(file_id)] == [5]
    return root, storage, file_id


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_save_killed_at_the_exchange_is_consistent(tmp_path: Path, when: str) -> None:
    root, storage, file_id = await _saved_once(tmp_path)
    await storage.close()

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(tmp_path / "state-child"), when],
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()

    other = await _storage(root, tmp_path / "state-other")
    assert (await other.resolve("doc.odt")).file_id == file_id
    versions = await other.list_versions(file_id)
    contents = []
    for version in versions:
        content = await other.open_version(file_id, version.version_id)
        assert content.local_path is not None
        contents.append(content.local_path.read_bytes())
        await content.close()
    folder = root / ".wopibridge" / "versions" / file_id
    if when == "before":
        assert (root / "doc.odt").read_bytes() == b"second", "the save did not happen"
        assert contents == [b"first"], "and no version claims it did"
        assert len(os.listdir(folder)) == 1, "the killed save's bytes are swept"
    else:
        assert (root / "doc.odt").read_bytes() == b"the new content"
        assert contents == [b"second", b"first"]
    assert os.stat(root / "doc.odt").st_nlink == 1
    # and the file saves on as before
    await other.write(file_id, _chunks(b"third"))
    assert len(await other.list_versions(file_id)) == len(contents) + 1
    await other.close()


async def test_the_versions_folder_is_never_served_as_a_file(tmp_path: Path) -> None:
    _, storage, file_id = await _saved_once(tmp_path)
    [version] = await storage.list_versions(file_id)
    for ref in (
        f".wopibridge/versions/{file_id}/{version.version_id}",
        ".wopibridge/versions",
        ".wopibridge",
    ):
        with pytest.raises(NotFound):
            await storage.resolve(ref)
    assert await storage.lock_file_ids() == []
    await storage.close()


async def test_a_save_lands_when_no_version_can_be_kept(tmp_path: Path) -> None:
    """A file in the way of the versions folder: the save still lands."""
    root = tmp_path / "data"
    (root / ".wopibridge").mkdir(parents=True)
    (root / "doc.odt").write_bytes(b"first")
    (root / ".wopibridge" / "versions").write_bytes(b"in the way")
    storage = await _storage(root, tmp_path / "state")
    file_id = (await storage.resolve("doc.odt")).file_id
    await storage.write(file_id, _chunks(b"second"))
    assert (root / "doc.odt").read_bytes() == b"second"
    assert await storage.list_versions(file_id) == []
    await storage.close()


async def test_a_symlink_to_a_version_is_not_a_document(tmp_path: Path) -> None:
    root, storage, file_id = await _saved_once(tmp_path)
    [version] = await storage.list_versions(file_id)
    os.symlink(f".wopibridge/versions/{file_id}/{version.version_id}", root / "alias.odt")
    with pytest.raises(NotFound):
        await storage.resolve("alias.odt")
    await storage.close()


async def test_a_deleted_file_takes_its_versions_along(tmp_path: Path) -> None:
    root, storage, file_id = await _saved_once(tmp_path)
    folder = root / ".wopibridge" / "versions" / file_id
    assert folder.is_dir()
    await storage.delete(file_id)
    assert not folder.exists()
    await storage.close()


async def test_without_the_exchange_a_link_keeps_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filesystem without ``RENAME_EXCHANGE`` (NFS answers EINVAL): the old inode is linked
    into the versions folder, then the file is replaced."""

    def unsupported(first: Path, second: Path) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(keeping, "exchange", unsupported)
    root, storage, file_id = await _saved_once(tmp_path)
    await storage.write(file_id, _chunks(b"third"))
    assert (root / "doc.odt").read_bytes() == b"third"
    assert os.stat(root / "doc.odt").st_nlink == 1
    contents = []
    for version in await storage.list_versions(file_id):
        content = await storage.open_version(file_id, version.version_id)
        assert content.local_path is not None
        contents.append(content.local_path.read_bytes())
        await content.close()
    assert contents == [b"second", b"first"]
    await storage.close()
