"""Files with names users already have open for editing through ``POST /wopi/open`` (by path
and by file id) with a real discovery, and the editor's WOPI calls work on them."""

from __future__ import annotations

import pytest

from tests.support.waiting import eventually
from tests.test_file_names import LEGAL_POSIX_NAMES

from .fakes import FakeCollabora


@pytest.mark.parametrize("name", LEGAL_POSIX_NAMES)
async def test_open_edit_save_close(bridge, signer, name: str) -> None:
    (bridge.root / name).write_bytes(b"v0")
    cool, opened = await bridge.editor(FakeCollabora, name, "collabora", signer)
    assert opened["mode"] == "edit" and "forced_viewmode_reason" not in opened
    info = await cool.open()
    assert info["BaseFileName"] == name and info["UserCanWrite"] is True
    if name.endswith(".odt"):
        await eventually((bridge.root / f".~lock.{name}#").exists)
    assert (await cool.save(b"v1")).status == 200
    assert (bridge.root / name).read_bytes() == b"v1"
    assert (await cool.close()).status == 200
    await eventually(lambda: not (bridge.root / f".~lock.{name}#").exists())
    by_id = await bridge.open("", "collabora", "view", file_id=opened["file_id"])
    assert by_id["file_id"] == opened["file_id"]
