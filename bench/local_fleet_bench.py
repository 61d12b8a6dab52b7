"""What one writer per local file costs: small PutFile req/s, Lock+Unlock cycles/s and
CheckFileInfo req/s of this checkout beside an older commit, in one run.

    python3 bench/local_fleet_bench.py [--before main] [--seconds 6] [--rounds 3] [--clients 4]

"before" is ``--before`` unpacked with ``git archive`` (no per-file record: saves, renames
and deletes exclude each other in process only, WOPI locks live in Redis only); "after" is
this checkout (every save, rename and delete holds the file's record in
``<root>/.wopibridge/locks/``; every Lock, RefreshLock and Unlock also writes the owner's
lock into it). Each variant is a ``wopibridge serve`` process on one shared redis-server with
a folder of its own; "before (A/A)" is a second process of the old code, so the spread between
the two "before" rows is the noise of this host. Rows alternate within each round; printed
are medians over rounds and the ratio after/before, against the targets below.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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

from tests.support.procs import RedisServer  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import open_remote  # noqa: E402

#: after/before ratios this change must keep: a save pays a lock round of a few system calls;
#: a Lock+Unlock pair pays the owner's record (two records writes, three Redis calls more).
TARGETS = {"PutFile 1 KiB": 0.8, "Lock+Unlock": 0.5, "CheckFileInfo": 0.9}


class CodeServer(ServerProcess):
    """A ``wopibridge serve`` process running the code under ``code``."""

    def __init__(self, workdir: Path, lock_url: str, code: Path) -> None:
        super().__init__(
            workdir,
            lock_url,
            server={"log_level": "WARNING"},
            locks={"prefix": f"{workdir.name}:"},
        )
        self.code = code


def unpack(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


Target = tuple[str, str]


async def _post(
    session: aiohttp.ClientSession, url: str, token: str, headers: dict[str, str], data: bytes
) -> None:
    async with session.post(url, params={"access_token": token}, headers=headers, data=data) as r:
        assert r.status == 200, await r.text()


async def _rate(
    targets: list[Target], seconds: float, one: Callable[[int], Awaitable[None]]
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await one(i)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(len(targets))))
    return done / (time.perf_counter() - started)


async def put_rate(session: aiohttp.ClientSession, targets: list[Target], seconds: float) -> float:
    body = os.urandom(1024)

    async def one(i: int) -> None:
        url, token = targets[i]
        headers = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": f"P{i}"}
        await _post(session, url + "/contents", token, headers, body)

    return await _rate(targets, seconds, one)


async def lock_rate(session: aiohttp.ClientSession, targets: list[Target], seconds: float) -> float:
    async def one(i: int) -> None:
        url, token = targets[i]
        for override in ("LOCK", "UNLOCK"):
            await _post(
                session, url, token, {"X-WOPI-Override": override, "X-WOPI-Lock": f"C{i}"}, b""
            )

    return await _rate(targets, seconds, one)


async def info_rate(session: aiohttp.ClientSession, targets: list[Target], seconds: float) -> float:
    async def one(i: int) -> None:
        url, token = targets[i]
        async with session.get(url, params={"access_token": token}) as r:
            assert r.status == 200, await r.text()
            await r.read()

    return await _rate(targets, seconds, one)


async def prepare(
    session: aiohttp.ClientSession, server: ServerProcess, clients: int
) -> dict[str, list[Target]]:
    """Start ``server`` with its files: saved ones (locked for good), lock cycles, infos."""
    data = server.workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for kind in ("put", "lock", "info"):
        for i in range(clients):
            (data / f"{kind}{i}.bin").write_bytes(b"x")
    server.start()
    sets = {
        kind: [await open_remote(session, server.url, f"{kind}{i}.bin") for i in range(clients)]
        for kind in ("put", "lock", "info")
    }
    for i, (url, token) in enumerate(sets["put"]):
        await _post(session, url, token, {"X-WOPI-Override": "LOCK", "X-WOPI-Lock": f"P{i}"}, b"")
    return sets


METRICS = {
    "PutFile 1 KiB": ("put", put_rate),
    "Lock+Unlock": ("lock", lock_rate),
    "CheckFileInfo": ("info", info_rate),
}


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="localfleet-"))
    (work / "redis").mkdir()
    redis = RedisServer(work / "redis")
    old_code = unpack(args.before, work / "before-code")
    servers = {
        "before": CodeServer(work / "before", redis.url, old_code),
        "before (A/A)": CodeServer(work / "before-aa", redis.url, old_code),
        "after": CodeServer(work / "after", redis.url, ROOT),
    }
    figures: dict[str, dict[str, list[float]]] = {m: {n: [] for n in servers} for m in METRICS}
    redis.start()
    try:
        async with aiohttp.ClientSession() as session:
            targets = {name: await prepare(session, s, args.clients) for name, s in servers.items()}
            for kind, rate in METRICS.values():  # warm up
                for name in servers:
                    await rate(session, targets[name][kind], 0.3)
            for _ in range(args.rounds):
                for metric, (kind, rate) in METRICS.items():
                    for name in servers:
                        per = args.seconds / args.rounds / len(METRICS)
                        figures[metric][name].append(await rate(session, targets[name][kind], per))
    finally:
        for server in servers.values():
            server.stop()
        redis.stop()
    print(f"{'':16} {'before':>10} {'before A/A':>11} {'after':>10} {'after/before':>13}  target")
    for metric, rows in figures.items():
        med = {name: statistics.median(values) for name, values in rows.items()}
        ratio = med["after"] / med["before"]
        control = med["before (A/A)"] / med["before"]
        verdict = "ok" if ratio >= TARGETS[metric] else "MISSED"
        print(
            f"{metric:16} {med['before']:10.0f} {med['before (A/A)']:11.0f} {med['after']:10.0f}"
            f" {ratio:13.2f}  >= {TARGETS[metric]} {verdict} (A/A {control:.2f})"
        )
    print("per second; medians of", args.rounds, "interleaved rounds,", args.clients, "clients")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="commit to compare with")
    parser.add_argument("--seconds", type=float, default=6.0, help="total seconds per variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
