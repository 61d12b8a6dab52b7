"""Three ``wopibridge serve`` instances over one WebDAV share (a real wsgidav) and one Redis.

WebDAV ids are the file's path as first seen; a rename through any instance is recorded in the
shared id map, so the old WOPISrc keeps working on every instance, the new path opens as the
same file, and the lock follows the rename.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.mesh.conftest import DavServer
from tests.support.fleet import Fleet, one_winner_per_round, open_on, running_fleet, wopi
from tests.support.procs import RedisServer


@pytest.fixture
def share(tmp_path: Path) -> Iterator[tuple[DavServer, Path]]:
    root = tmp_path / "share"
    (root / "team").mkdir(parents=True)
    (root / "team" / "plan.docx").write_bytes(b"v1")
    dav = DavServer(root)
    dav.start()
    try:
        yield dav, root
    finally:
        dav.stop()


@pytest.fixture
def fleet(
    tmp_path: Path, share: tuple[DavServer, Path], redis_server: RedisServer
) -> Iterator[Fleet]:
    dav, _ = share
    with running_fleet(tmp_path / "fleet", redis_server.url, **{"storages.dav": dav.table()}) as f:
        yield f
        assert "Traceback" not in f.logs()


def _id(src: str) -> str:
    return src.rsplit("/", 1)[1]


async def test_ids_locks_and_renames_agree_on_every_instance(
    fleet: Fleet, share: tuple[DavServer, Path]
) -> None:
    _, root = share
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="dav")
        for other in (1, 2):
            again, _, _ = await open_on(session, fleet, other, "team/plan.docx", endpoint="dav")
            assert _id(again) == _id(src)
            status, _, content = await wopi(session, fleet.url_on(src, other), token, contents=True)
            assert (status, content) == (200, b"v1")

        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        for other in (1, 2):
            status, headers, _ = await wopi(
                session, fleet.url_on(src, other), token, "LOCK", {"X-WOPI-Lock": "L2"}
            )
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L")

        status, _, _ = await wopi(
            session,
            fleet.url_on(src, 1),
            token,
            "RENAME_FILE",
            {"X-WOPI-RequestedName": "final", "X-WOPI-Lock": "L"},
        )
        assert status == 200
        assert (root / "team" / "final.docx").read_bytes() == b"v1"
        for other in (0, 2):
            status, _, body = await wopi(session, fleet.url_on(src, other), token)
            assert status == 200, body
            assert json.loads(body)["BaseFileName"] == "final.docx"
            status, headers, _ = await wopi(session, fleet.url_on(src, other), token, "GET_LOCK")
            assert (status, headers.get("X-WOPI-Lock")) == (200, "L"), "the lock followed"
        renamed, _, _ = await open_on(session, fleet, 2, "team/final.docx", endpoint="dav")
        assert _id(renamed) == _id(src), "the new path opens as the same file"

        # a new file at the old path is another file, with its own lock
        (root / "team" / "plan.docx").write_bytes(b"another")
        newcomer, new_token, _ = await open_on(session, fleet, 1, "team/plan.docx", endpoint="dav")
        assert _id(newcomer) != _id(src)
        status, _, _ = await wopi(session, newcomer, new_token, "LOCK", {"X-WOPI-Lock": "N"})
        assert status == 200

        status, _, _ = await wopi(
            session,
            fleet.url_on(src, 2),
            token,
            "PUT",
            {"X-WOPI-Lock": "L"},
            b"v2",
            contents=True,
        )
        assert status == 200
    assert (root / "team" / "final.docx").read_bytes() == b"v2"
    assert (root / "team" / "plan.docx").read_bytes() == b"another"


@pytest.mark.slow
async def test_sixty_clients_over_three_instances_one_winner_per_round(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "team/plan.docx", endpoint="dav")
        await one_winner_per_round(session, fleet, src, token)
