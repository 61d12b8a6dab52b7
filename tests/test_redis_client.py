"""The one Redis client against real redis-servers: URLs, credentials, scripts, failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.procs import RedisServer
from wopibridge.config import ConfigError, load_settings
from wopibridge.config.redisurl import RedisTarget, parse_lock_url
from wopibridge.errors import Unavailable
from wopibridge.locks import RedisLockStore
from wopibridge.locks.client import RedisConnection
from wopibridge.locks.redis import LOCK, tagged


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("memory://", RedisTarget("memory")),
        ("redis://127.0.0.1:6390/3", RedisTarget("redis", (("127.0.0.1", 6390),), db=3)),
        ("redis://redis.example", RedisTarget("redis", (("redis.example", 6379),))),
        (
            "rediss://bridge:s%40cret@redis.example:6380/1",
            RedisTarget(
                "redis",
                (("redis.example", 6380),),
                db=1,
                username="bridge",
                password="s@cret",
                tls=True,
            ),
        ),
        ("unix:///run/redis.sock?db=2", RedisTarget("redis", path="/run/redis.sock", db=2)),
        (
            "redis+sentinel://:pw@s1:26379,s2:26380,[::1]:26381/wopi/4",
            RedisTarget(
                "sentinel",
                (("s1", 26379), ("s2", 26380), ("::1", 26381)),
                service="wopi",
                db=4,
                password="pw",
            ),
        ),
        (
            "rediss+sentinel://s1:26379/wopi",
            RedisTarget("sentinel", (("s1", 26379),), service="wopi", tls=True),
        ),
        ("redis+cluster://a:7000,b:7001", RedisTarget("cluster", (("a", 7000), ("b", 7001)))),
    ],
)
def test_lock_urls(url: str, target: RedisTarget) -> None:
    assert parse_lock_url(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "mysql://x",
        "redis+sentinel://s1:26379",
        "redis+sentinel://s1:26379/wopi/x",
        "redis+cluster://a:7000/2",
        "redis://a:1,b:2/0",
        "redis://host:port/0",
        "redis://:pw@/0",
        "unix://",
        "no scheme",
    ],
)
def test_bad_lock_url_is_one_config_line_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"WOPIBRIDGE_LOCKS_URL": url})
    message = str(caught.value)
    assert message.startswith("invalid configuration: locks.url (WOPIBRIDGE_LOCKS_URL): ")
    assert "\n" not in message


def test_min_replicas_default_follows_the_topology() -> None:
    def replicas(url: str, **env: str) -> int:
        return load_settings(None, env={"WOPIBRIDGE_LOCKS_URL": url, **env}).locks.min_replicas

    assert replicas("redis://h:6379/0") == 0
    assert replicas("redis+sentinel://s:26379/wopi") == 1
    assert replicas("redis+cluster://a:7000") == 1
    assert replicas("redis+cluster://a:7000", WOPIBRIDGE_LOCKS_MIN_REPLICAS="0") == 0
    with pytest.raises(ConfigError, match=r"locks\.min_replicas"):
        replicas("redis://h:6379/0", WOPIBRIDGE_LOCKS_MIN_REPLICAS="-2")
    with pytest.raises(ConfigError, match=r"locks\.prefix"):
        replicas("redis://h:6379/0", WOPIBRIDGE_LOCKS_PREFIX="a{b}:")


def test_a_lock_and_its_site_marker_share_a_hash_tag() -> None:
    assert tagged("p:lock:", "local:abc") == "p:lock:{local:abc}"
    assert tagged("p:lock:", "local:abc\x00site") == "p:lock:{local:abc}\x00site"


async def test_password_and_database(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra_args=("--requirepass", "p@ssw0rd"))
    server.start()
    try:
        url = f"redis://:p%40ssw0rd@127.0.0.1:{server.port}/2"
        store = RedisLockStore.from_url(url, prefix="auth:")
        assert (await store.lock("f", "L")).ok
        check = RedisConnection.from_url(url)
        assert await check.execute("GET", "auth:lock:{f}") == b"L"
        other_db = RedisConnection.from_url(url.replace("/2", "/0"))
        assert await other_db.execute("GET", "auth:lock:{f}") is None
        wrong = RedisLockStore.from_url(f"redis://:nope@127.0.0.1:{server.port}/0")
        with pytest.raises(Unavailable):
            await wrong.ping()
        for closing in (check, other_db, store, wrong):
            await closing.close()
    finally:
        server.stop()


async def test_scripts_are_sent_again_after_a_script_flush(redis_server: RedisServer) -> None:
    store = RedisLockStore.from_url(redis_server.url, prefix="flush:")
    assert (await store.lock("f", "A")).ok
    await store.connection.execute("SCRIPT", "FLUSH")
    assert await store.connection.execute("SCRIPT", "EXISTS", LOCK.sha) == [0]
    assert (await store.lock("f", "A")).ok
    assert not (await store.lock("f", "B")).ok
    assert await store.connection.execute("SCRIPT", "EXISTS", LOCK.sha) == [1]
    await store.close()


async def test_concurrent_calls_reach_their_callers(redis_server: RedisServer) -> None:
    """Calls queued together share one write; each still gets its own reply or error."""
    conn = RedisConnection.from_url(redis_server.url)
    await asyncio.gather(*(conn.execute("SET", f"batch:{i}", f"value {i}") for i in range(300)))
    calls = [conn.execute("GET", f"batch:{i}") for i in range(300)]
    calls.insert(150, conn.execute("NOSUCHCOMMAND"))
    replies = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(replies.pop(150), Exception)
    assert replies == [f"value {i}".encode() for i in range(300)]
    assert await conn.execute("PING") == b"PONG"  # an error reply does not desynchronise
    await conn.close()


def _connections_received(info: bytes) -> int:
    for line in info.decode().splitlines():
        if line.startswith("total_connections_received:"):
            return int(line.split(":")[1])
    raise AssertionError("no total_connections_received in INFO")


async def test_calls_share_one_pipelined_connection(redis_server: RedisServer) -> None:
    """A thousand concurrent calls go over one connection, written while replies are due."""
    conn = RedisConnection.from_url(redis_server.url)
    probe = RedisConnection.from_url(redis_server.url)
    try:
        await conn.execute("PING")
        before = _connections_received(await probe.execute("INFO", "stats"))
        keys = [f"pipe:{i}" for i in range(1000)]
        await asyncio.gather(*(conn.execute("SET", key, key) for key in keys))
        assert await asyncio.gather(*(conn.execute("GET", key) for key in keys)) == [
            key.encode() for key in keys
        ]
        assert _connections_received(await probe.execute("INFO", "stats")) == before
    finally:
        await conn.close()
        await probe.close()


async def test_a_lone_call_leaves_at_once_and_the_next_ones_queue(
    redis_server: RedisServer,
) -> None:
    """On an idle connection a call is written from its caller's turn, before the writer
    runs; calls made while its reply is due are queued for the writer (one batch), and every
    reply still reaches its caller."""
    conn = RedisConnection.from_url(redis_server.url)
    try:
        await conn.execute("PING")  # connected, nothing due
        pipeline = conn._pipeline
        assert pipeline is not None
        first = conn.execute("ECHO", "first")
        link = pipeline._link
        assert link is not None
        assert not link.outbox and len(link.sent) == 1  # on its way already
        others = [conn.execute("ECHO", f"next {i}") for i in range(5)]
        assert len(link.outbox) == 5
        assert await first == b"first"
        assert await asyncio.gather(*others) == [f"next {i}".encode() for i in range(5)]
        assert await conn.execute("ECHO", "alone again") == b"alone again"
    finally:
        await conn.close()


async def test_a_caller_that_gives_up_does_not_shift_the_replies(
    redis_server: RedisServer,
) -> None:
    """Its reply still comes, in its turn, and goes to nobody: the next caller gets its own."""
    slow = (
        "local t = redis.call('TIME') local start = t[1] * 1e6 + t[2] "
        "repeat local n = redis.call('TIME') until n[1] * 1e6 + n[2] - start > 200000 "
        "return 'slow'"
    )
    conn = RedisConnection.from_url(redis_server.url)
    try:
        waiting = asyncio.ensure_future(conn.execute("EVAL", slow, 0))
        await asyncio.sleep(0.05)
        waiting.cancel()
        assert await conn.execute("ECHO", "mine") == b"mine"
        assert await conn.execute("ECHO", "next") == b"next"
    finally:
        await conn.close()


async def test_a_connection_closed_by_redis_is_replaced(redis_server: RedisServer) -> None:
    """Redis drops idle clients (``timeout``, ``CLIENT KILL``, a restart): the next call
    connects again instead of failing."""
    store = RedisLockStore.from_url(redis_server.url, prefix="killed:")
    admin = RedisConnection.from_url(redis_server.url)
    try:
        assert (await store.lock("f", "L")).ok
        await admin.execute("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await asyncio.sleep(0.1)  # the idle reader learns it first
        assert (await store.refresh("f", "L")).ok
        assert await store.get("f") == "L"
    finally:
        await store.close()
        await admin.close()


async def test_a_dead_redis_answers_unavailable_in_time_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    store = RedisLockStore.from_url(server.url, timeout=1.0)
    await store.ping()
    server.kill()
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await store.lock("f", "L")
    assert time.monotonic() - started < 2.5
    server.start()
    assert (await store.lock("f", "L")).ok
    assert store.connection.reconnects == 1
    await store.close()
    server.stop()


async def test_a_hung_redis_answers_unavailable_within_the_timeout(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    store = RedisLockStore.from_url(server.url, timeout=0.5)
    try:
        await store.ping()
        assert server.proc is not None
        server.proc.send_signal(19)  # SIGSTOP: the socket stays open, nothing answers
        started = time.monotonic()
        with pytest.raises(Unavailable, match="did not answer"):
            await store.lock("f", "L")
        assert time.monotonic() - started < 1.5
        server.proc.send_signal(18)  # SIGCONT
        assert (await store.lock("f", "L")).ok
    finally:
        await store.close()
        server.stop()


def test_works_on_uvloop(redis_server: RedisServer) -> None:
    """Deployments often run aiohttp on uvloop."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[object]:
        conn = RedisConnection.from_url(redis_server.url)
        try:
            await conn.execute("SET", "uv:key", "v")
            return list(await asyncio.gather(*(conn.execute("GET", "uv:key") for _ in range(50))))
        finally:
            await conn.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == [b"v"] * 50
