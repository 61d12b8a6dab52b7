"""Lock-path cost of three Redis clients, measured in one run against one redis-server.

Each client runs the lock store's LOCK and UNLOCK scripts (EVALSHA) from ``--concurrency``
concurrent tasks, each on its own key, for ``--seconds``; the figure is Lock+Unlock cycles/s
of the client alone (no HTTP). This is how the maintained client was chosen:

    python3 bench/lock_clients.py [--seconds 3] [--concurrency 8]

Rows: the project's former hand-written pipelined RESP connection (rebuilt for this run from
the git history, see :mod:`bench.redis_locks`), redis-py asyncio with hiredis through its
``register_script``, the lock store as the server runs it (one kept redis-py connection,
commands pipelined: written as they come, replies matched in order), and coredis (when
installed; it is not a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.procs import RedisServer  # noqa: E402
from wopibridge.locks.redis import LOCK as STORE_LOCK  # noqa: E402
from wopibridge.locks.redis import UNLOCK as STORE_UNLOCK  # noqa: E402

# Every client runs the lock store's own scripts, so the rows differ by client alone.
LOCK = STORE_LOCK.source
UNLOCK = STORE_UNLOCK.source

Call = Callable[[str, str, str, tuple[Any, ...]], Awaitable[Any]]


async def cycles(call: Call, seconds: float, concurrency: int) -> float:
    import hashlib

    lock_sha = hashlib.sha1(LOCK.encode()).hexdigest()
    unlock_sha = hashlib.sha1(UNLOCK.encode()).hexdigest()
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        key = f"bench:{i}"
        while time.perf_counter() < deadline:
            ok, _ = await call(lock_sha, LOCK, key, (f"L{i}", 60000))
            assert ok == 1
            ok, _ = await call(unlock_sha, UNLOCK, key, (f"L{i}",))
            assert ok == 1
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


async def with_redis_py(url: str, seconds: float, concurrency: int) -> float:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    scripts = {LOCK: client.register_script(LOCK), UNLOCK: client.register_script(UNLOCK)}

    async def call(sha: str, source: str, key: str, args: tuple[Any, ...]) -> Any:
        return await scripts[source](keys=[key], args=list(args))

    try:
        await cycles(call, 0.5, concurrency)
        return await cycles(call, seconds, concurrency)
    finally:
        await client.aclose()


async def with_coredis(url: str, seconds: float, concurrency: int) -> float | None:
    try:
        import coredis
    except ImportError:
        return None
    client: Any = coredis.Redis.from_url(url)
    async with client:
        scripts = {LOCK: client.register_script(LOCK), UNLOCK: client.register_script(UNLOCK)}

        async def call(sha: str, source: str, key: str, args: tuple[Any, ...]) -> Any:
            return await scripts[source](keys=[key], args=list(args))

        await cycles(call, 0.5, concurrency)
        return await cycles(call, seconds, concurrency)


async def with_old_resp(url: str, seconds: float, concurrency: int) -> float | None:
    """The former hand-written connection, rebuilt from the git history for this run."""
    from bench.redis_locks import OLD_COMMIT, extract_old

    modules = Path(tempfile.mkdtemp(prefix="oldresp-"))
    if not extract_old(OLD_COMMIT, modules):
        return None
    sys.path.insert(0, str(modules))
    resp: Any = importlib.import_module("oldlocks.resp")
    conn = resp.RespConnection(resp.Endpoint.from_url(url))

    async def call(sha: str, source: str, key: str, args: tuple[Any, ...]) -> Any:
        try:
            return await conn.call("EVALSHA", sha, 1, key, *args)
        except resp.ReplyError:
            return await conn.call("EVAL", source, 1, key, *args)

    try:
        await cycles(call, 0.5, concurrency)
        return await cycles(call, seconds, concurrency)
    finally:
        await conn.close()


async def with_store(url: str, seconds: float, concurrency: int) -> float:
    """The lock store as the server uses it: pipelined on one redis-py connection, bounded."""
    from wopibridge.locks import RedisLockStore

    store = RedisLockStore.from_url(url, prefix="bench:")

    async def call(sha: str, source: str, key: str, args: tuple[Any, ...]) -> Any:
        if source == LOCK:
            result = await store.lock(key, args[0], args[1] / 1000)
        else:
            result = await store.unlock(key, args[0])
        return int(result.ok), result.current

    try:
        await cycles(call, 0.5, concurrency)
        return await cycles(call, seconds, concurrency)
    finally:
        await store.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as work:
        server = RedisServer(Path(work))
        server.start()
        try:
            old = await with_old_resp(server.url, args.seconds, args.concurrency)
            new = await with_redis_py(server.url, args.seconds, args.concurrency)
            store = await with_store(server.url, args.seconds, args.concurrency)
            core = await with_coredis(server.url, args.seconds, args.concurrency)
        finally:
            server.stop()
    print(f"\nLock+Unlock cycles/s, client only, concurrency {args.concurrency}")
    base = old or new
    for name, value in (
        ("hand-written RESP (old)", old),
        ("redis-py asyncio + hiredis", new),
        ("lock store (redis-py, pipelined)", store),
        ("coredis", core),
    ):
        if value is None:
            print(f"{name:<30}{'not available':>12}")
        else:
            print(f"{name:<30}{value:12.1f}  {value / base * 100:6.1f}% of the first row")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
