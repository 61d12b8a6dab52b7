"""Refused saves are kept once, within their quota and age, over the real HTTP surface.

The saves are refused because they carry a lock other than the file's (the editor lost its
lock), so each one is kept before its 409. What is not kept, or removed later, is logged as
``kept copy dropped (<reason>)`` and counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.wopi import IOP_SECRET, TOKEN_SECRET, OpenedFile, open_file
from wopibridge.app import create_app
from wopibridge.config import load_settings

Client = Callable[[web.Application], Awaitable[TestClient]]
ORIGINAL = b"the file as it is"


def make_app(tmp_path: Path, **recovery: int) -> web.Application:
    env = {
        "WOPIBRIDGE_STORAGE_ROOT": str(tmp_path / "data"),
        "WOPIBRIDGE_SERVER_STATE_DIR": str(tmp_path / "state"),
        "WOPIBRIDGE_SECURITY_TOKEN_SECRET": TOKEN_SECRET,
        "WOPIBRIDGE_SECURITY_IOP_SECRET": IOP_SECRET,
    }
    for key, value in recovery.items():
        env[f"WOPIBRIDGE_RECOVERY_{key.upper()}"] = str(value)
    return create_app(load_settings(None, env=env))


async def opened_doc(tmp_path: Path, client: TestClient, user: str = "ann") -> OpenedFile:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if not (data / "doc.odt").exists():
        (data / "doc.odt").write_bytes(ORIGINAL)
    opened = await open_file(client, "doc.odt", userid=f"{user}@idp", username=user)
    if user == "ann":
        assert (await opened.lock("the-lock")).status == 200
    return opened


def kept(tmp_path: Path) -> list[bytes]:
    """The content of every kept copy: beside the file and in the recovery folder."""
    beside = [p for p in (tmp_path / "data").iterdir() if "(conflict " in p.name]
    recovery = tmp_path / "state" / "recovery"
    elsewhere = [p for p in recovery.iterdir() if p.is_file()] if recovery.exists() else []
    return sorted(p.read_bytes() for p in beside + elsewhere)


async def dropped(client: TestClient, reason: str) -> int:
    text = await (await client.get("/metrics")).text()
    line = f'wopibridge_kept_copies_dropped_total{{reason="{reason}"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return int(float(row[len(line) :]))
    return 0


async def refused(opened: OpenedFile, body: bytes) -> None:
    answer = await opened.put_file(body, lock="a-lost-lock")
    assert answer.status == 409, await answer.text()


async def test_the_same_content_is_kept_once_per_file_and_user(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = await aiohttp_client(make_app(tmp_path))
    ann = await opened_doc(tmp_path, client)
    for _ in range(5):
        await refused(ann, b"ann's work")
    assert kept(tmp_path) == [b"ann's work"]
    assert await dropped(client, "duplicate") == 4
    assert caplog.text.count("kept copy dropped (duplicate)") == 4
    # other content, or the same content from another user, is kept
    await refused(ann, b"ann's other work")
    bob = await opened_doc(tmp_path, client, user="bob")
    await refused(bob, b"ann's work")
    assert kept(tmp_path) == sorted([b"ann's work", b"ann's work", b"ann's other work"])
    # a kept copy that was removed no longer counts: the content is kept again
    for path in (tmp_path / "data").iterdir():
        if "(conflict ann" in path.name:
            path.unlink()
    recovery = tmp_path / "state" / "recovery"
    for path in recovery.iterdir():
        if path.is_file() and path.read_bytes() == b"ann's work":
            path.unlink()
    await refused(ann, b"ann's work")
    assert kept(tmp_path).count(b"ann's work") == 2
    assert (tmp_path / "data" / "doc.odt").read_bytes() == ORIGINAL


async def test_quota_per_user_and_in_all(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = await aiohttp_client(make_app(tmp_path, max_bytes_per_user=300_000, max_bytes=450_000))
    ann = await opened_doc(tmp_path, client)
    bodies = [os.urandom(100_000) for _ in range(4)]
    for body in bodies:
        await refused(ann, body)
    assert kept(tmp_path) == sorted(bodies[:3])
    assert await dropped(client, "quota") == 1
    assert "the kept copies of user ann@idp would exceed 300000 bytes" in caplog.text
    bob = await opened_doc(tmp_path, client, user="bob")
    theirs = [os.urandom(100_000) for _ in range(2)]
    for body in theirs:
        await refused(bob, body)
    assert kept(tmp_path) == sorted([*bodies[:3], theirs[0]])
    assert await dropped(client, "quota") == 2
    assert "the kept copies would exceed 450000 bytes" in caplog.text


async def test_kept_copies_expire(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = await aiohttp_client(make_app(tmp_path, max_age=2))
    ann = await opened_doc(tmp_path, client)
    await refused(ann, b"first")  # beside the file
    await refused(ann, b"second")  # the same minute: recovery folder
    await refused(ann, b"third")
    assert kept(tmp_path) == [b"first", b"second", b"third"]
    await asyncio.sleep(3.2)
    # the upkeep removed the recovery copies on its own
    assert kept(tmp_path) == [b"first"]
    assert await dropped(client, "expired") == 2
    # the copy beside the file goes once its storage is at hand again (the next kept save),
    # and only while nobody changed it
    await refused(ann, b"fourth")
    assert kept(tmp_path) == [b"fourth"]
    assert await dropped(client, "expired") == 3
    await asyncio.sleep(2.2)
    copy = next(p for p in (tmp_path / "data").iterdir() if "(conflict " in p.name)
    copy.write_bytes(b"fourth, edited by ann since")
    await refused(ann, b"fifth")
    assert copy.read_bytes() == b"fourth, edited by ann since"
    assert (tmp_path / "data" / "doc.odt").read_bytes() == ORIGINAL


async def test_quota_is_per_user_id_not_display_name(
    tmp_path: Path, aiohttp_client: Client
) -> None:
    """Two users both shown as "Ann" each have their own quota; one user under three display
    names has one."""
    client = await aiohttp_client(make_app(tmp_path, max_bytes_per_user=250_000))
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "doc.odt").write_bytes(ORIGINAL)

    async def refused_as(user_id: str, name: str, body: bytes) -> None:
        opened = await open_file(client, "doc.odt", userid=user_id, username=name)
        await refused(opened, body)

    owner = await open_file(client, "doc.odt", userid="owner@idp", username="Owner")
    assert (await owner.lock("the-lock")).status == 200
    first, second = os.urandom(100_000), os.urandom(100_000)
    await refused_as("ann-1@idp", "Ann", first)
    await refused_as("ann-1@idp", "Ann", second)
    # another person called Ann: her own quota, not the first Ann's
    theirs = os.urandom(100_000)
    await refused_as("ann-2@idp", "Ann", theirs)
    assert kept(tmp_path) == sorted([first, second, theirs])
    assert await dropped(client, "quota") == 0
    # the first Ann under other names: still her quota, now full
    await refused_as("ann-1@idp", "Ann L.", os.urandom(100_000))
    await refused_as("ann-1@idp", "A. Lovelace", os.urandom(100_000))
    assert len(kept(tmp_path)) == 3
    assert await dropped(client, "quota") == 2


async def test_copies_kept_before_empty_saves_count_and_expire(
    tmp_path: Path, aiohttp_client: Client
) -> None:
    """The previous content kept before an empty save counts against the user's quota and is
    in the index like every kept copy (so it expires)."""
    client = await aiohttp_client(
        make_app(tmp_path, max_bytes_per_user=1_000_000, max_bytes=3_000_000, max_age=3)
    )
    ann = await opened_doc(tmp_path, client)
    for _ in range(8):
        answer = await ann.put_file(os.urandom(500_000), lock="the-lock")
        assert answer.status == 200, await answer.text()
        answer = await ann.put_file(b"", lock="the-lock")
        assert answer.status == 200, await answer.text()
    recovery = tmp_path / "state" / "recovery"
    held = sum(p.stat().st_size for p in recovery.iterdir() if p.is_file())
    assert 0 < held <= 1_000_000
    assert await dropped(client, "quota") == 6
    index = sqlite3.connect(tmp_path / "state" / "kept-copies.sqlite3")
    rows = index.execute("SELECT user, size FROM kept").fetchall()
    index.close()
    assert rows == [("ann@idp", 500_000), ("ann@idp", 500_000)]
    # indexed, so they expire with the rest
    await asyncio.sleep(4.5)
    assert not [p for p in recovery.iterdir() if p.is_file()]


async def test_a_final_save_is_kept_and_answered_200_or_refused_413_when_it_cannot_be(
    tmp_path: Path, aiohttp_client: Client
) -> None:
    """An OnlyOffice save (``X-WOPI-Editors``) with a stale timestamp: kept and let go (200)
    while the quota allows, refused with 413 (nothing written, nothing kept) when it does not,
    so that the editor holds on to it."""
    client = await aiohttp_client(make_app(tmp_path, max_bytes_per_user=1500))
    ann = await opened_doc(tmp_path, client)
    stale = {
        "X-WOPI-Editors": "ann@idp",
        "X-LOOL-WOPI-Timestamp": "2020-01-01T00:00:00.0000000Z",
        "X-LOOL-WOPI-IsExitSave": "true",
    }
    small, large = os.urandom(1000), os.urandom(2000)
    answer = await ann.put_file(small, lock="the-lock", headers=stale)
    assert answer.status == 200, await answer.text()
    modified = (await ann.check_file_info())["LastModifiedTime"]
    assert (await answer.json())["LastModifiedTime"] == modified  # the file's, unchanged
    answer = await ann.put_file(large, lock="the-lock", headers=stale)
    assert answer.status == 413
    assert await answer.text() == "The save is over the quota of kept copies; nothing was written"
    assert (tmp_path / "data" / "doc.odt").read_bytes() == ORIGINAL
    assert kept(tmp_path) == [small]
    assert await dropped(client, "quota") == 1
    # the same save again is already kept: let go with 200, not kept twice
    assert (await ann.put_file(small, lock="the-lock", headers=stale)).status == 200
    assert kept(tmp_path) == [small]
