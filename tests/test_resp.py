"""The lock store's pipelined Redis connection against a real redis-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.procs import RedisServer
from wopibridge.errors import Unavailable
from wopibridge.locks import RedisLockStore
from wopibridge.locks.resp import Endpoint, ReplyError, RespConnection


def test_endpoint_from_url() -> None:
    assert Endpoint.from_url("redis://127.0.0.1:6390/3") == Endpoint("127.0.0.1", 6390, db=3)
    secured = Endpoint.from_url("rediss://bridge:s%40cret@redis.example:6380/1")
    assert (secured.username, secured.password, secured.tls, secured.db) == (
        "bridge",
        "s@cret",
        True,
        1,
    )
    assert Endpoint.from_url("unix:///run/redis.sock?db=2").path == "/run/redis.sock"
    assert Endpoint.from_url("unix:///run/redis.sock?db=2").db == 2


async def test_pipelined_replies_reach_their_callers(redis_server: RedisServer) -> None:
    conn = RespConnection(Endpoint.from_url(redis_server.url))
    await asyncio.gather(*(conn.call("SET", f"resp:{i}", f"value {i}") for i in range(300)))
    values = await asyncio.gather(*(conn.call("GET", f"resp:{i}") for i in range(300)))
    assert values == [f"value {i}".encode() for i in range(300)]
    assert await conn.call("GET", "resp:missing") is None
    with pytest.raises(ReplyError):
        await conn.call("NOSUCHCOMMAND")
    assert await conn.call("PING") == b"PONG"  # an error reply does not desynchronise
    await conn.close()


async def test_password_and_database(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra_args=("--requirepass", "p@ssw0rd"))
    server.start()
    try:
        url = f"redis://:p%40ssw0rd@127.0.0.1:{server.port}/2"
        store = RedisLockStore.from_url(url, prefix="auth:")
        assert (await store.lock("f", "L")).ok
        check = RespConnection(Endpoint.from_url(url))
        assert await check.call("GET", "auth:lock:f") == b"L"
        other_db = RespConnection(Endpoint.from_url(url.replace("/2", "/0")))
        assert await other_db.call("GET", "auth:lock:f") is None
        wrong = RedisLockStore.from_url(f"redis://:nope@127.0.0.1:{server.port}/0")
        with pytest.raises(Unavailable):
            await wrong.ping()
        for conn in (check, other_db):
            await conn.close()
        await store.close()
        await wrong.close()
    finally:
        server.stop()


async def test_calls_in_flight_fail_cleanly_when_redis_dies(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    store = RedisLockStore.from_url(server.url)
    await store.ping()
    blocked = asyncio.ensure_future(store.connection.call("BLPOP", "never", 0))
    await asyncio.sleep(0.1)
    server.kill()
    with pytest.raises(ConnectionError):
        await blocked
    with pytest.raises(Unavailable):
        await store.lock("f", "L")
    server.start()
    assert (await store.lock("f", "L")).ok
    await store.close()
    server.stop()


def test_works_on_uvloop(redis_server: RedisServer) -> None:
    """Deployments often run aiohttp on uvloop, whose transports are not asyncio classes."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[object]:
        conn = RespConnection(Endpoint.from_url(redis_server.url))
        try:
            await conn.call("SET", "uv:key", "v")
            return list(await asyncio.gather(*(conn.call("GET", "uv:key") for _ in range(50))))
        finally:
            await conn.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == [b"v"] * 50
