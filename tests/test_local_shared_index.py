"""Two local storages on one root and one state folder (two instances on a shared disk)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wopibridge.storage.local import LocalStorage


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[LocalStorage, LocalStorage, Path]]:
    """Two instances' storages over one folder holding ``report.odt``, and that folder."""
    root, state = tmp_path / "data", tmp_path / "state"
    root.mkdir()
    (root / "report.odt").write_bytes(b"v1")
    first = LocalStorage("local", root, state)
    second = LocalStorage("local", root, state)
    yield first, second, root
    await first.close()
    await second.close()


async def test_a_rename_by_the_other_instance_is_followed(pair) -> None:
    first, second, _ = pair
    stat = await first.resolve("report.odt")
    assert (await first.stat(stat.file_id)).name == "report.odt"  # path now remembered

    await second.rename(stat.file_id, "final.odt")

    moved = await first.stat(stat.file_id)
    assert (moved.file_id, moved.name, moved.size) == (stat.file_id, "final.odt", 2)


async def test_a_new_file_at_the_old_path_is_not_mistaken_for_the_renamed_one(pair) -> None:
    first, second, root = pair
    stat = await first.resolve("report.odt")
    await first.stat(stat.file_id)

    await second.rename(stat.file_id, "final.odt")
    (root / "report.odt").write_bytes(b"someone else's new file")

    assert (await first.stat(stat.file_id)).name == "final.odt"
    written = await first.write(stat.file_id, _chunks(b"v2"))
    assert written.name == "final.odt"
    assert (root / "final.odt").read_bytes() == b"v2"
    assert (root / "report.odt").read_bytes() == b"someone else's new file"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


RACE = textwrap.dedent(
    """
    import os, sys, tempfile
    from pathlib import Path
    from wopibridge.storage.index import FileIndex

    failures = []
    for _ in range(int(sys.argv[1])):
        path = Path(tempfile.mkdtemp(dir=sys.argv[2])) / "local-files.sqlite3"
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                try:
                    FileIndex(path).id_for("a.txt")
                except Exception as exc:
                    print(type(exc).__name__, exc, flush=True)
                    os._exit(1)
                os._exit(0)
            children.append(pid)
        for pid in children:
            failures.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    sys.exit(1 if any(failures) else 0)
    """
)


def test_instances_starting_together_open_a_new_index(tmp_path: Path) -> None:
    """Workers or instances started at once on a new state folder all create the index, and
    SQLite can answer "busy" there without waiting: none of them may fail on it. (A race:
    before the fix, 400 rounds of three processes failed about two runs in three.)"""
    result = subprocess.run(
        [sys.executable, "-c", RACE, "400", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
