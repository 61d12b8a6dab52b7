"""The XRootD storage against its baselines, measured in the same run.

- GetFile and PutFile of a large file (100 MiB) through wopibridge, in MB/s, beside ``xrdcp``
  moving the same file to and from the same xrootd server. Target: at least 0.8 of ``xrdcp``.
  ``xrdcp``'s time is the command's, start-up included, as a user's copy would take.
- CheckFileInfo requests per second on a file of the XRootD storage, beside the same on the
  local storage of the same wopibridge process.

Rows are interleaved (each round measures every row once, in turn) so that a machine that
gets busier or quieter affects all rows alike, and ratios are taken per round against the
baseline of that round; the median ratio is reported. An A/A row (the baseline against a
second run of itself) shows the noise. A missed target prints MISSED.

Starts a real ``xrootd`` (as the unprivileged ``xrootd`` user, :mod:`tests.support.xrootd`)
and a ``wopibridge serve`` process. Run as root on a machine with xrootd-server and
xrootd-client installed::

    python bench/xrootd_bench.py [--size-mib 100] [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.rss import RssSampler  # noqa: E402
from tests.support.fleet import open_on, running_fleet  # noqa: E402
from tests.support.xrootd import XrootdServer  # noqa: E402

BLOCK = 1024 * 1024
TARGET = 0.8


def xrdcp(*args: str) -> float:
    """Seconds one ``xrdcp`` copy takes."""
    binary = shutil.which("xrdcp")
    if binary is None:
        raise SystemExit("xrdcp is missing: apt-get install xrootd-client")
    start = time.perf_counter()
    subprocess.run([binary, "--force", "--nopbar", *args], check=True, capture_output=True)
    return time.perf_counter() - start


async def get_file(session: aiohttp.ClientSession, url: str, token: str) -> float:
    start = time.perf_counter()
    async with session.get(f"{url}/contents", params={"access_token": token}) as response:
        assert response.status == 200, response.status
        async for _ in response.content.iter_chunked(BLOCK):
            pass
    return time.perf_counter() - start


async def put_file(
    session: aiohttp.ClientSession, url: str, token: str, source: Path, lock: str
) -> float:
    async def body() -> AsyncIterator[bytes]:
        with source.open("rb") as handle:
            while block := handle.read(BLOCK):
                yield block

    start = time.perf_counter()
    async with session.post(
        f"{url}/contents",
        params={"access_token": token},
        headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": lock},
        data=body(),
    ) as response:
        assert response.status == 200, (response.status, await response.text())
    return time.perf_counter() - start


async def rate(call: Callable[[], Awaitable[None]], seconds: float, workers: int = 8) -> float:
    """Requests per second of ``workers`` concurrent loops of ``call`` for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(workers)))
    return done / (time.perf_counter() - start)


def line(name: str, values: list[float], unit: str, ratios: list[float] | None = None) -> str:
    text = f"  {name:<38} {statistics.median(values):9.1f} {unit}"
    if ratios is not None:
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        text += f"   ratio {statistics.median(ratios):.2f} (rounds {spread})"
    return text


