"""Two local storages on one root and one state folder (two instances on a shared disk)."""

from __future__ import annotations

from pathlib import Path

from wopibridge.storage.local import LocalStorage


async def test_a_rename_by_the_other_instance_is_followed(tmp_path: Path) -> None:
    root, state = tmp_path / "data", tmp_path / "state"
    root.mkdir()
    (root / "report.odt").write_bytes(b"v1")
    first = LocalStorage("local", root, state)
    second = LocalStorage("local", root, state)
    try:
        stat = await first.resolve("report.odt")
        assert (await first.stat(stat.file_id)).name == "report.odt"  # path now cached

        await second.rename(stat.file_id, "final.odt")

        moved = await first.stat(stat.file_id)
        assert (moved.file_id, moved.name, moved.size) == (stat.file_id, "final.odt", 2)
    finally:
        await first.close()
        await second.close()
