"""Version history over two ``wopibridge serve`` instances sharing one local folder and one
Redis: saves through one instance, the history read, downloaded and restored through the other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.fleet import Fleet, open_on, running_fleet, wopi
from tests.support.procs import RedisServer
from tests.support.versionapi import CONTENTS, call, save, three_saves_then_restore, versions_of

COOL_AUTOSAVE = {"X-COOL-WOPI-IsAutosave": "true", "X-COOL-WOPI-IsModifiedByUser": "true"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "report.docx").write_bytes(b"v1")
    return folder


def _fleet(tmp_path: Path, data: Path, redis: RedisServer, **sections: Any) -> Iterator[Fleet]:
    storage = {"root": str(data), **sections.pop("storage", {})}
    with running_fleet(tmp_path / "fleet", redis.url, size=2, storage=storage, **sections) as fleet:
        yield fleet
        assert "Traceback" not in fleet.logs()


@pytest.fixture
def fleet(tmp_path: Path, data: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    yield from _fleet(tmp_path, data, redis_server)


async def test_saves_through_one_instance_are_versions_on_the_other(
    fleet: Fleet, data: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        versions, after = await three_saves_then_restore(
            session, fleet, src, token, data / "report.docx"
        )
        assert all(v["author"] for v in versions[:2]), "the saves' author"
        assert len(after) == 4, "the restored version stays, the replaced content is added"
        assert versions[-1]["id"] in [v["id"] for v in after]
        other = fleet.url_on(src, 1)
        contents = CONTENTS

        # a view token lists and downloads, but cannot restore
        _, view, _ = await open_on(session, fleet, 1, "report.docx", viewmode="VIEW_MODE_READ_ONLY")
        assert len(await versions_of(session, other, view)) == 4
        status, _, body = await call(
            session, "GET", f"{other}/versions/{after[1]['id']}/contents", view
        )
        assert (status, body) == (200, contents[2])
        status, _, _ = await call(
            session,
            "POST",
            f"{other}/versions/{after[1]['id']}/restore",
            view,
            **{"X-WOPI-Lock": "L"},
        )
        assert status in (401, 403)
        assert (data / "report.docx").read_bytes() == b"v1"

        # a secure-view token gets nothing: neither the list nor the bytes
        _, secure, _ = await open_on(
            session, fleet, 0, "report.docx", viewmode="VIEW_MODE_VIEW_ONLY"
        )
        for method, tail in (
            ("GET", "/versions"),
            ("GET", f"/versions/{after[1]['id']}/contents"),
            ("POST", f"/versions/{after[1]['id']}/restore"),
        ):
            status, _, body = await call(session, method, other + tail, secure)
            assert status in (401, 403, 404), (tail, status)
            assert contents[2] not in body

        # an unknown version, a version id that is no number
        for bad in ("123", "..%2F..%2Freport.docx", "x"):
            status, _, _ = await call(session, "GET", f"{other}/versions/{bad}/contents", token)
            assert status == 404


async def test_a_rename_and_an_outside_mv_keep_the_history(fleet: Fleet, data: Path) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        await save(session, src, token, b"v2", "L")
        await save(session, src, token, b"v3-", "L")
        status, _, _ = await wopi(
            session,
            fleet.url_on(src, 1),
            token,
            "RENAME_FILE",
            {"X-WOPI-RequestedName": "renamed", "X-WOPI-Lock": "L"},
        )
        assert status == 200
        assert [v["size"] for v in await versions_of(session, src, token)] == [2, 2]
        (data / "moved").mkdir()
        os.rename(data / "renamed.docx", data / "moved" / "elsewhere.docx")
        # opened at its new path, the file is the same file, with its id and its history
        moved, token, _ = await open_on(session, fleet, 1, "moved/elsewhere.docx")
        assert moved.rsplit("/", 1)[1] == src.rsplit("/", 1)[1]
        other = fleet.url_on(src, 1)
        versions = await versions_of(session, other, token)
        assert [v["size"] for v in versions] == [2, 2]
        status, _, body = await call(
            session, "GET", f"{other}/versions/{versions[1]['id']}/contents", token
        )
        assert (status, body) == (200, b"v1")
        await save(session, other, token, b"v4--", "L")
        assert [v["size"] for v in await versions_of(session, src, token)] == [3, 2, 2]


async def test_an_editing_session_leaves_what_the_rule_says(fleet: Fleet, data: Path) -> None:
    """Ten autosaves and an exit save in one session keep the content before the session;
    the exit save's content is kept when the next session saves."""
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "S1"}))[0] == 200
        for i in range(10):
            url = fleet.url_on(src, i % 2)
            await save(session, url, token, b"autosave %d" % i, "S1", COOL_AUTOSAVE)
        exit_flags = {"X-LOOL-WOPI-IsExitSave": "true", "X-LOOL-WOPI-IsAutosave": "false"}
        await save(session, src, token, b"exit save", "S1", exit_flags)
        assert (await wopi(session, src, token, "UNLOCK", {"X-WOPI-Lock": "S1"}))[0] == 200
        versions = await versions_of(session, fleet.url_on(src, 1), token)
        assert [v["size"] for v in versions] == [2], "only the content before the session"

        # the next session's first save keeps the exit save
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "S2"}))[0] == 200
        await save(session, src, token, b"next session", "S2", COOL_AUTOSAVE)
        versions = await versions_of(session, src, token)
        status, _, body = await call(
            session, "GET", f"{src}/versions/{versions[0]['id']}/contents", token
        )
        assert (status, body) == (200, b"exit save")
        assert len(versions) == 2

        # a save with no flags (a plain WOPI client) keeps the previous content every time
        await save(session, src, token, b"plain 1", "S2")
        await save(session, src, token, b"plain 2", "S2")
        assert len(await versions_of(session, src, token)) == 4


@pytest.fixture
def limited(tmp_path: Path, data: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    yield from _fleet(tmp_path, data, redis_server, versions={"max_count": 2})


async def test_limits_drop_the_oldest_and_count_it(limited: Fleet, data: Path) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, limited, 0, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        for body in (b"a2", b"a33", b"a444", b"a5555"):
            await save(session, src, token, body, "L")
        versions = await versions_of(session, limited.url_on(src, 1), token)
        assert [v["size"] for v in versions] == [4, 3]
        async with session.get(f"{limited[0].url}/metrics") as resp:
            metrics = await resp.text()
        assert 'wopibridge_versions_dropped_total{reason="count"} 2.0' in metrics
        assert "wopibridge_versions_kept_total 4.0" in metrics
        assert len(os.listdir(next((data / ".wopibridge" / "versions").iterdir()))) == 2


async def test_a_storage_with_versions_off_answers_clearly(
    tmp_path: Path, data: Path, redis_server: RedisServer
) -> None:
    for fleet in _fleet(tmp_path, data, redis_server, storage={"versions": False}):
        async with aiohttp.ClientSession() as session:
            src, token, _ = await open_on(session, fleet, 0, "report.docx")
            assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
            await save(session, src, token, b"v2", "L")
            status, _, body = await call(session, "GET", src + "/versions", token)
            assert status == 501
            assert b"keeps no versions" in body
        assert not (data / ".wopibridge" / "versions").exists()
