"""PutFile of a large file beside a bare aiohttp handler that streams the body to a file,
fsyncs it and renames it into place, in one run, so the ratio means something on a noisy host.

    python3 bench/putfile.py [--size-mib 100] [--repeat 3] [--code DIR]

``--code`` runs wopibridge from another checkout (e.g. an older commit unpacked with
``git archive``), so a before/after pair is two runs of this same script. Both servers run in
their own processes; the uploads come from this process, one at a time, alternating between the
two servers. Printed: the median MB/s of each, the ratio of the medians PutFile/baseline, and
each server's median CPU seconds per upload (user + system, from ``/proc``). On a shared host the
CPU seconds are the steadier figure: wall time depends on what else runs.
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
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BASELINE, cpu_seconds, upload  # noqa: E402
from tests.support.procs import free_port, wait_for_port  # noqa: E402
from tests.support.server import write_config  # noqa: E402
from tests.support.wopi import IOP_SECRET, TOKEN_SECRET  # noqa: E402
from tests.support.wopi import open_remote as open_file  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    size = args.size_mib * 1024 * 1024
    code = Path(args.code).resolve() if args.code else ROOT
    with tempfile.TemporaryDirectory(prefix="wb-putbench-") as tmp:
        work = Path(tmp)
        port, base_port = free_port(), free_port()
        config = write_config(
            work / "wopibridge.toml",
            {
                "server": {
                    "port": port,
                    "state_dir": str(work / "state"),
                    "max_upload_size": 4 * size,
                },
                "storage": {"root": str(work / "data")},
                "security": {"token_secret": TOKEN_SECRET, "iop_secret": IOP_SECRET},
            },
        )
        (work / "data").mkdir()
        (work / "data" / "big.bin").write_bytes(b"x")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
        env["PYTHONPATH"] = str(code)
        log = (work / "server.log").open("wb")
        srv = subprocess.Popen(
            [sys.executable, "-m", "wopibridge", "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
            env=env,
        )
        base = subprocess.Popen(
            [sys.executable, "-c", BASELINE, str(base_port), str(work / "base.bin")]
        )
        try:
            wait_for_port(port, timeout=30)
            wait_for_port(base_port, timeout=30)
            async with aiohttp.ClientSession() as session:
                url, token = await open_file(session, f"http://127.0.0.1:{port}", "big.bin")
                params = {"access_token": token}
                async with session.post(
                    url, params=params, headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "B"}
                ) as r:
                    r.raise_for_status()
                wopi_headers = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": "B"}
                seconds: dict[str, list[float]] = {"put": [], "base": []}
                cpu: dict[str, list[float]] = {"put": [], "base": []}
                for i in range(args.repeat + 1):  # the first round warms up and is not counted
                    for name, proc, target, kw in (
                        (
                            "put",
                            srv,
                            url + "/contents",
                            {"params": params, "headers": wopi_headers},
                        ),
                        ("base", base, f"http://127.0.0.1:{base_port}/file", {}),
                    ):
                        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                        await upload(session, target, size, **kw)
                        if i:
                            seconds[name].append(time.perf_counter() - t0)
                            cpu[name].append(cpu_seconds(proc.pid) - c0)
            assert (work / "data" / "big.bin").stat().st_size == size
        finally:
            for proc in (srv, base):
                proc.terminate()
                proc.wait()
            log.close()
    mb = size / 1e6
    put, bare = mb / statistics.median(seconds["put"]), mb / statistics.median(seconds["base"])
    print(f"code: {code}")
    print(
        f"PutFile {args.size_mib} MiB, median of {args.repeat}: {put:8.1f} MB/s  "
        f"cpu {statistics.median(cpu['put']):.2f} s/upload"
    )
    print(
        f"bare handler + fsync:            {bare:8.1f} MB/s  "
        f"cpu {statistics.median(cpu['base']):.2f} s/upload"
    )
    print(f"ratio PutFile/bare: {put / bare:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--code", default="")
    asyncio.run(main(parser.parse_args()))
