"""Desktop lock files on the real local storage: LibreOffice and Microsoft Office formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wopibridge.storage.local import LocalStorage
from wopibridge.wopi.desktoplocks import (
    desktop_lock_holder,
    libreoffice_lock_content,
    microsoft_owner_names,
    parse_libreoffice_lock,
    parse_microsoft_owner,
    remove_lock_file,
    write_lock_file,
)


def ms_owner_file(user: str) -> bytes:
    """The layout Word writes: length byte, ANSI name padded to 54 bytes, then the UTF-16 copy."""
    ansi = user.encode("cp1252")
    head = bytes([len(ansi)]) + ansi.ljust(53, b"\x00")
    wide = bytes([len(user), 0]) + user.encode("utf-16-le")
    return (head + wide).ljust(162, b"\x00")


@pytest.fixture
async def storage(tmp_path):
    store = LocalStorage("local", tmp_path / "data", tmp_path / "state")
    for name in ("Quarterly.docx", "notes.odt", "a.xlsx"):
        (tmp_path / "data" / name).write_bytes(b"content")
    yield store
    await store.close()


def test_formats():
    assert parse_libreoffice_lock(
        b"Ada Lovelace,ada,ADA-PC,25.11.2026 05:32,file:///C:/Users/ada/AppData/LibreOffice/4;"
    ) == ("Ada Lovelace", "ADA-PC")
    assert parse_libreoffice_lock(b",ada,host,25.11.2026 05:32,file:///x;")[0] == "ada"
    assert parse_microsoft_owner(ms_owner_file("Grace Hopper")) == "Grace Hopper"
    assert parse_microsoft_owner(b"") == "someone"
    assert microsoft_owner_names("Quarterly.docx") == [
        "~$Quarterly.docx",
        "~$uarterly.docx",
        "~$arterly.docx",
    ]
    own = libreoffice_lock_content("Ada, L.", datetime(2026, 11, 25, 5, 32, tzinfo=UTC), "f1")
    assert own == b"Ada  L.,wopibridge,wopibridge,25.11.2026 05:32,wopibridge:f1;"


async def test_libreoffice_lock_file_names_the_holder(storage, tmp_path):
    stat = await storage.resolve("notes.odt")
    assert await desktop_lock_holder(storage, stat.file_id, stat) is None
    (tmp_path / "data" / ".~lock.notes.odt#").write_bytes(
        b"Ada Lovelace,ada,ADA-PC,25.11.2026 05:32,file:///home/ada/.config/libreoffice/4;"
    )
    reason = await desktop_lock_holder(storage, stat.file_id, stat)
    assert reason == "The file is open in LibreOffice by Ada Lovelace; it opens read-only"


async def test_word_owner_file_with_shortened_name(storage, tmp_path):
    stat = await storage.resolve("Quarterly.docx")
    (tmp_path / "data" / "~$arterly.docx").write_bytes(ms_owner_file("Grace Hopper"))
    reason = await desktop_lock_holder(storage, stat.file_id, stat)
    assert reason == "The file is open in Microsoft Office by Grace Hopper; it opens read-only"
    other = await storage.resolve("a.xlsx")
    assert await desktop_lock_holder(storage, other.file_id, other) is None


async def test_web_lock_file_is_written_ignored_and_removed(storage, tmp_path):
    stat = await storage.resolve("notes.odt")
    await write_lock_file(storage, stat.file_id, stat, "Ada Lovelace")
    lock = tmp_path / "data" / ".~lock.notes.odt#"
    assert lock.read_bytes().startswith(b"Ada Lovelace,wopibridge,wopibridge,")
    # our own lock file does not make the file read-only for the next web user
    assert await desktop_lock_holder(storage, stat.file_id, stat) is None
    await remove_lock_file(storage, stat.file_id, stat.name)
    assert not lock.exists()
    # a desktop user's lock file is never removed, and not overwritten
    lock.write_bytes(b"Bob,bob,BOB-PC,25.11.2026 05:40,file:///x;")
    await write_lock_file(storage, stat.file_id, stat, "Ada Lovelace")
    await remove_lock_file(storage, stat.file_id, stat.name)
    assert lock.read_bytes().startswith(b"Bob,")
    # no lock files for non-ODF formats
    docx = await storage.resolve("Quarterly.docx")
    await write_lock_file(storage, docx.file_id, docx, "Ada")
    assert not (tmp_path / "data" / ".~lock.Quarterly.docx#").exists()
