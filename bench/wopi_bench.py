"""Throughput and memory of the WOPI hot paths, each beside a bare aiohttp baseline.

Everything is measured in one run on the same machine, so the ratios mean something even on a
noisy host. Servers run in their own processes; the load comes from this process.

    python3 bench/wopi_bench.py [--seconds 5] [--concurrency 32] [--size-mib 100]

Figures printed:
- CheckFileInfo requests/s vs a bare handler returning a fixed JSON document;
- GetFile MB/s vs ``web.FileResponse`` of the same file; PutFile MB/s vs a bare handler
  streaming the body into a file; the server's peak RSS growth while moving the file;
- Lock+Unlock cycles/s with the in-process and the Redis lock store, beside a bare POST
  handler, and with Redis and one worker process per core (``server.workers``);
- the cost of verifying an access token, cold and cached.

Servers run with the default settings, access log included; ``observability_bench.py``
measures what the access log and tracing cost.
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench.common import (  # noqa: E402
    BASELINE,
    download,
    hammer,
    mb_per_s,
    upload,
    wrk_rate,
)
from bench.rss import RssSampler  # noqa: E402
from tests.support.procs import RedisServer, children, free_port, wait_for_port  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import TOKEN_SECRET  # noqa: E402
from tests.support.wopi import open_remote as open_file  # noqa: E402

WRK_LOCKS = """
-- One wrk thread (one connection) per file. The next operation follows the last answer, not
-- a request counter: wrk calls request() once more than it sends, to check the script.
local files = {%s}
local token = {%s}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("id", n)
end
function init(args)
  me = id
  locked = false
end
function request()
  local op = locked and "UNLOCK" or "LOCK"
  return wrk.format("POST", files[me] .. "?access_token=" .. token[me],
    {["X-WOPI-Override"] = op, ["X-WOPI-Lock"] = "bench-" .. me}, "")
end
function response(status, headers, body)
  if status == 200 then
    locked = not locked
  else
    print("file " .. me .. ": " .. status .. " " .. body)
  end
