"""What the benches share: the bare aiohttp baselines, the load generators, the CPU time of a
process, and the one way a figure is checked against its target.

Every figure of ``bench/`` is a ratio to a baseline measured in the same run, on the same
machine, with the rounds of the variants interleaved, so that a neighbour's load hurts them
alike; an A/A control (the same server measured twice, or the baseline against itself) is
printed beside them and says how far two equal things drift apart in this run. A figure that
misses its target is printed as MISSED, with its unrounded value.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

#: Bare aiohttp handlers: ``/info`` returns a fixed CheckFileInfo-sized JSON document,
#: ``GET /file`` is ``web.FileResponse``, ``POST /file`` streams the body into a temporary
#: file, fsyncs it and renames it over the file (what an atomic save must do at least).
#: Run as ``python -c BASELINE <port> <file>``.
BASELINE = textwrap.dedent(
    """
    import os, sys
    from aiohttp import web
    path = sys.argv[2]
    DOC = {"BaseFileName": "bench.bin", "OwnerId": "0", "Size": 1, "UserId": "u",
           "Version": "v1", "UserCanWrite": True, "SupportsLocks": True}
    async def info(request):
        return web.json_response(DOC)
    async def get(request):
        return web.FileResponse(path, chunk_size=256 * 1024)
    async def put(request):
        temp = path + ".up"
        with open(temp, "wb") as f:
            async for chunk in request.content.iter_chunked(256 * 1024):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        return web.json_response({})
    app = web.Application(client_max_size=1 << 40)
    app.router.add_get("/info", info)
    app.router.add_post("/info", info)
    app.router.add_get("/file", get)
    app.router.add_post("/file", put)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


#: The least any CheckFileInfo of this server does beyond the bare handler, as a bare handler:
#: the file's stat off the event loop (wopibridge's own offload thread, as every request path
#: must) and one access-log line (wopibridge's own JSON writer, to stderr). Its cost against
#: ``BASELINE`` says how much of the 0.50 target's budget is left for the WOPI work itself.
#: Run as ``python -c FLOOR <port> <file>`` with the checkout on ``PYTHONPATH``.
FLOOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aiohttp import web
    from wopibridge.ops.logs import StderrHandler
    from wopibridge.storage.offload import Offload
    path = Path(sys.argv[2])
    DOC = {"BaseFileName": "bench.bin", "OwnerId": "0", "Size": 1, "UserId": "u",
           "Version": "v1", "UserCanWrite": True, "SupportsLocks": True}
    offload, log = Offload("stat", 1), StderrHandler()
    async def info(request):
        started = time.perf_counter()
        st = await offload.run(path.stat)
        answer = web.json_response({**DOC, "Size": st.st_size})
        ms = round((time.perf_counter() - started) * 1000, 2)
        raw = request.rel_url.raw_path
        fields = {"method": request.method, "path": raw, "op": "CheckFileInfo",
                  "status": 200, "ms": ms, "file_id": "f"}
        log.write_line("floor.access", f"GET {raw} CheckFileInfo 200 {ms:.2f}ms", fields)
        return answer
    app = web.Application()
    app.router.add_get("/info", info)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, its threads included (from ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


async def hammer(session: aiohttp.ClientSession, make: Any, seconds: float, workers: int) -> float:
    """Requests per second of ``make()`` from ``workers`` concurrent loops for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await make()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(workers)))
    return done / (time.perf_counter() - started)


def wrk_run(url: str, seconds: float, connections: int, script: str | None = None) -> str:
    """wrk's report (a C load generator: the client costs little CPU); failed requests
    fail the run."""
    cmd = ["wrk", "-t", str(connections if script else 1), "-c", str(connections)]
    cmd += ["-d", f"{max(1, round(seconds))}s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script or "")
    if script:
        cmd += ["-s", handle.name]
    try:
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    return out


def wrk_rate(url: str, seconds: float, connections: int, script: str | None = None) -> float:
    """Requests/s measured by wrk."""
    out = wrk_run(url, seconds, connections, script)
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)


def wrk_count(url: str, seconds: float, connections: int) -> tuple[int, float]:
    """Requests wrk completed, and over how many seconds."""
    started = time.perf_counter()
    out = wrk_run(url, seconds, connections)
    elapsed = time.perf_counter() - started
    for line in out.splitlines():
        if "requests in" in line:
            return int(line.split()[0]), elapsed
    raise RuntimeError(out)


async def download(session: aiohttp.ClientSession, url: str, **kw: Any) -> int:
    total = 0
    async with session.get(url, **kw) as resp:
        resp.raise_for_status()
        async for chunk in resp.content.iter_chunked(1 << 20):
            total += len(chunk)
    return total


async def upload(session: aiohttp.ClientSession, url: str, size: int, **kw: Any) -> None:
    block = os.urandom(1 << 20)

    async def body() -> Any:
        for _ in range(size // len(block)):
            yield block

    headers = {**kw.pop("headers", {}), "Content-Length": str(size)}
    async with session.post(url, data=body(), headers=headers, **kw) as resp:
        resp.raise_for_status()


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


@dataclass
class Figure:
    """One checked figure: ``value`` against ``target`` (``at least`` or ``at most``)."""

    name: str
    value: float
    target: float
    at_least: bool = True
    unit: str = ""
    detail: str = ""
    #: how far the A/A control of this figure drifted from 1 in the same run
    noise: float = 0.0

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target

    @property
    def verdict(self) -> str:
        """MISSED whenever the value misses; a value that meets its target by less than the
        A/A drift says so, since the same run would let equal servers differ by more."""
        if not self.met:
            return "MISSED"
        # a ratio is uncertain by its drift times itself; a share (at most) by the drift
        uncertain = self.noise * self.value if self.at_least else self.noise
        return "met" if abs(self.value - self.target) > uncertain else "met, within A/A noise"

    def target_text(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.target:g}{self.unit}"

    def value_text(self) -> str:
        # three decimals: 0.4996 reads 0.500 and says MISSED beside it, never "0.50, met"
        return f"{self.value:.3f}{self.unit}"

    def line(self) -> str:
        return (
            f"{self.name:<44}{self.value_text():>10}  target {self.target_text():<10}"
            f" {self.verdict:<7}{self.detail}"
            + (f"  (A/A drift {self.noise:.3f})" if self.noise else "")
        )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)
