"""One writer per local file across instances and across sites sharing the folder.

Real ``wopibridge serve`` processes over one data folder: two instances on one redis-server
(one site), and, for the site tests, a second site with its own redis-server. Each race sends
its two requests at once to different instances; the disk is then read directly (the id each
file carries) to check what the answers promised.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.fleet import Fleet, local_fleet, open_on, wopi
from tests.support.folder import backend_id, carriers, lock_files
from tests.support.procs import RedisServer
from tests.support.procs import redis_server as own_redis


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def fleet(tmp_path: Path, data: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    with local_fleet(tmp_path / "fleet", redis_server.url, data) as f:
        yield f


@pytest.fixture
def other_site(tmp_path: Path, data: Path) -> Iterator[Fleet]:
    """A second site over the same folder, with its own redis-server."""
    (tmp_path / "redis-b").mkdir()
    with (
        own_redis(tmp_path / "redis-b") as own,
        local_fleet(tmp_path / "site-b", own.url, data, size=1) as f,
    ):
        yield f


async def test_putfile_racing_renamefile_on_another_instance(fleet: Fleet, data: Path) -> None:
    """Every PutFile answered 200 is in the file its id resolves to, every other one is in no
    file, and the id is carried by exactly one file, whatever order the two land in."""
    (data / "race.docx").write_bytes(b"v0")
    rounds = 120
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "race.docx")
        file_id = backend_id(src)
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
        expected = b"v0"
        for n in range(rounds):
            body = f"body {n}".encode()
            put, rename = await asyncio.gather(
                wopi(session, src, token, "PUT", {"X-WOPI-Lock": "L"}, body, contents=True),
                wopi(
                    session,
                    fleet.url_on(src, 1),
                    token,
                    "RENAME_FILE",
                    {"X-WOPI-RequestedName": f"race {n}", "X-WOPI-Lock": "L"},
                ),
            )
            assert rename[0] == 200, rename
            if put[0] == 200:
                expected = body
            held = carriers(data, file_id)
            assert len(held) == 1, (n, put[0], held)
            assert held[0].read_bytes() == expected, (n, put[0])
            status, _, content = await wopi(session, fleet.url_on(src, n % 2), token, contents=True)
            assert (status, content) == (200, expected), n
            if put[0] != 200:
                assert held[0].read_bytes() != body, f"round {n}: a save answered {put[0]} landed"


async def test_deletefile_racing_renamefile_leaves_nothing_of_the_id(
    fleet: Fleet, data: Path
) -> None:
    """A DeleteFile answered 200 leaves no file carrying the id under any name, on the same
    instance as the rename or on the other one."""
    rounds = 60
    async with aiohttp.ClientSession() as session:
        for n in range(rounds):
            (data / f"doomed {n}.docx").write_bytes(b"x")
            src, token, _ = await open_on(session, fleet, n % 2, f"doomed {n}.docx")
            file_id = backend_id(src)
            delete, rename = await asyncio.gather(
                wopi(session, fleet.url_on(src, n % 2), token, "DELETE"),
                wopi(
                    session,
                    fleet.url_on(src, (n // 2) % 2),
                    token,
                    "RENAME_FILE",
                    {"X-WOPI-RequestedName": f"saved {n}"},
                ),
            )
            assert delete[0] in (200, 404) and rename[0] in (200, 404), (n, delete, rename)
            left = carriers(data, file_id)
            if delete[0] == 200:
                assert left == [], (n, rename[0], left)
                for other in (0, 1):
                    assert (await wopi(session, fleet.url_on(src, other), token))[0] == 404
            else:
                assert len(left) == 1, (n, left)


async def test_a_second_site_with_its_own_redis_cannot_take_the_lock_nor_save(
    fleet: Fleet, other_site: Fleet, data: Path
) -> None:
    """Site A (two instances, one Redis) and site B (its own Redis) on one folder: one lock
    at a time, seen by both through the folder; A's two instances still act as one host."""
    (data / "shared.docx").write_bytes(b"v1")
    async with aiohttp.ClientSession() as session:
        a_src, a_token, _ = await open_on(session, fleet, 0, "shared.docx")
        b_src, b_token, _ = await open_on(session, other_site, 0, "shared.docx")
        assert backend_id(a_src) == backend_id(b_src), "the id is on the file: one id"

        assert (await wopi(session, a_src, a_token, "LOCK", {"X-WOPI-Lock": "A-1"}))[0] == 200
        status, headers, _ = await wopi(session, b_src, b_token, "LOCK", {"X-WOPI-Lock": "B-1"})
        assert (status, headers.get("X-WOPI-Lock")) == (409, "A-1")
        status, headers, _ = await wopi(session, b_src, b_token, "GET_LOCK")
        assert (status, headers.get("X-WOPI-Lock")) == (200, "A-1")
        status, headers, _ = await wopi(
            session, b_src, b_token, "PUT", {"X-WOPI-Lock": "B-1"}, b"site B", contents=True
        )
        assert (status, headers.get("X-WOPI-Lock")) == (409, "A-1")
        for op in ("DELETE", "RENAME_FILE"):
            status, _, _ = await wopi(
                session, b_src, b_token, op, {"X-WOPI-RequestedName": "theirs"}
            )
            assert status == 409, op
        assert (data / "shared.docx").read_bytes() == b"v1"

        # site A's other instance saves, refreshes and unlocks with A's lock
        a1 = fleet.url_on(a_src, 1)
        lock = {"X-WOPI-Lock": "A-1"}
        assert (await wopi(session, a1, a_token, "PUT", lock, b"site A", contents=True))[0] == 200
        assert (await wopi(session, a1, a_token, "REFRESH_LOCK", lock))[0] == 200
        status, _, _ = await wopi(
            session, a1, a_token, "LOCK", {"X-WOPI-Lock": "A-2", "X-WOPI-OldLock": "A-1"}
        )
        assert status == 200
        status, headers, _ = await wopi(session, b_src, b_token, "LOCK", {"X-WOPI-Lock": "B-1"})
        assert (status, headers.get("X-WOPI-Lock")) == (409, "A-2")
        assert (await wopi(session, a1, a_token, "UNLOCK", {"X-WOPI-Lock": "A-2"}))[0] == 200
        assert (data / "shared.docx").read_bytes() == b"site A"

        # now B takes it, and A is refused in turn
        assert (await wopi(session, b_src, b_token, "LOCK", {"X-WOPI-Lock": "B-1"}))[0] == 200
        status, headers, _ = await wopi(session, a1, a_token, "LOCK", {"X-WOPI-Lock": "A-3"})
        assert (status, headers.get("X-WOPI-Lock")) == (409, "B-1")
        status, _, _ = await wopi(
            session, b_src, b_token, "PUT", {"X-WOPI-Lock": "B-1"}, b"site B", contents=True
        )
        assert status == 200
        assert (await wopi(session, b_src, b_token, "UNLOCK", {"X-WOPI-Lock": "B-1"}))[0] == 200


