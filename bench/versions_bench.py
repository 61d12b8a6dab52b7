"""PutFile with version history on and off, in one run: keeping the previous content costs no
copy of its bytes on the local storage (one more rename and an exchange), so the target is at
least 0.95 of the throughput with versions off.

    python3 bench/versions_bench.py [--size-mib 100] [--repeat 3] [--small 200]

Three servers run side by side on their own folders: versions **on**, versions **off**, and a
second **off** server as the A/A control (its ratio to the first shows the noise of the run).
Rows are interleaved: each round sends one large upload to each server in turn, then a burst of
small uploads (4 KiB, one at a time) to each in turn. Printed: the median of each, the ratios
on/off and off2/off, and MISSED where a ratio is under the target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.wopi_bench import upload  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import open_remote  # noqa: E402

TARGET = 0.95
SMALL = b"s" * 4096


async def _locked(
    session: aiohttp.ClientSession, server: ServerProcess, name: str
) -> tuple[str, dict[str, str]]:
    url, token = await open_remote(session, server.url, name)
    async with session.post(
        url, params={"access_token": token}, headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "B"}
    ) as resp:
        resp.raise_for_status()
    return url, {"access_token": token}


async def _small_burst(
    session: aiohttp.ClientSession, url: str, params: dict[str, str], count: int
) -> float:
    """Small PutFiles per second, one at a time."""
    headers = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": "B"}
    started = time.perf_counter()
    for _ in range(count):
        async with session.post(url + "/contents", params=params, headers=headers, data=SMALL) as r:
            r.raise_for_status()
    return count / (time.perf_counter() - started)


def _row(label: str, values: dict[str, list[float]], unit: str) -> None:
    on, off, off2 = (statistics.median(values[k]) for k in ("on", "off", "off2"))
    ratio, control = on / off, off2 / off
    verdict = "ok" if ratio >= TARGET else f"MISSED (target {TARGET})"
    print(
        f"{label:<22} on {on:9.1f} {unit}  off {off:9.1f} {unit}  off2 {off2:9.1f} {unit}  "
        f"on/off {ratio:.2f} {verdict}  A/A off2/off {control:.2f}"
    )


async def main(args: argparse.Namespace) -> None:
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="wb-versionsbench-") as tmp:
        servers: dict[str, ServerProcess] = {}
        for name, keep in (("on", True), ("off", False), ("off2", False)):
            work = Path(tmp) / name
            (work / "data").mkdir(parents=True)
            (work / "data" / "big.bin").write_bytes(b"x")
            (work / "data" / "small.txt").write_bytes(b"x")
            servers[name] = ServerProcess(
                work,
                server={"max_upload_size": 4 * size},
                storage={"versions": keep},
                versions={"max_count": 3},
            )
        for server in servers.values():
            server.start()
        large: dict[str, list[float]] = {name: [] for name in servers}
        small: dict[str, list[float]] = {name: [] for name in servers}
        try:
            async with aiohttp.ClientSession() as session:
                targets = {}
                for name, server in servers.items():
                    targets[name] = (
                        await _locked(session, server, "big.bin"),
                        await _locked(session, server, "small.txt"),
                    )
                for round_ in range(args.repeat + 1):  # the first round warms up
                    order = list(servers) if round_ % 2 else list(reversed(servers))
                    for name in order:
                        (url, params), _ = targets[name]
                        headers = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": "B"}
                        started = time.perf_counter()
                        await upload(
                            session, url + "/contents", size, params=params, headers=headers
                        )
                        if round_:
                            large[name].append(size / 1e6 / (time.perf_counter() - started))
                    for name in order:
                        _, (url, params) = targets[name]
                        rate = await _small_burst(session, url, params, args.small)
                        if round_:
                            small[name].append(rate)
        finally:
            for server in servers.values():
                server.stop()
        kept = list((Path(tmp) / "on" / "data" / ".wopibridge" / "versions").glob("*/*"))
        print(f"versions kept on the 'on' server: {len(kept)} (max_count 3 per file)")
    print("measured on this machine; rows interleaved, medians of", args.repeat, "rounds")
    _row(f"PutFile {args.size_mib} MiB", large, "MB/s ")
    _row("PutFile 4 KiB", small, "req/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
