"""The id map contract, on each implementation: in memory, SQLite, and a real Redis."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.procs import RedisServer, free_port
from wopibridge.errors import Unavailable
from wopibridge.storage.idmap import Entry, IdMap, MemoryIdMap, SqliteIdMap
from wopibridge.storage.redis_idmap import RedisIdMap

_prefixes = itertools.count()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def ids(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IdMap]:
    store: IdMap
    if request.param == "memory":
        store = MemoryIdMap()
    elif request.param == "sqlite":
        store = SqliteIdMap(tmp_path / "state" / "local-files.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        store = RedisIdMap.from_url(server.url, f"idmap{next(_prefixes)}:", "local")
    yield store
    await store.close()


async def test_a_path_is_claimed_once(ids: IdMap) -> None:
    assert await ids.claim("a.odt", "id-a") == "id-a"
    assert await ids.claim("a.odt", "id-other") == "id-a"
    assert await ids.lookup("id-a") == Entry("a.odt")
    assert await ids.lookup("id-other") is None
    # a candidate naming another path already is refused
    assert await ids.claim("b.odt", "id-a") == ""


async def test_placing_moves_an_id_and_displaces_the_old_holder(ids: IdMap) -> None:
    await ids.place("one", "a.odt")
    await ids.place("one", "b.odt")
    assert await ids.lookup("one") == Entry("b.odt")
    assert await ids.claim("a.odt", "fresh") == "fresh", "the old path no longer names it"
    await ids.place("two", "b.odt")  # another file is at b.odt now
    assert await ids.claim("b.odt", "x") == "two"
    found = await ids.lookup("one")
    assert found is None or found.path is None


async def test_a_journalled_move(ids: IdMap) -> None:
    await ids.place("one", "a.odt")
    await ids.begin_move("one", "b.odt")
    assert await ids.lookup("one") == Entry("a.odt", "b.odt")
    await ids.finish_move("one", "a.odt", "b.odt")
    assert await ids.lookup("one") == Entry("b.odt")
    await ids.begin_move("one", "c.odt")
    await ids.abort_move("one")
    assert await ids.lookup("one") == Entry("b.odt")


async def test_forget_and_metadata(ids: IdMap) -> None:
    await ids.place("one", "a.odt")
    await ids.set_meta("one", "userinfo:u", "hello")
    assert await ids.get_meta("one", "userinfo:u") == "hello"
    assert await ids.get_meta("one", "other") is None
    await ids.forget("one", "a.odt")
    assert await ids.lookup("one") is None
    assert await ids.claim("a.odt", "two") == "two"
    await ids.ping()


async def test_an_unreachable_redis_is_a_503() -> None:
    store = RedisIdMap.from_url(f"redis://127.0.0.1:{free_port()}/0", "x:", "local")
    try:
        with pytest.raises(Unavailable):
            await store.lookup("one")
    finally:
        await store.close()