async def run(args: argparse.Namespace) -> None:
    size = args.size_mib * BLOCK
    server = XrootdServer()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="wb-xrd-bench-"))
    try:
        (server.data / "bench").mkdir()
        source = work / "source.bin"
        with source.open("wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(BLOCK))
        shutil.copyfile(source, server.data / "bench" / "big.bin")
        (server.data / "bench" / "small.docx").write_bytes(b"small")
        (work / "local").mkdir()
        (work / "local" / "small.docx").write_bytes(b"small")
        table = server.table(root="/bench")
        remote = f"{server.url}//bench"
        sections: dict[str, Any] = {
            "storages.xrd": table,
            "storages.disk": {"type": "local", "root": str(work / "local")},
            "server": {"log_level": "WARNING"},
        }
        with running_fleet(work / "wb", "memory://", size=1, **sections) as fleet:
            async with aiohttp.ClientSession() as session:
                big, big_token, _ = await open_on(session, fleet, 0, "big.bin", endpoint="xrd")
                small, small_token, _ = await open_on(
                    session, fleet, 0, "small.docx", endpoint="xrd"
                )
                disk, disk_token, _ = await open_on(
                    session, fleet, 0, "small.docx", endpoint="disk"
                )
                async with session.post(
                    big,
                    params={"access_token": big_token},
                    headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "bench"},
                ) as response:
                    assert response.status == 200

                async def info(url: str, token: str) -> None:
                    async with session.get(url, params={"access_token": token}) as response:
                        assert response.status == 200
                        await response.read()

                rows: dict[str, list[float]] = {}
                ratios: dict[str, list[float]] = {}

                def add(name: str, value: float) -> None:
                    rows.setdefault(name, []).append(value)

                await get_file(session, big, big_token)  # warm: connections, page cache
                pid = fleet[0].proc.pid if fleet[0].proc else 0
                growth = 0
                for _ in range(args.rounds):
                    down = size / xrdcp(f"{remote}/big.bin", "/dev/null") / 1e6
                    down_again = size / xrdcp(f"{remote}/big.bin", "/dev/null") / 1e6
                    with RssSampler(pid) as get_rss:
                        get = size / await get_file(session, big, big_token) / 1e6
                    up = size / xrdcp(str(source), f"{remote}/copy.bin") / 1e6
                    with RssSampler(pid) as put_rss:
                        put = size / await put_file(session, big, big_token, source, "bench") / 1e6
                    growth = max(growth, get_rss.growth, put_rss.growth)
                    local_cfi = await rate(lambda: info(disk, disk_token), args.seconds)
                    xrd_cfi = await rate(lambda: info(small, small_token), args.seconds)
                    local_again = await rate(lambda: info(disk, disk_token), args.seconds)
                    for name, value in (
                        ("xrdcp download", down),
                        ("xrdcp download (A/A)", down_again),
                        ("GetFile over XRootD", get),
                        ("xrdcp upload", up),
                        ("PutFile over XRootD", put),
                        ("CheckFileInfo, local storage", local_cfi),
                        ("CheckFileInfo, local storage (A/A)", local_again),
                        ("CheckFileInfo over XRootD", xrd_cfi),
                    ):
                        add(name, value)
                    ratios.setdefault("aa", []).append(down_again / down)
                    ratios.setdefault("get", []).append(get / down)
                    ratios.setdefault("put", []).append(put / up)
                    ratios.setdefault("cfi_aa", []).append(local_again / local_cfi)
                    ratios.setdefault("cfi", []).append(xrd_cfi / local_cfi)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"XRootD storage, {args.size_mib} MiB file, {args.rounds} interleaved rounds, "
        f"median (measured on this machine, loopback)"
    )
    print(line("xrdcp download", rows["xrdcp download"], "MB/s"))
    print(line("xrdcp download (A/A)", rows["xrdcp download (A/A)"], "MB/s", ratios["aa"]))
    print(line("GetFile over XRootD", rows["GetFile over XRootD"], "MB/s", ratios["get"]))
    print(line("xrdcp upload", rows["xrdcp upload"], "MB/s"))
    print(line("PutFile over XRootD", rows["PutFile over XRootD"], "MB/s", ratios["put"]))
    local = "CheckFileInfo, local storage"
    print(line(local, rows[local], "req/s"))
    print(line(f"{local} (A/A)", rows[f"{local} (A/A)"], "req/s", ratios["cfi_aa"]))
    remote_cfi = "CheckFileInfo over XRootD"
    print(line(remote_cfi, rows[remote_cfi], "req/s", ratios["cfi"]))
    verdict = "met" if growth < 50e6 else "MISSED"
    print(
        f"target: RSS growth under 50 MB while moving the file -> {verdict} ({growth / 1e6:.1f} MB)"
    )
    for name, key in (("GetFile", "get"), ("PutFile", "put")):
        ratio = statistics.median(ratios[key])
        verdict = "met" if ratio >= TARGET else "MISSED"
        print(f"target: {name} at least {TARGET} of xrdcp -> {verdict} ({ratio:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per CheckFileInfo row")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
