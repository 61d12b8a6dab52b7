"""One contract for the bridge state stores: in-process, and Redis as one server of our own,
behind Sentinel and as a Cluster (every script touches one slot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.procs import RedisServer
from wopibridge.bridge.memory import MemoryBridgeStore
from wopibridge.bridge.redis import RedisBridgeStore
from wopibridge.bridge.state import BridgeStore, DocState
from wopibridge.errors import Unavailable


@pytest.fixture(params=["memory", "redis", "sentinel", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BridgeStore]:
    if request.param == "memory":
        yield MemoryBridgeStore()
        return
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    else:
        url = request.getfixturevalue(f"{request.param}_set").url()
    redis = RedisBridgeStore.from_url(url, prefix=f"t{id(request)}:")
    await redis.client.flushdb()
    try:
        yield redis
    finally:
        await redis.close()


def doc(docid: str = "d1", **changes: object) -> DocState:
    state = DocState(
        docid=docid,
        app="etherpad",
        origin_file_id="local.a",
        file_id="local.a",
        identity="local:a",
        name="a.txt",
        lock_id="L",
        version="v1",
        digest="x",
        ref="pad",
    )
    for key, value in changes.items():
        setattr(state, key, value)
    return state


async def test_create_once_then_put(store: BridgeStore) -> None:
    assert await store.create(doc(meta={"newline": "0"}))
    assert not await store.create(doc(version="other"))
    got = await store.get("d1")
    assert got is not None and got.version == "v1" and got.meta == {"newline": "0"}
    got.dirty = True
    await store.put(got)
    assert (await store.get("d1")) == got
    assert await store.docids() == ["d1"]
    assert await store.get("nope") is None


async def test_users_and_delete_if_unused(store: BridgeStore) -> None:
    await store.create(doc())
    await store.add_user("d1", "u1", "Ann")
    await store.add_user("d1", "u2", "Bob")
    assert await store.users("d1") == {"u1": "Ann", "u2": "Bob"}
    assert not await store.delete_if_unused("d1")
    assert await store.remove_user("d1", "u1") == 1
    assert await store.remove_user("d1", "u2") == 0
    assert await store.delete_if_unused("d1")
    assert await store.get("d1") is None and await store.docids() == []


async def test_save_requests_are_taken_once(store: BridgeStore) -> None:
    assert not await store.take_save_request("d1")
    await store.request_save("d1")
    assert await store.take_save_request("d1")
    assert not await store.take_save_request("d1")


async def test_one_claim_holder_until_the_lease_ends(store: BridgeStore) -> None:
    assert await store.claim("d1", "a", 0.3)
    assert await store.claim("d1", "a", 0.3)
    assert not await store.claim("d1", "b", 0.3)
    await asyncio.sleep(0.4)
    assert await store.claim("d1", "b", 0.3)
    await store.release("d1", "a")
    assert not await store.claim("d1", "a", 0.3)
    await store.release("d1", "b")
    assert await store.claim("d1", "a", 0.3)


async def test_concurrent_claims_have_one_winner(store: BridgeStore) -> None:
    results = await asyncio.gather(*(store.claim("d2", f"i{n}", 5) for n in range(20)))
    assert results.count(True) == 1


async def test_redis_down_is_unavailable(tmp_path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    redis = RedisBridgeStore.from_url(server.url)
    await redis.ping()
    server.kill()
    try:
        with pytest.raises(Unavailable, match="bridge state store"):
            await redis.docids()
    finally:
        await redis.close()
