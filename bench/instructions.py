"""CheckFileInfo in instructions per request, counted by valgrind's callgrind: a figure that
does not move with the machine's load, unlike requests/s and even CPU time.

    .venv/bin/python bench/instructions.py [--requests 800] [--code DIR ...]

Each server (the bare aiohttp baseline, ``wopibridge serve`` at the defaults, and with the
access log off) runs under callgrind, one after the other. After a warm-up, the counters are
zeroed (``callgrind_control -z``), ``--requests`` CheckFileInfo requests are sent from 8
concurrent clients, and the counters dumped: the server's instructions, user space only (the
kernel's share of a request, the same for every server, is not counted), divided by the
requests. ``--code`` adds the same two wopibridge servers running another checkout's code (a
before/after pair in one run). Needs ``valgrind`` (Debian: ``apt-get install valgrind``);
about a minute per server. The counts still move by up to a tenth between runs (how many
requests the event loop takes per wake-up depends on timing): compare the figures of one run,
as the ratios do. ``perf stat -e instructions`` would be quicker, but virtual
machines often do not expose the counter.

Targets: the defaults cost at most twice the bare handler's instructions (0.50 of bare), the
access log at most 10% of them.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BASELINE, Figure  # noqa: E402
from tests.support.procs import free_port, wait_for_port  # noqa: E402
from tests.support.server import write_config  # noqa: E402
from tests.support.wopi import IOP_SECRET, TOKEN_SECRET, open_remote  # noqa: E402

CALLGRIND = ["valgrind", "--tool=callgrind", "--dump-line=no", "--compress-strings=no"]
CONNECTIONS = 8


def start_wopibridge(code: Path, work: Path, log_off: bool) -> tuple[subprocess.Popen[bytes], str]:
    work.mkdir(parents=True)
    port = free_port()
    server = {"port": port, "state_dir": str(work / "state")}
    if log_off:
        server["log_level"] = "WARNING"
    config = write_config(
        work / "wopibridge.toml",
        {
            "server": server,
            "storage": {"root": str(work / "data")},
            "security": {"token_secret": TOKEN_SECRET, "iop_secret": IOP_SECRET},
        },
    )
    (work / "data").mkdir()
    (work / "data" / "bench.docx").write_bytes(b"x" * 1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
    env["PYTHONPATH"] = str(code)
    proc = subprocess.Popen(
        [
            *CALLGRIND,
            f"--callgrind-out-file={work}/cg.out",
            sys.executable,
            "-m",
            "wopibridge",
            "serve",
            "--config",
            str(config),
        ],
        stdout=(work / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=work,
    )
    wait_for_port(port, timeout=300)
    return proc, f"http://127.0.0.1:{port}"


def dumped_total(work: Path) -> int:
    files = sorted(glob.glob(f"{work}/cg.out.*"), key=os.path.getmtime)
    with open(files[-1]) as handle:
        for line in handle:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {files[-1]}")


async def per_request(
    session: aiohttp.ClientSession, pid: int, url: str, work: Path, requests: int
) -> float:
    async def client(count: int) -> None:
        for _ in range(count):
            async with session.get(url) as resp:
                assert resp.status == 200, resp.status
                await resp.read()

    each = requests // CONNECTIONS
    for _ in range(2):  # warm-up: connections, caches, the first requests' imports
        await asyncio.gather(*(client(each) for _ in range(CONNECTIONS)))
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
    await asyncio.gather(*(client(each) for _ in range(CONNECTIONS)))
    for old in glob.glob(f"{work}/cg.out.*"):
        os.unlink(old)
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    for _ in range(100):
        if glob.glob(f"{work}/cg.out.*"):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the dump is written whole
    return dumped_total(work) / (each * CONNECTIONS)


async def main(args: argparse.Namespace) -> None:
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="wb-instr-"))
    counts: dict[str, float] = {}
    codes = {"": ROOT, **{f" ({Path(c).name})": Path(c).resolve() for c in args.code}}
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONNECTIONS)
        ) as session:
            port = free_port()
            (work / "bare").mkdir()
            bare = subprocess.Popen(
                [
                    *CALLGRIND,
                    f"--callgrind-out-file={work}/bare/cg.out",
                    sys.executable,
                    "-c",
                    BASELINE,
                    str(port),
                    str(work / "bare.bin"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for_port(port, timeout=300)
                counts["bare"] = await per_request(
                    session, bare.pid, f"http://127.0.0.1:{port}/info", work / "bare", args.requests
                )
            finally:
                bare.terminate()
                bare.wait()
            for suffix, code in codes.items():
                for name, log_off in (("defaults", False), ("log off", True)):
                    label = name + suffix
                    folder = work / f"{len(counts)}"
                    proc, url = start_wopibridge(code, folder, log_off)
                    try:
                        src, token = await open_remote(session, url, "bench.docx")
                        counts[label] = await per_request(
                            session, proc.pid, f"{src}?access_token={token}", folder, args.requests
                        )
                    finally:
                        proc.terminate()
                        proc.wait()
                    print(f"{label:<24}{counts[label] / 1e3:9.1f} k instructions", flush=True)
    finally:
        time.sleep(0.1)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nCheckFileInfo, instructions per request (user space, callgrind), {args.requests}")
    for label, count in counts.items():
        print(f"{label:<24}{count / 1e3:9.1f} k")
    for suffix in codes:
        on, off = counts["defaults" + suffix], counts["log off" + suffix]
        print(Figure(f"CheckFileInfo / bare{suffix}", counts["bare"] / on, 0.50).line())
        print(Figure(f"access log share{suffix}", 1 - off / on, 0.10, at_least=False).line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument(
        "--code", action="append", default=[], help="another checkout to measure as well"
    )
    asyncio.run(main(parser.parse_args()))
