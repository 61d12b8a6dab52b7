"""Finding a file by id or by path does not get slower as the folder grows.

CheckFileInfo and openinapp (which finds the file by its path and reads its id from the file)
are measured over a folder of 10 files and one of ``--files`` files (100,000 by default), with
both id maps (SQLite with in-process locks, Redis with Redis locks), beside a bare aiohttp
handler answering a fixed JSON document, all in one run. Before each server starts, every file
of its folder is given its id and entered in the map (through the storage itself), so the map
holds as many entries as the folder has files.

    python3 bench/identity_bench.py [--files 100000] [--seconds 3] [--concurrency 16]

Targets: the large folder within 10% of the small one; CheckFileInfo with Redis at or above 40%
of the bare baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BASELINE, hammer  # noqa: E402
from tests.support.procs import RedisServer, free_port, wait_for_port  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import IOP_SECRET, open_remote  # noqa: E402
from wopibridge.storage.idmap import IdMap, SqliteIdMap  # noqa: E402
from wopibridge.storage.local import LocalStorage  # noqa: E402
from wopibridge.storage.redis_idmap import RedisIdMap  # noqa: E402


def make_folder(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True)
    names = [f"f{i:06d}.docx" for i in range(count)]
    for name in names:
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x")
        os.close(fd)
    return names


async def populate(
    folder: Path, names: list[str], ids: IdMap
) -> tuple[float, LocalStorage, list[str]]:
    """Give every file its id and enter it in the map: files/s, the storage, the ids."""
    storage = LocalStorage("local", folder, folder.parent / "unused-state", ids)
    started = time.perf_counter()
    found: list[str] = []
    for start in range(0, len(names), 256):
        stats = await asyncio.gather(*(storage.resolve(n) for n in names[start : start + 256]))
        found += [stat.file_id for stat in stats]
    return len(names) / (time.perf_counter() - started), storage, found


async def lookup_us(storage: LocalStorage, ids: list[str], calls: int, distinct: int) -> float:
    """Microseconds per uncached lookup of an id: the map asked, the file's own id checked
    (``_find``, what stat does when the file moved since it last looked), cycling over
    ``distinct`` ids spread over the folder."""
    sample = ids[:: max(1, len(ids) // distinct)][:distinct]
    cycle = itertools.cycle(sample)
    started = time.perf_counter()
    for _ in range(calls):
        await storage._find(next(cycle))
    return (time.perf_counter() - started) / calls * 1e6


async def open_many(
    session: aiohttp.ClientSession, base: str, names: list[str]
) -> list[tuple[str, str]]:
    return [await open_remote(session, base, name) for name in names]


Probe = Callable[[], Awaitable[None]]


def cfi_probe(session: aiohttp.ClientSession, opened: list[tuple[str, str]]) -> Probe:
    cycle = itertools.cycle(opened)

    async def cfi() -> None:
        url, token = next(cycle)
        async with session.get(url, params={"access_token": token}) as r:
            assert r.status == 200
            await r.read()

    return cfi


def open_probe(session: aiohttp.ClientSession, base: str, names: list[str]) -> Probe:
    paths = itertools.cycle(names)

    async def open_one() -> None:
        async with session.get(
            f"{base}/wopi/iop/openinapp",
            params={
                "fileid": next(paths),
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "u@idp",
                "username": "U",
                "appurl": "https://editor/x?",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        ) as r:
            assert r.status == 200
            await r.read()

    return open_one


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="wopibench-ids-"))
    print(f"creating folders of 10 and {args.files} files in {work}", flush=True)
    folders = {10: work / "small", args.files: work / "large"}
    names = {count: make_folder(folder, count) for count, folder in folders.items()}
    (work / "redis").mkdir()
    redis = RedisServer(work / "redis")
    redis.start()
    base_port = free_port()
    baseline = subprocess.Popen(
        [sys.executable, "-c", BASELINE, str(base_port), str(work / "small" / "f000000.docx")]
    )
    servers: dict[tuple[str, int], ServerProcess] = {}
    fill: dict[tuple[str, int], float] = {}
    storages: dict[tuple[str, int], LocalStorage] = {}
    file_ids: dict[tuple[str, int], list[str]] = {}
    lookups: dict[tuple[str, int], list[float]] = {}
    spread: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    try:
        for store in ("sqlite", "redis"):
            for count, folder in folders.items():
                home = work / f"srv-{store}-{count}"
                prefix = f"bench-{store}-{count}:"
                ids: IdMap
                if store == "sqlite":
                    ids = SqliteIdMap(home / "state" / "local-files.sqlite3")
                else:
                    ids = RedisIdMap.from_url(redis.url, prefix, "local")
                (
                    fill[(store, count)],
                    storages[(store, count)],
                    file_ids[(store, count)],
                ) = await populate(folder, names[count], ids)
                print(f"  {store:<6} {count:>7} files given ids", flush=True)
                servers[(store, count)] = ServerProcess(
                    home,
                    lock_url="memory://" if store == "sqlite" else redis.url,
                    storage={"root": str(folder)},
                    locks={"prefix": prefix},
                    server={"log_level": "WARNING"},
                )
        # the uncached lookup, in process, the two folders' maps alternating: the same ten
        # files looked up in each (the folder's size is what differs), and a thousand
        # different files in the large one (the caches' working set grows too)
        for round_ in range(args.rounds):
            for store in ("sqlite", "redis"):
                for count in sorted(folders, reverse=bool(round_ % 2)):
                    key = (store, count)
                    us = await lookup_us(storages[key], file_ids[key], 2000, 10)
                    lookups.setdefault(key, []).append(us)
                key = (store, args.files)
                us = await lookup_us(storages[key], file_ids[key], 2000, 1000)
                spread.setdefault(store, []).append(us)
        for storage in storages.values():
            await storage.close()
        for server in servers.values():
            server.start()
        wait_for_port(base_port)
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            probes: dict[str, Probe] = {}
            for (store, count), server in servers.items():
                # the same ten files in both folders: only the folder's size differs
                sample = names[count][:: max(1, count // 10)][:10]
                opened = await open_many(session, server.url, sample)
                probes[f"{store} CheckFileInfo {count}"] = cfi_probe(session, opened)
                probes[f"{store} openinapp {count}"] = open_probe(session, server.url, sample)

            async def bare() -> None:
                async with session.get(f"http://127.0.0.1:{base_port}/info") as r:
                    await r.read()

            probes["bare"] = bare
            for probe in probes.values():
                await hammer(session, probe, 0.3, args.concurrency)
            # Rounds, each measuring everything once in a new order, the two folders of a
            # store back to back: the machine's load drifts, so ratios are taken within a
            # round, and the medians over rounds are reported.
            pairs = [
                f"{store} {op}"
                for store in ("sqlite", "redis")
                for op in ("CheckFileInfo", "openinapp")
            ]
            for round_ in range(args.rounds):
                order = [*pairs, "bare"]
                random.Random(round_).shuffle(order)
                for name in order:
                    targets = [name] if name == "bare" else [f"{name} 10", f"{name} {args.files}"]
                    if round_ % 2:
                        targets.reverse()
                    for target in targets:
                        rate = await hammer(session, probes[target], args.seconds, args.concurrency)
                        rates.setdefault(target, []).append(rate)
                print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        baseline.terminate()
        baseline.wait()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in rates.items()}
    bare_rps = med["bare"]
    large = args.files

    def ratio(top: str, bottom: str) -> float:
        """The median over rounds of ``top / bottom`` measured in the same round."""
        return (
            statistics.median(a / b for a, b in zip(rates[top], rates[bottom], strict=True)) * 100
        )

    print(
        f"\nfinding files: {os.cpu_count()} cores, concurrency {args.concurrency}, "
        f"{args.rounds} interleaved rounds of {args.seconds:.1f} s per rate, "
        "10 files cycled in each folder, aiohttp client; rates are medians, ratios are "
        "medians of the ratios within each round"
    )
    print(
        f"bare JSON baseline: {bare_rps:.0f} req/s (rounds: "
        + ", ".join(f"{r:.0f}" for r in rates["bare"])
        + ")"
    )
    print(
        f"{'store':<8}{'operation':<15}{'10 files':>10}{f'{large} files':>15}"
        f"{'large/small':>13}{'large vs bare':>15}"
    )
    for store in ("sqlite", "redis"):
        for op in ("CheckFileInfo", "openinapp"):
            small, big = f"{store} {op} 10", f"{store} {op} {large}"
            print(
                f"{store:<8}{op:<15}{med[small]:>10.0f}{med[big]:>15.0f}"
                f"{ratio(big, small):>12.1f}%{ratio(big, 'bare'):>14.1f}%"
            )
    print("uncached lookup of an id (map + the file's own id), in process, median of rounds:")
    for store in ("sqlite", "redis"):
        small = statistics.median(lookups[(store, 10)])
        big = statistics.median(lookups[(store, large)])
        within = statistics.median(
            a / b for a, b in zip(lookups[(store, large)], lookups[(store, 10)], strict=True)
        )
        print(
            f"{store:<8}{small:>8.1f} us with 10 files, {big:>8.1f} us with {large} (same "
            f"10 looked up): large/small {within * 100:.1f}%; 1000 different files of the "
            f"{large}: {statistics.median(spread[store]):.1f} us"
        )
    for store in ("sqlite", "redis"):
        print(f"{store:<8}ids given and mapped: {fill[(store, large)]:.0f} files/s")
    print("targets: large/small >= 90%; CheckFileInfo with redis >= 40% of baseline")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9)
    asyncio.run(main(parser.parse_args()))
