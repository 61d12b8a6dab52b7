"""The one contract every lock store passes, including atomicity under concurrency and expiry:
in-process, and Redis as one server, behind Sentinel and as a Cluster (both acknowledging each
lock write on one replica, ``min_replicas = 1``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.procs import RedisServer
from wopibridge.errors import Unavailable
from wopibridge.locks import LockResult, LockStore, MemoryLockStore, RedisConnection, RedisLockStore
from wopibridge.locks.base import CompanionLocks


@pytest.fixture(params=["memory", "redis", "sentinel", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LockStore]:
    if request.param == "memory":
        yield MemoryLockStore()
        return
    replicas = 0
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    elif request.param == "sentinel":
        url = request.getfixturevalue("sentinel_set").url()
        replicas = 1
    else:
        url = request.getfixturevalue("cluster_set").url()
        replicas = 1
    redis_store = RedisLockStore.from_url(
        url, prefix=f"contract{id(request)}:", min_replicas=replicas
    )
    yield redis_store
    await redis_store.close()


async def test_lock_refresh_conflict(store: LockStore) -> None:
    assert (await store.lock("f", "A")).ok
    assert (await store.lock("f", "A")).ok
    result = await store.lock("f", "B")
    assert not result.ok and result.current == "A"
    assert await store.get("f") == "A"
    assert await store.get("other") == ""


async def test_unlock(store: LockStore) -> None:
    miss = await store.unlock("f", "A")
    assert not miss.ok and miss.current == ""
    await store.lock("f", "A")
    wrong = await store.unlock("f", "B")
    assert not wrong.ok and wrong.current == "A"
    assert (await store.unlock("f", "A")).ok
    assert await store.get("f") == ""


async def test_unlock_and_relock(store: LockStore) -> None:
    unlocked = await store.unlock_and_relock("f", "A", "B")
    assert not unlocked.ok and unlocked.current == ""
    await store.lock("f", "A")
    wrong = await store.unlock_and_relock("f", "X", "B")
    assert not wrong.ok and wrong.current == "A"
    assert (await store.unlock_and_relock("f", "A", "B")).ok
    assert await store.get("f") == "B"


async def test_refresh(store: LockStore) -> None:
    assert not (await store.refresh("f", "A")).ok
    # timers wide enough for a replica's acknowledgement on a busy machine
    await store.lock("f", "A", ttl=1.0)
    await asyncio.sleep(0.6)
    assert (await store.refresh("f", "A", ttl=1.0)).ok
    await asyncio.sleep(0.6)
    assert await store.get("f") == "A"
    wrong = await store.refresh("f", "B")
    assert not wrong.ok and wrong.current == "A"


async def test_expiry(store: LockStore) -> None:
    await store.lock("f", "A", ttl=0.15)
    await asyncio.sleep(0.3)
    assert await store.get("f") == ""
    assert (await store.lock("f", "B")).ok


async def test_lock_ids_compared_verbatim(store: LockStore) -> None:
    lock_id = '{"S":"abc","F":1} ' + "ü" * 500
    await store.lock("f", lock_id)
    assert await store.get("f") == lock_id
    assert not (await store.lock("f", lock_id + " ")).ok
    assert not (await store.unlock("f", lock_id.upper())).ok


async def test_concurrent_lockers_one_winner(store: LockStore) -> None:
    for round_ in range(10):
        key = f"race{round_}"
        results = await asyncio.gather(*(store.lock(key, f"L{i}") for i in range(50)))
        winners = [r for r in results if r.ok]
        assert len(winners) == 1
        assert all(r.current == winners[0].current for r in results)


def companion(store: LockStore) -> CompanionLocks:
    assert isinstance(store, CompanionLocks)
    return store


async def test_values_beside_a_lock_ride_on_its_calls(store: LockStore) -> None:
    """The value at ``key + suffix`` (one Cluster slot with the lock) is answered by the lock
    calls that took effect, taken by Unlock, and seen by ``get`` as a key of its own."""
    beside = companion(store)
    assert await beside.lock_reading("f", "A", 60, "\x00t") == (LockResult(True, "A"), "")
    await beside.keep("f", "\x00t", "token 1", 60)
    assert await store.get("f\x00t") == "token 1"
    assert await beside.lock_reading("f", "A", 60, "\x00t") == (LockResult(True, "A"), "token 1")
    # a call that does not take effect answers the holder, and no value
    assert await beside.lock_reading("f", "B", 60, "\x00t") == (LockResult(False, "A"), "")
    assert await beside.refresh_reading("f", "A", 60, "\x00t") == (
        LockResult(True, "A"),
        "token 1",
    )
    assert await beside.refresh_reading("f", "B", 60, "\x00t") == (LockResult(False, "A"), "")
    await beside.keep("f", "\x00t", "token 2", 60)  # replaces
    assert await beside.unlock_and_relock_reading("f", "A", "C", 60, "\x00t") == (
        LockResult(True, "C"),
        "token 2",
    )
    assert await beside.unlock_and_relock_reading("f", "A", "D", 60, "\x00t") == (
        LockResult(False, "C"),
        "",
    )
    assert await beside.unlock_taking("f", "A", "\x00t") == (LockResult(False, "C"), "")
    assert await store.get("f\x00t") == "token 2"  # a refused unlock leaves it
    assert await beside.unlock_taking("f", "C", "\x00t") == (LockResult(True, ""), "token 2")
    assert await store.get("f") == ""
    assert await store.get("f\x00t") == ""
    await beside.lock_reading("f", "A", 60, "\x00t")
    assert await beside.unlock_taking("f", "A", "\x00t") == (LockResult(True, ""), "")


async def test_kept_value_expires(store: LockStore) -> None:
    await companion(store).keep("f", "\x00t", "token", 0.15)
    await asyncio.sleep(0.3)
    assert await store.get("f\x00t") == ""


async def test_shares_keys_only_with_its_own_keyspace(store: LockStore) -> None:
    beside = companion(store)
    assert beside.shares_keys(store)
    assert not beside.shares_keys(MemoryLockStore())
    if isinstance(store, RedisLockStore):
        target = store.connection.target
        same = RedisLockStore(RedisConnection(target), prefix=store.prefix)
        other = RedisLockStore(RedisConnection(target), prefix=store.prefix + "x")
        assert beside.shares_keys(same) and not beside.shares_keys(other)
        await companion(same).keep("f", "\x00t", "seen", 60)
        assert (await beside.lock_reading("f", "A", 60, "\x00t"))[1] == "seen"
        await same.close()
        await other.close()


async def test_redis_down_is_unavailable(tmp_path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    store = RedisLockStore.from_url(server.url)
    await store.lock("f", "A")
    server.kill()
    with pytest.raises(Unavailable):
        await store.get("f")
    with pytest.raises(Unavailable):
        await store.ping()
    server.start()
    await store.ping()
    assert (await store.lock("f", "B")).ok  # Redis kept nothing across the restart
    await store.close()
    server.stop()
