"""Lock+Unlock cycles/s over HTTP on each Redis topology, beside a bare POST baseline.

One run, one machine: each row is a ``wopibridge serve`` process (or the bare aiohttp handler
of :mod:`bench.wopi_bench`) driven by the same client loops, so the ratios mean something on a
noisy host. Rows:

- bare POST handler (the baseline: HTTP alone);
- plain Redis with the lock store's client (redis-py asyncio + hiredis);
- plain Redis with the former hand-written RESP connection, rebuilt for this run only from the
  git history (``--old-commit``; the row is skipped when git or the commit is missing);
- Sentinel (1 primary, 2 replicas, 3 sentinels) with ``min_replicas`` 0 and 1;
- Cluster (3 primaries, 1 replica each) with ``min_replicas`` 0 and 1.

    python3 bench/redis_locks.py [--seconds 4] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BASELINE  # noqa: E402
from tests.support.procs import RedisServer, free_port, wait_for_port  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.topologies import ClusterSet, SentinelSet  # noqa: E402
from tests.support.wopi import open_remote  # noqa: E402

OLD_COMMIT = "acf2641"
# Runs ``wopibridge serve`` with the lock store of ``OLD_COMMIT`` (package ``oldlocks``).
OLD_LAUNCHER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import wopibridge.resources as resources
    from oldlocks.redis import RedisLockStore as Old

    def old_store(connection, prefix, min_replicas):
        return Old.from_url(sys.argv[2], prefix)

    resources.RedisLockStore = old_store
    from wopibridge.cli import main
    sys.exit(main(["serve", "--config", sys.argv[3]]))
    """
)


def extract_old(commit: str, into: Path) -> bool:
    """Write the old lock store and its RESP connection as package ``oldlocks``."""
    package = into / "oldlocks"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in ("resp", "redis"):
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:wopibridge/locks/{name}.py"],
            capture_output=True,
            text=True,
        )
        if shown.returncode != 0:
            return False
        source = shown.stdout.replace("wopibridge.locks.resp", "oldlocks.resp")
        (package / f"{name}.py").write_text(source)
    return True


class OldServer(ServerProcess):
    def __init__(self, workdir: Path, lock_url: str, modules: Path) -> None:
        super().__init__(workdir, lock_url, server={"log_level": "WARNING"})
        self.lock_url = lock_url
        self.modules = modules

    def start(self, wait: bool = True) -> None:
        log = self.log_path.open("ab")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                OLD_LAUNCHER,
                str(self.modules),
                self.lock_url,
                str(self.config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
        )
        log.close()
        wait_for_port(self.port, timeout=20)


async def cycles(
    session: aiohttp.ClientSession, targets: list[tuple[str, str]], seconds: float
) -> float:
    """Lock+Unlock cycles/s, one loop per (url, token), each on its own file."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        url, token = targets[i]
        while time.perf_counter() < deadline:
            for override in ("LOCK", "UNLOCK"):
                async with session.post(
                    url,
                    params={"access_token": token},
                    headers={"X-WOPI-Override": override, "X-WOPI-Lock": f"L{i}"},
                ) as r:
                    assert r.status == 200, await r.text()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(len(targets))))
    return done / (time.perf_counter() - started)


async def started(
    session: aiohttp.ClientSession, server: ServerProcess, clients: int
) -> list[tuple[str, str]]:
    """Start ``server`` with one file per client; the (WOPISrc, token) of each."""
    data = server.workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(clients):
        (data / f"lock{i}.bin").write_bytes(b"x")
    server.start()
    targets = [await open_remote(session, server.url, f"lock{i}.bin") for i in range(clients)]
    await cycles(session, targets, 0.5)
    return targets


async def measure(
    session: aiohttp.ClientSession, server: ServerProcess, clients: int, seconds: float
) -> float:
    try:
        return await cycles(session, await started(session, server, clients), seconds)
    finally:
        server.stop()


async def interleaved(
    session: aiohttp.ClientSession,
    runs: dict[str, list[tuple[str, str]]],
    seconds: float,
    rounds: int,
) -> dict[str, float]:
    """The median of ``rounds`` alternating runs of each target set: load from the other
    engineers' processes on a shared host then falls on every row alike."""
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, targets in runs.items():
            figures[name].append(await cycles(session, targets, seconds / rounds))
    return {name: statistics.median(values) for name, values in figures.items()}


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="redislocks-"))
    quiet: dict[str, Any] = {"server": {"log_level": "WARNING"}}
    (work / "redis").mkdir()
    redis = RedisServer(work / "redis")
    sentinels = SentinelSet(work / "sentinel")
    cluster = ClusterSet(work / "cluster")
    base_port = free_port()
    (work / "base.bin").write_bytes(b"x")
    baseline = subprocess.Popen([sys.executable, "-c", BASELINE, str(base_port), "base.bin"])
    rows: list[tuple[str, float | None]] = []
    try:
        redis.start()
        sentinels.start()
        cluster.start()
        wait_for_port(base_port)
        async with aiohttp.ClientSession() as session:
            bare = [(f"http://127.0.0.1:{base_port}/info", "-")] * args.clients
            await cycles(session, bare, 0.5)
            new = ServerProcess(work / "new", redis.url, **quiet)
            runs = {"bare": bare, "new": await started(session, new, args.clients)}
            old = None
            if extract_old(args.old_commit, work / "old-modules"):
                old = OldServer(work / "old", redis.url, work / "old-modules")
                runs["old"] = await started(session, old, args.clients)
            try:
                figures = await interleaved(session, runs, 3 * args.seconds, args.rounds)
            finally:
                new.stop()
                if old is not None:
                    old.stop()
            rows.append(("bare POST baseline", figures["bare"]))
            rows.append(("Redis, redis-py + hiredis", figures["new"]))
            rows.append(("Redis, hand-written RESP (old)", figures.get("old")))
            for name, url in (("Sentinel", sentinels.url()), ("Cluster", cluster.url())):
                for replicas in (0, 1):
                    srv = ServerProcess(
                        work / f"{name}{replicas}",
                        url,
                        locks={"min_replicas": replicas},
                        **quiet,
                    )
                    value = await measure(session, srv, args.clients, args.seconds)
                    rows.append((f"{name}, min_replicas={replicas}", value))
    finally:
        baseline.terminate()
        baseline.wait()
        redis.stop()
        sentinels.stop()
        cluster.stop()
    print(
        f"\nLock+Unlock cycles/s over HTTP, {args.clients} clients, {os.cpu_count()} cores; "
        f"first three rows: median of {args.rounds} alternating runs, {3 * args.seconds:g} s "
        f"each in all; other rows: one run of {args.seconds:g} s"
    )
    base = rows[0][1] or 1.0
    new_value = rows[1][1] or 1.0
    for name, value in rows:
        if value is None:
            print(f"{name:<34}{'not measured (old code not in git history)':>20}")
            continue
        print(
            f"{name:<34}{value:10.1f}  {value / base * 100:6.1f}% of bare"
            f"  {value / new_value * 100:6.1f}% of redis-py"
        )
    old_value = rows[2][1]
    if old_value:
        print(f"redis-py / old: {new_value / old_value * 100:.1f}% (target >= 90%)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    parser.add_argument("--rounds", type=int, default=6, help="alternating runs of the first rows")
    asyncio.run(main(parser.parse_args()))
