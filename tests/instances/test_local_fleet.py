"""Three ``wopibridge serve`` instances over one local folder and one Redis are one service.

Each instance has its own state folder; they share the data folder, the token secret and the
Redis, as pods with a shared volume behind a load balancer would. Every WOPI call below is sent
to an instance other than the one that minted the WOPISrc.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.fleet import Fleet, one_winner_per_round, open_on, running_fleet, wopi
from tests.support.procs import RedisServer
from tests.support.wopi import IOP_SECRET
from wopibridge.storage.xattrid import ATTRIBUTE


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "report.docx").write_bytes(b"v1")
    return folder


@pytest.fixture
def fleet(tmp_path: Path, data: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    with running_fleet(tmp_path / "fleet", redis_server.url, storage={"root": str(data)}) as f:
        yield f
        assert "Traceback" not in f.logs()


async def test_a_wopisrc_minted_by_any_instance_works_on_every_other(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as session:
        ids = set()
        for minter in range(3):
            src, token, _ = await open_on(session, fleet, minter, "report.docx")
            ids.add(src.rsplit("/", 1)[1])
            for other in range(3):
                status, _, body = await wopi(session, fleet.url_on(src, other), token)
                assert status == 200, body
                status, _, content = await wopi(
                    session, fleet.url_on(src, other), token, contents=True
                )
                assert (status, content) == (200, b"v1")
        assert len(ids) == 1, "every instance names the file with the same id"


async def test_a_lock_through_one_instance_is_a_conflict_through_the_others(
    fleet: Fleet, data: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        status, _, _ = await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L-first"})
        assert status == 200
        for other in (1, 2):
            url = fleet.url_on(src, other)
            status, headers, _ = await wopi(session, url, token, "LOCK", {"X-WOPI-Lock": "L2"})
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L-first")
            status, headers, _ = await wopi(
                session, url, token, "PUT", {"X-WOPI-Lock": "L2"}, b"theirs", contents=True
            )
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L-first")
        # a second open through another instance names the same file, and sees the lock
        src2, token2, _ = await open_on(session, fleet, 2, "report.docx")
        status, headers, _ = await wopi(session, src2, token2, "GET_LOCK")
        assert (status, headers.get("X-WOPI-Lock")) == (200, "L-first")
        status, _, _ = await wopi(
            session,
            fleet.url_on(src, 1),
            token,
            "PUT",
            {"X-WOPI-Lock": "L-first"},
            b"v2",
            contents=True,
        )
        assert status == 200
    assert (data / "report.docx").read_bytes() == b"v2"
    assert os.getxattr(data / "report.docx", ATTRIBUTE).decode() == src.rsplit(".", 1)[1]


async def test_a_rename_through_one_is_seen_by_the_others_with_the_first_token(
    fleet: Fleet, data: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        status, _, _ = await wopi(
            session,
            fleet.url_on(src, 1),
            token,
            "RENAME_FILE",
            {"X-WOPI-RequestedName": "final", "X-WOPI-Lock": "L"},
        )
        assert status == 200
        for other in (0, 2):
            status, _, body = await wopi(session, fleet.url_on(src, other), token)
            assert status == 200
            assert (await _json(body))["BaseFileName"] == "final.docx"
            status, headers, _ = await wopi(session, fleet.url_on(src, other), token, "GET_LOCK")
            assert headers.get("X-WOPI-Lock") == "L"
        # a new file at the old name is another file, never the renamed one
        (data / "report.docx").write_bytes(b"a stranger")
        status, _, content = await wopi(session, fleet.url_on(src, 2), token, contents=True)
        assert (status, content) == (200, b"v1")
        stranger, _, _ = await open_on(session, fleet, 2, "report.docx")
        assert stranger.rsplit("/", 1)[1] != src.rsplit("/", 1)[1]

        # a delete through one instance is seen by the others at once
        unlocked = await wopi(session, fleet.url_on(src, 2), token, "UNLOCK", {"X-WOPI-Lock": "L"})
        assert unlocked[0] == 200
        assert (await wopi(session, fleet.url_on(src, 2), token, "DELETE"))[0] == 200
        assert not (data / "final.docx").exists()
        for other in (0, 1):
            assert (await wopi(session, fleet.url_on(src, other), token))[0] == 404


async def test_a_file_moved_outside_keeps_its_id_and_lock(fleet: Fleet, data: Path) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L-kept"}))[0] == 200
        (data / "archive").mkdir()
        os.rename(data / "report.docx", data / "archive" / "moved.docx")  # a plain mv
        # the old path no longer holds the file: 404, never another file
        assert (await wopi(session, fleet.url_on(src, 1), token))[0] == 404
        again, _, _ = await open_on(session, fleet, 1, "archive/moved.docx")
        assert again.rsplit("/", 1)[1] == src.rsplit("/", 1)[1], "its old id, back"
        status, headers, _ = await wopi(session, fleet.url_on(src, 2), token, "GET_LOCK")
        assert (status, headers.get("X-WOPI-Lock")) == (200, "L-kept")
        status, _, body = await wopi(session, fleet.url_on(src, 2), token)
        assert (await _json(body))["BaseFileName"] == "moved.docx"


async def test_a_symlink_alias_cannot_take_a_second_lock(fleet: Fleet, data: Path) -> None:
    (data / "alias.docx").symlink_to("report.docx")
    (data / "sub").mkdir()
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L-target"}))[0] == 200

        alias, alias_token, _ = await open_on(session, fleet, 1, "alias.docx")
        assert alias.rsplit("/", 1)[1] == src.rsplit("/", 1)[1], "the alias has the target's id"
        status, headers, _ = await wopi(
            session, alias, alias_token, "LOCK", {"X-WOPI-Lock": "L-alias"}
        )
        assert (status, headers.get("X-WOPI-Lock")) == (409, "L-target")
        status, _, _ = await wopi(
            session,
            alias,
            alias_token,
            "PUT",
            {"X-WOPI-Lock": "L-target"},
            b"v2",
            contents=True,
        )
        assert status == 200

        # another spelling of a name is refused, with the reason
        async with session.get(
            f"{fleet[2].url}/wopi/iop/openinapp",
            params={
                "fileid": "sub/../alias.docx",
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "u@idp",
                "appurl": "https://editor/x?",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        ) as resp:
            assert resp.status == 400
            assert "'..'" in await resp.text()
    assert (data / "alias.docx").is_symlink(), "a save through the alias keeps the link"
    assert (data / "report.docx").read_bytes() == b"v2"


async def test_a_hard_linked_file_opens_read_only(fleet: Fleet, data: Path) -> None:
    os.link(data / "report.docx", data / "second-name.docx")
    async with aiohttp.ClientSession() as session:
        src, token, body = await open_on(session, fleet, 0, "second-name.docx")
        assert "hard links" in body["forced-viewmode-reason"]
        first, _, _ = await open_on(session, fleet, 1, "report.docx")
        assert first.rsplit("/", 1)[1] == src.rsplit("/", 1)[1], "one inode, one id"
        status, _, info = await wopi(session, fleet.url_on(src, 2), token)
        assert status == 200
        assert (await _json(info))["UserCanWrite"] is False


@pytest.mark.slow
async def test_sixty_clients_over_three_instances_one_winner_per_round(fleet: Fleet) -> None:
    """25 rounds; in each, 60 clients with their own connections send Lock with their own
    lock id, spread over the three instances: exactly one gets 200, the others 409 naming
    the winner's lock."""
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "report.docx")
        await one_winner_per_round(session, fleet, src, token)


async def _json(body: bytes) -> dict[str, object]:
    return dict(json.loads(body))
