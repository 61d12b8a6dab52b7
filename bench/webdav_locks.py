"""What holding a WOPI lock at the owner's WebDAV server costs: Lock+Unlock cycles/s.

    python3 bench/webdav_locks.py [--seconds 1] [--rounds 5] [--concurrency 1]
                                  [--server apache|wsgidav|both]

On each server (Debian's Apache with ``mod_dav_fs``, and wsgidav), started here with a
redis-server for the site's lock store, ``--concurrency`` tasks each lock and unlock their own
file for ``--seconds``, in rows that are interleaved round after round:

- ``bare WebDAV LOCK+UNLOCK``: the two requests alone, on the same HTTP session (the baseline),
  the LOCK answer read to its end as the storage reads it: aiohttp closes a connection whose
  answer was not all in when it was released, and wsgidav sends a LOCK answer's body apart from
  its head, so a client that skips it opens a new connection for one cycle in six or so;
- ``bare + its round trips (floor)``: the pair with the round trips the storage lock cannot
  do without around it, in its order (site lock, LOCK, then the token kept in Redis beside the
  ``PROPFIND`` of ``lockdiscovery`` that checks the grant holds alone; site unlock, UNLOCK), on
  keys of their own: the cost of its round trips on this client and machine;
- ``storage lock (OwnerLockStore)``: the WebDAV storage's lock store as a WOPI Lock and
  Unlock use it: the site's Redis lock, the WebDAV LOCK, its token kept in Redis; and back;
- ``site store only (locks = false)``: the Redis lock alone, what the storage costs without
  the owner's lock;
- ``bare again (A/A control)``: the baseline measured a second time in the same round; its
  ratio to the first says how noisy the machine is.

The figure of each row is the median over the rounds. The default concurrency is 1: Debian's
Apache 2.4.71 was seen answering concurrent LOCK/UNLOCK pairs on *different* files of one
share with 423 and 400 (``mod_dav_fs``'s lock database losing records), with either MPM.
Target: the storage lock at least 0.8 of the bare pair (it may cost its Redis round trips
and nothing more); printed as MISSED when it is not. Its ratio to the floor row says what it
costs beyond those round trips: when that is about 1 and the target is missed, the round trips
themselves cost more than a fifth of the pair on that server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.mesh.apachedav import ApacheDav  # noqa: E402
from tests.mesh.conftest import DAV_PASSWORD, DAV_USER, DavServer, basic_auth  # noqa: E402
from tests.support.procs import RedisServer  # noqa: E402
from wopibridge.locks import RedisLockStore  # noqa: E402
from wopibridge.locks.base import LockStore  # noqa: E402
from wopibridge.locks.kepttokens import TOKEN_SUFFIX  # noqa: E402
from wopibridge.storage.webdav import WebDavConfig, WebDavStorage  # noqa: E402
from wopibridge.storage.webdav.client import LOCKS_BODY  # noqa: E402
from wopibridge.storage.webdav.locks import lock_body  # noqa: E402
from wopibridge.storage.webdav.lockstate import DavLockState  # noqa: E402

TARGET = 0.8
Cycle = Callable[[int], Awaitable[None]]


async def rate(cycle: Cycle, seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await cycle(i)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


def bare(http: aiohttp.ClientSession, url: str, site: RedisLockStore | None = None) -> Cycle:
    """The LOCK+UNLOCK pair; with ``site``, the storage lock's other round trips around it too
    (the site lock reading the kept token; the token kept beside the grant's lockdiscovery
    check; the unlock taking it), on keys of their own: what any storage lock keeping the order
    of its operations costs on this client."""
    body = lock_body("bench")

    async def check(target: str) -> None:
        headers = {"Authorization": basic_auth(), "Depth": "0", "Content-Type": "application/xml"}
        async with http.request("PROPFIND", target, data=LOCKS_BODY, headers=headers) as response:
            assert response.status == 207, response.status
            await response.read()

    async def cycle(i: int) -> None:
        target = f"{url}/f{i}.odt"
        floor, lock_id = f"floor{i}", f"L{i}"
        if site is not None:
            assert (await site.lock_reading(floor, lock_id, 1800, TOKEN_SUFFIX))[0].ok
        headers = {"Authorization": basic_auth(), "Depth": "0", "Timeout": "Second-2100"}
        async with http.request(
            "LOCK", target, data=body, headers={**headers, "Content-Type": "application/xml"}
        ) as response:
            assert response.status == 200, response.status
            token = response.headers["Lock-Token"]
            await response.read()  # else aiohttp may close the connection (see the docstring)
        if site is not None:
            await asyncio.gather(site.keep(floor, TOKEN_SUFFIX, token, 2100), check(target))
            assert (await site.unlock_taking(floor, lock_id, TOKEN_SUFFIX))[1] == token
        async with http.request(
            "UNLOCK", target, headers={"Authorization": basic_auth(), "Lock-Token": token}
        ) as response:
            assert response.status in (200, 204), response.status

    return cycle


def through(store: LockStore, keys: list[str]) -> Cycle:
    async def cycle(i: int) -> None:
        assert (await store.lock(keys[i], f"L{i}")).ok
        assert (await store.unlock(keys[i], f"L{i}")).ok

    return cycle


async def measure(kind: str, args: argparse.Namespace, work: Path, redis: RedisServer) -> None:
    root = work / kind
    root.mkdir()
    for i in range(args.concurrency):
        (root / f"f{i}.odt").write_bytes(b"x" * 1000)
    server: Any = DavServer(root) if kind == "wsgidav" else ApacheDav(root, DAV_USER, DAV_PASSWORD)
    server.start()
    site = RedisLockStore.from_url(redis.url, prefix=f"bench-{kind}:")
    tokens = RedisLockStore.from_url(redis.url, prefix=f"bench-{kind}:")
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            config = WebDavConfig.from_table("dav", server.table())
            storage = WebDavStorage(
                "dav", config, http, locking=DavLockState(tokens, "https://bench.test")
            )
            keys = [(await storage.resolve(f"f{i}.odt")).identity for i in range(args.concurrency)]
            rows: dict[str, Cycle] = {
                "bare WebDAV LOCK+UNLOCK": bare(http, server.url),
                "bare + its round trips (floor)": bare(http, server.url, site),
                "storage lock (OwnerLockStore)": through(storage.lock_store(site), keys),
                "site store only (locks = false)": through(site, keys),
                "bare again (A/A control)": bare(http, server.url),
            }
            for cycle in rows.values():  # warm up every path once
                await rate(cycle, 0.3, args.concurrency)
            figures: dict[str, list[float]] = {name: [] for name in rows}
            for _ in range(args.rounds):
                for name, cycle in rows.items():
                    figures[name].append(await rate(cycle, args.seconds, args.concurrency))
    except BaseException:
        if isinstance(server, ApacheDav):
            print(server.error_log()[-3000:])
        raise
    finally:
        await site.close()
        await tokens.close()
        server.stop()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    base = medians["bare WebDAV LOCK+UNLOCK"]
    print(
        f"\n{kind}: Lock+Unlock cycles/s, concurrency {args.concurrency}, median of "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s"
    )
    for name, value in medians.items():
        print(f"  {name:<34}{value:10.1f}  {value / base:6.2f} of bare")
    ratio = medians["storage lock (OwnerLockStore)"] / base
    beyond = medians["storage lock (OwnerLockStore)"] / medians["bare + its round trips (floor)"]
    print(f"  storage lock / floor: {beyond:.2f} (what it costs beyond its round trips)")
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"  target: storage lock >= {TARGET} of bare: {ratio:.2f} {verdict}")


async def main(args: argparse.Namespace) -> None:
    kinds = ["apache", "wsgidav"] if args.server == "both" else [args.server]
    with tempfile.TemporaryDirectory(prefix="webdav-locks-") as work:
        redis = RedisServer(Path(work))
        redis.start()
        try:
            for kind in kinds:
                await measure(kind, args, Path(work), redis)
        finally:
            redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--server", choices=["apache", "wsgidav", "both"], default="both")
    asyncio.run(main(parser.parse_args()))