async def test_two_sites_racing_lock_have_one_winner_per_round(
    fleet: Fleet, other_site: Fleet, data: Path
) -> None:
    (data / "contended.docx").write_bytes(b"v1")
    instances = [(fleet, 0), (fleet, 1), (other_site, 0)]
    async with aiohttp.ClientSession() as session:
        opened = [await open_on(session, site, i, "contended.docx") for site, i in instances]
        for round_ in range(20):

            async def lock(c: int, round_: int = round_) -> tuple[int, str, str]:
                src, token, _ = opened[c % len(opened)]
                lock_id = f"R{round_}-C{c}"
                async with aiohttp.ClientSession() as own:
                    status, headers, _ = await wopi(
                        own, src, token, "LOCK", {"X-WOPI-Lock": lock_id}
                    )
                return status, headers.get("X-WOPI-Lock", ""), lock_id

            results = await asyncio.gather(*(lock(c) for c in range(12)))
            winners = [lock_id for status, _, lock_id in results if status == 200]
            assert len(winners) == 1, (round_, results)
            # a refusal names the winner, or a lock of this round that its site's store
            # granted for an instant before the folder refused it (and it was given back)
            refused = [(status, held) for status, held, _ in results if status != 200]
            assert all(status == 409 and held.startswith(f"R{round_}-") for status, held in refused)
            winner = int(winners[0].rsplit("C", 1)[1]) % len(opened)
            src, token, _ = opened[winner]
            status, _, _ = await wopi(session, src, token, "UNLOCK", {"X-WOPI-Lock": winners[0]})
            assert status == 200


async def test_lock_rename_unlock_over_two_instances_leaves_no_lock_file(
    fleet: Fleet, data: Path
) -> None:
    """Lock on one instance, Rename on the other, Unlock on the first, each sent as soon as
    the previous answered: no ``.~lock.*#`` file may stay."""
    async with aiohttp.ClientSession() as session:
        for n in range(8):
            (data / f"doc{n}.odt").write_bytes(b"odt")
            src, token, _ = await open_on(session, fleet, 0, f"doc{n}.odt", appname="collabora")
            lock = {"X-WOPI-Lock": f"L{n}"}
            assert (await wopi(session, src, token, "LOCK", lock))[0] == 200
            status, _, _ = await wopi(
                session,
                fleet.url_on(src, 1),
                token,
                "RENAME_FILE",
                {"X-WOPI-RequestedName": f"moved{n}", **lock},
            )
            assert status == 200
            assert (await wopi(session, src, token, "UNLOCK", lock))[0] == 200
        await asyncio.sleep(1.5)
        assert lock_files(data) == []


async def test_a_record_held_by_another_site_refuses_the_commit(fleet: Fleet, data: Path) -> None:
    """The commit itself checks the lock at the owner under the file's mutex: a site whose
    own Redis still says it holds the lock, while another site holds the folder's lock, is
    refused (409 naming that lock), and its save is kept beside the file, not lost."""
    (data / "held.docx").write_bytes(b"v1")
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 0, "held.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "ours"}))[0] == 200
        [record] = (data / ".wopibridge" / "locks").iterdir()
        entry = json.loads(record.read_text())
        record.write_text(json.dumps({**entry, "site": "elsewhere", "lock_id": "theirs"}))
        status, headers, _ = await wopi(
            session,
            fleet.url_on(src, 1),
            token,
            "PUT",
            {"X-WOPI-Lock": "ours"},
            b"our edit",
            contents=True,
        )
        assert (status, headers.get("X-WOPI-Lock")) == (409, "theirs")
        assert (data / "held.docx").read_bytes() == b"v1"
        kept = [p for p in data.iterdir() if "(conflict " in p.name]
        assert [p.read_bytes() for p in kept] == [b"our edit"]
