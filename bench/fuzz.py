"""Long fuzz runs against a started ``wopibridge serve``: the suite's generator
(:mod:`tests.support.fuzz`), many more requests, several at a time.

    python3 bench/fuzz.py [--requests 50000] [--seed 1313] [--concurrency 8] [--redis]

Prints the answers by status, the rate, and every rule broken: a status wopibridge does not
document, a 500 (no proof keys are configured, so none is excused), a traceback in an answer
or an ERROR or traceback in the server's log. Exits 1 if any rule was broken.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fuzz import NAMES, Fuzzer, Opened, bad_answer  # noqa: E402
from tests.support.procs import RedisServer  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import IOP_SECRET  # noqa: E402

APPS = {
    "apps.collabora": {"discovery_url": "http://127.0.0.1:9/hosting/discovery"},
    "apps.codimd": {"url": "http://127.0.0.1:9"},
}


def seed_files(data: Path) -> None:
    """Put back the files that requests deleted or renamed. Files still there are left alone:
    rewriting them in place under a GetFile being sent tears that answer (the server then
    aborts it, see ``tests/test_getfile_changes.py``)."""
    for name in NAMES:
        path = data / name
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'{"pad:x": {"atext": {"text": "t"}}}' if name.endswith("pad") else b"v0")


async def reopen(session: aiohttp.ClientSession, srv: ServerProcess) -> list[Opened]:
    seed_files(srv.workdir / "data")
    opened = []
    for name in NAMES:
        async with session.get(
            f"{srv.url}/wopi/iop/openinapp",
            params={
                "fileid": name,
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "fuzz@idp",
                "appname": "collabora",
                "appurl": "https://editor.example/x?",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        ) as resp:
            if resp.status != 200:  # deleted or renamed meanwhile by a request in flight
                continue
            body = await resp.json()
        wopi_src = unquote(body["app-url"].split("WOPISrc=", 1)[1])
        opened.append(Opened(wopi_src.rsplit("/", 1)[1], body["form-parameters"]["access_token"]))
    return opened


async def run(
    srv: ServerProcess, args: argparse.Namespace
) -> tuple[Counter[int], list[str], float]:
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fuzzer = Fuzzer(args.seed, await reopen(session, srv), IOP_SECRET)
        sent = 0
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal sent
            while sent < args.requests:
                sent += 1
                number = sent
                if number % 500 == 0:
                    fuzzer.opened = await reopen(session, srv) or fuzzer.opened
                request = fuzzer.next()
                try:
                    async with session.request(
                        request.method,
                        srv.url + request.path,
                        params=request.params,
                        headers=request.headers,
                        data=request.body,
                        allow_redirects=False,
                    ) as resp:
                        body = await resp.text(errors="replace")
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    problems.append(f"request {number}: {type(exc).__name__}: {request}")
                    continue
                statuses[status] += 1
                problem = bad_answer(status, body)
                if problem:
                    problems.append(f"request {number}: {problem}: {request}\n{body[:300]}")

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    return statuses, problems, elapsed


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis = None
        lock_url = "memory://"
        if args.redis:
            (work / "redis").mkdir()
            redis = RedisServer(work / "redis")
            redis.start()
            lock_url = redis.url
        srv = ServerProcess(work / "srv", lock_url, **APPS)
        (work / "srv" / "data").mkdir(parents=True)
        srv.start()
        try:
            statuses, problems, elapsed = await run(srv, args)
        finally:
            srv.stop()
            if redis is not None:
                redis.stop()
        log = srv.log()
        if args.keep_log:
            args.keep_log.write_text(log)
    for line in log.splitlines():
        if " ERROR " in line or " CRITICAL " in line or "Traceback" in line:
            problems.append(f"server log: {line[:300]}")
    total = sum(statuses.values())
    print(
        f"fuzz: seed {args.seed}, {total} requests, {args.concurrency} at a time, "
        f"locks {lock_url.split(':')[0]}, {elapsed:.1f} s ({total / elapsed:.0f} requests/s)"
    )
    print("  by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    print(f"  rules broken: {len(problems)}")
    for problem in problems[:20]:
        print("  - " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1313)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis", action="store_true", help="Redis locks (a test-owned server)")
    parser.add_argument("--keep-log", type=Path, help="copy the server's log to this file")
    sys.exit(asyncio.run(main(parser.parse_args())))
