"""PutFile with version history on and off, in one run: keeping the previous content costs no
copy of its bytes on the local storage (one more rename and an exchange), so the target is at
least 0.95 of the throughput with versions off.

    python3 bench/versions_bench.py [--size-mib 100] [--repeat 7] [--small 100]

Three servers run side by side on their own folders: versions **on**, versions **off**, and a
second **off** server as the A/A control (its ratio to the first shows the noise of the run).
Rows are interleaved as finely as each figure allows, so that a neighbour's load falls on the
three alike: each round sends one large upload to each server in turn (after a ``sync``, so
that none starts under the write-back of another), then small uploads
(4 KiB, one at a time) to the three servers in turn, request by request; the order of the
servers rotates every round and every small request. A round's small rate is its requests over
the time they took (throughput: a cost paid every few saves counts), the figure the median over
the rounds. ``max_count`` is 3, so versions are dropped as fast as they are kept: the steady
state of a long-edited file, its pruning included. Printed: the medians, the ratios on/off
(MISSED where under the target) beside the A/A drift off2/off, and the machine's load average
before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Figure, spread, upload  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import open_remote  # noqa: E402

TARGET = 0.95
SMALL = b"s" * 4096
SERVERS = ("on", "off", "off2")
HEADERS = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": "B"}


async def _locked(
    session: aiohttp.ClientSession, server: ServerProcess, name: str
) -> tuple[str, dict[str, str]]:
    url, token = await open_remote(session, server.url, name)
    async with session.post(
        url, params={"access_token": token}, headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "B"}
    ) as resp:
        resp.raise_for_status()
    return url, {"access_token": token}


def _rotated(turn: int) -> list[str]:
    shift = turn % len(SERVERS)
    return [*SERVERS[shift:], *SERVERS[:shift]]


async def _small_round(
    session: aiohttp.ClientSession,
    targets: dict[str, tuple[str, dict[str, str]]],
    count: int,
    round_: int,
) -> dict[str, float]:
    """``count`` small PutFiles to each server, one at a time, the servers taking turns
    request by request; answers each server's requests per second."""
    spent = dict.fromkeys(SERVERS, 0.0)
    for index in range(count):
        for name in _rotated(round_ + index):
            url, params = targets[name]
            started = time.perf_counter()
            async with session.post(
                url + "/contents", params=params, headers=HEADERS, data=SMALL
            ) as resp:
                resp.raise_for_status()
            spent[name] += time.perf_counter() - started
    return {name: count / seconds for name, seconds in spent.items()}


def _figures(label: str, values: dict[str, list[float]], unit: str) -> None:
    on, off, off2 = (statistics.median(values[k]) for k in SERVERS)
    control = off2 / off
    print(
        f"{label:<16} on {on:8.1f} {unit}  off {off:8.1f} {unit}  off2 {off2:8.1f} {unit}"
        f"   rounds on: {spread(values['on'])} | off: {spread(values['off'])}"
        f" | off2: {spread(values['off2'])}"
    )
    print("  " + Figure(f"{label}, on/off", on / off, TARGET, noise=abs(control - 1)).line())
    print(f"  {label + ', A/A off2/off':<44}{control:>10.3f}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    size = args.size_mib * 1024 * 1024
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="wb-versionsbench-") as tmp:
        servers: dict[str, ServerProcess] = {}
        for name in SERVERS:
            work = Path(tmp) / name
            (work / "data").mkdir(parents=True)
            (work / "data" / "big.bin").write_bytes(b"x")
            (work / "data" / "small.txt").write_bytes(b"x")
            servers[name] = ServerProcess(
                work,
                server={"max_upload_size": 4 * size},
                storage={"versions": name == "on"},
                versions={"max_count": 3},
            )
        for server in servers.values():
            server.start()
        large: dict[str, list[float]] = {name: [] for name in servers}
        small: dict[str, list[float]] = {name: [] for name in servers}
        try:
            async with aiohttp.ClientSession() as session:
                big, little = {}, {}
                for name, server in servers.items():
                    big[name] = await _locked(session, server, "big.bin")
                    little[name] = await _locked(session, server, "small.txt")
                for round_ in range(args.repeat + 1):  # the first round warms up
                    for name in _rotated(round_):
                        url, params = big[name]
                        # each large upload starts with no dirty pages of the previous one (or
                        # of a neighbour) still being written back: its own fsync is timed
                        await asyncio.to_thread(os.sync)
                        started = time.perf_counter()
                        await upload(
                            session, url + "/contents", size, params=params, headers=HEADERS
                        )
                        if round_:
                            large[name].append(size / 1e6 / (time.perf_counter() - started))
                    rates = await _small_round(session, little, args.small, round_)
                    if round_:
                        for name, rate in rates.items():
                            small[name].append(rate)
        finally:
            for server in servers.values():
                server.stop()
        kept = list((Path(tmp) / "on" / "data" / ".wopibridge" / "versions").glob("*/*"))
        print(f"versions kept on the 'on' server: {len(kept)} (max_count 3 per file)")
    print(
        f"measured on this machine ({os.cpu_count()} CPUs; load average {load_before} before, "
        f"{_load()} after); rows interleaved, medians of {args.repeat} rounds"
    )
    _figures(f"PutFile {args.size_mib} MiB", large, "MB/s ")
    _figures("PutFile 4 KiB", small, "req/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--small", type=int, default=100, help="small saves per server a round")
    asyncio.run(main(parser.parse_args()))