end
"""


def lua_list(values: list[str]) -> str:
    return ", ".join('"' + v + '"' for v in values)


def wrk_lock_cycles(targets: list[tuple[str, str]], seconds: float) -> float:
    """Lock+Unlock cycles/s from one wrk thread and connection per (url, token) target.

    Each connection alternates LOCK and UNLOCK on its own file, one request at a time, so
    every request succeeds (wrk's "Non-2xx" check fails the run otherwise) and a cycle is two
    requests.
    """
    script = WRK_LOCKS % (lua_list([u for u, _ in targets]), lua_list([t for _, t in targets]))
    return wrk_rate(targets[0][0], seconds, len(targets), script) / 2


async def bench_transfer(
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
    srv: ServerProcess,
    base_url: str,
    base_pid: int,
) -> dict[str, float]:
    size = args.size_mib * 1024 * 1024
    url, token = await open_file(session, srv.url, "big.bin")
    params = {"access_token": token}
    results: dict[str, float] = {}
    assert srv.proc is not None
    with RssSampler(srv.proc.pid) as rss:
        await download(session, url + "/contents", params=params)  # warm the page cache
        started = time.perf_counter()
        for _ in range(args.repeat):
            assert await download(session, url + "/contents", params=params) == size
        results["get"] = mb_per_s(size * args.repeat, time.perf_counter() - started)
        async with session.post(
            url, params=params, headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "B"}
        ) as r:
            r.raise_for_status()
        started = time.perf_counter()
        for _ in range(args.repeat):
            await upload(
                session,
                url + "/contents",
                size,
                params=params,
                headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "B"},
            )
        results["put"] = mb_per_s(size * args.repeat, time.perf_counter() - started)
    results["rss_growth_mb"] = (rss.growth) / 1e6
    with RssSampler(base_pid) as base_rss:
        await download(session, f"{base_url}/file")
        started = time.perf_counter()
        for _ in range(args.repeat):
            assert await download(session, f"{base_url}/file") == size
        results["get_base"] = mb_per_s(size * args.repeat, time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(args.repeat):
            await upload(session, f"{base_url}/file", size)
        results["put_base"] = mb_per_s(size * args.repeat, time.perf_counter() - started)
    results["rss_growth_base_mb"] = (base_rss.growth) / 1e6
    return results


async def bench_locks(
    session: aiohttp.ClientSession, srv: ServerProcess, seconds: float, workers: int
) -> float:
    targets = [await open_file(session, srv.url, f"lock{i}.bin") for i in range(workers)]
    queue = list(range(workers))
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal done
        url, token = targets[i]
        headers = {"X-WOPI-Lock": f"L{i}"}
        while time.perf_counter() < deadline:
            for override in ("LOCK", "UNLOCK"):
                async with session.post(
                    url,
                    params={"access_token": token},
                    headers={**headers, "X-WOPI-Override": override},
                ) as r:
                    assert r.status == 200, await r.text()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in queue))
    return done / (time.perf_counter() - started)


def token_costs() -> tuple[float, float]:
    from wopibridge.security.tokens import TokenCodec

    codec = TokenCodec(TOKEN_SECRET, 3600)
    tokens = [codec.mint(file_id=f"local.f{i}", user_id="u", user_name="U")[0] for i in range(2000)]
    cold = TokenCodec(TOKEN_SECRET, 3600, cache_size=1)
    started = time.perf_counter()
    for token in tokens:
        cold.verify(token)
    cold_us = (time.perf_counter() - started) / len(tokens) * 1e6
    warm = TokenCodec(TOKEN_SECRET, 3600)
    warm.verify(tokens[0])
    started = time.perf_counter()
    for _ in range(len(tokens)):
        warm.verify(tokens[0])
    warm_us = (time.perf_counter() - started) / len(tokens) * 1e6
    return cold_us, warm_us


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="wopibench-"))
    data = work / "srv" / "data"
    data.mkdir(parents=True)
    size = args.size_mib * 1024 * 1024
    with (data / "big.bin").open("wb") as handle:
        for _ in range(args.size_mib):
            handle.write(os.urandom(1 << 20))
    for i in range(max(args.concurrency, args.lock_clients)):
        (data / f"lock{i}.bin").write_bytes(b"x")
    base_file = work / "base.bin"
    # a copy, not a hard link: wopibridge opens a file with other names read-only
    shutil.copyfile(data / "big.bin", base_file)
    base_port = free_port()
    baseline = subprocess.Popen([sys.executable, "-c", BASELINE, str(base_port), str(base_file)])
    (work / "redis").mkdir()
    redis = RedisServer(work / "redis")
    redis.start()
    # the default logging (INFO: an access line per request), as servers run
    limits = {"server": {"max_upload_size": 4 * size}}
    srv = ServerProcess(work / "srv", **limits)
    srv_redis = ServerProcess(work / "srv-redis", lock_url=redis.url, **limits)
    workers = os.cpu_count() or 2
    srv_workers = ServerProcess(
        work / "srv-workers",
        lock_url=redis.url,
        server={**limits["server"], "workers": workers},
    )
    for name in ("srv-redis", "srv-workers"):
        (work / name / "data").mkdir(parents=True)
        for i in range(max(args.concurrency, 2 * args.lock_clients)):
            (work / name / "data" / f"lock{i}.bin").write_bytes(b"x")
    try:
        srv.start()
        srv_redis.start()
        srv_workers.start()
        assert srv_workers.proc is not None
        while len(children(srv_workers.proc.pid)) < workers:
            time.sleep(0.1)
        time.sleep(1.5)  # each worker imports and starts listening within this
        wait_for_port(base_port)
        base_url = f"http://127.0.0.1:{base_port}"
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            url, token = await open_file(session, srv.url, "big.bin")

            async def cfi() -> None:
                async with session.get(url, params={"access_token": token}) as r:
                    assert r.status == 200
                    await r.read()

            async def bare() -> None:
                async with session.get(f"{base_url}/info") as r:
                    await r.read()

            await hammer(session, cfi, 0.5, args.concurrency)
            await hammer(session, bare, 0.5, args.concurrency)
            if shutil.which("wrk"):
                client = "wrk"
                cfi_rps = wrk_rate(f"{url}?access_token={token}", args.seconds, args.concurrency)
                bare_rps = wrk_rate(f"{base_url}/info", args.seconds, args.concurrency)
            else:
                client = "aiohttp client (install wrk for figures less bound by the client)"
                cfi_rps = await hammer(session, cfi, args.seconds, args.concurrency)
                bare_rps = await hammer(session, bare, args.seconds, args.concurrency)
            transfer = await bench_transfer(session, args, srv, base_url, baseline.pid)
            if shutil.which("wrk"):
                lock_mem, lock_redis = [
                    wrk_lock_cycles(
                        [
                            await open_file(session, server.url, f"lock{i}.bin")
                            for i in range(args.lock_clients)
                        ],
                        args.seconds,
                    )
                    for server in (srv, srv_redis)
                ]
                lock_base = wrk_lock_cycles(
                    [(f"{base_url}/info", "-")] * args.lock_clients, args.seconds
                )
                # twice the clients, so that SO_REUSEPORT's spread over the workers evens out
                lock_workers = wrk_lock_cycles(
                    [
                        await open_file(session, srv_workers.url, f"lock{i}.bin")
                        for i in range(2 * args.lock_clients)
                    ],
                    args.seconds,
                )
            else:
                lock_mem = await bench_locks(session, srv, args.seconds, args.lock_clients)
                lock_redis = await bench_locks(session, srv_redis, args.seconds, args.lock_clients)
                lock_workers = await bench_locks(
                    session, srv_workers, args.seconds, 2 * args.lock_clients
                )
                lock_base = None
        cold_us, warm_us = token_costs()
    finally:
        srv.stop()
        srv_redis.stop()
        srv_workers.stop()
        baseline.terminate()
        baseline.wait()
        redis.stop()

    def row(
        name: str, value: float, unit: str, base: float | None = None, target: str = ""
    ) -> None:
        ratio = f"{value / base * 100:6.1f}% of baseline {base:10.1f}" if base else " " * 36
        print(f"{name:<28}{value:10.1f} {unit:<10}{ratio}  {target}")

    print(
        f"\nwopibridge benchmark: {os.cpu_count()} cores, concurrency {args.concurrency}, "
        f"{args.size_mib} MiB file x{args.repeat}, {args.seconds:.0f} s per rate, "
        f"load from {client}"
    )
    row("CheckFileInfo", cfi_rps, "req/s", bare_rps, "target >= 40%")
    row("GetFile", transfer["get"], "MB/s", transfer["get_base"], "target >= 90%")
    row(
        "PutFile (atomic, fsync)",
        transfer["put"],
        "MB/s",
        transfer["put_base"],
        "baseline: bare streamed write, fsync, rename",
    )
    row("server RSS growth", transfer["rss_growth_mb"], "MB", None, "target < 50 MB")
    row("baseline RSS growth", transfer["rss_growth_base_mb"], "MB")
    row("Lock+Unlock, in-process", lock_mem, "cycles/s", lock_base)
    row("Lock+Unlock, Redis", lock_redis, "cycles/s", lock_base, "target >= 2000")
    row(
        f"Lock+Unlock, Redis, {workers} wk",
        lock_workers,
        "cycles/s",
        None,
        f"target >= 2000; server.workers = {workers}",
    )
    row("token verify, cold", cold_us, "us")
    row("token verify, cached", warm_us, "us")
    per_request_us = 1e6 / cfi_rps
    print(f"{'cold verify / CFI request':<28}{cold_us / per_request_us * 100:10.1f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--lock-clients",
        type=int,
        default=4,
        help="Lock+Unlock clients, each on its own file; wrk needs one thread per client",
    )
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
