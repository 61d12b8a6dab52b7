"""Lock+Unlock cycles/s on ``.odt`` files with desktop lock files on, beside the same with them
off, in one run; and how long after the WOPI answer the lock file appears and goes.

    python3 bench/lockfiles_bench.py [--seconds 5] [--clients 8] [--trials 50] [--rounds 3]

Two ``wopibridge serve`` processes, identical but for ``[apps.collabora] lock_files``, each on
its own data folder of ``.odt`` files; each client alternates LOCK and UNLOCK on its own file,
one request at a time. The target is at least half the speed without lock files, with each
lock file still present within 1 s of its lock being granted and gone within 1 s of the unlock.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wopi import IOP_SECRET  # noqa: E402

CLOSED_PORT = "http://127.0.0.1:9/hosting/discovery"  # openinapp brings the editor URL


async def open_odt(session: aiohttp.ClientSession, base: str, name: str) -> tuple[str, str]:
    async with session.get(
        f"{base}/wopi/iop/openinapp",
        params={
            "fileid": name,
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u@idp",
            "username": "Bench User",
            "appname": "collabora",
            "appurl": "https://editor.example/x?",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    wopi_src = unquote(body["app-url"].split("WOPISrc=", 1)[1])
    return wopi_src, body["form-parameters"]["access_token"]


async def call(session: aiohttp.ClientSession, url: str, token: str, op: str, lock: str) -> None:
    async with session.post(
        url,
        params={"access_token": token},
        headers={"X-WOPI-Override": op, "X-WOPI-Lock": lock},
    ) as resp:
        assert resp.status == 200, await resp.text()


async def cycles(srv: ServerProcess, seconds: float, clients: int) -> float:
    async with aiohttp.ClientSession() as session:
        targets = [await open_odt(session, srv.url, f"doc{i}.odt") for i in range(clients)]
        done = 0
        deadline = time.perf_counter() + seconds

        async def loop(i: int) -> None:
            nonlocal done
            url, token = targets[i]
            while time.perf_counter() < deadline:
                await call(session, url, token, "LOCK", f"L{i}")
                await call(session, url, token, "UNLOCK", f"L{i}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(clients)))
        return done / (time.perf_counter() - started)


async def wait_for(check: object, limit: float = 5.0) -> float:
    started = time.perf_counter()
    while not check():  # type: ignore[operator]
        if time.perf_counter() - started > limit:
            return float("inf")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def latencies(srv: ServerProcess, trials: int) -> tuple[list[float], list[float]]:
    """Seconds from each LOCK answer to the lock file's appearance, and from each UNLOCK
    answer to its removal, while the other clients' load has stopped."""
    lock_file = srv.workdir / "data" / ".~lock.probe.odt#"
    appear, vanish = [], []
    async with aiohttp.ClientSession() as session:
        url, token = await open_odt(session, srv.url, "probe.odt")
        for _ in range(trials):
            await call(session, url, token, "LOCK", "P")
            appear.append(await wait_for(lock_file.exists))
            await call(session, url, token, "UNLOCK", "P")
            vanish.append(await wait_for(lambda: not lock_file.exists()))
    return appear, vanish


def server(work: Path, name: str, lock_files: bool, clients: int) -> ServerProcess:
    data = work / name / "data"
    data.mkdir(parents=True)
    for i in range(clients):
        (data / f"doc{i}.odt").write_bytes(b"odt")
    (data / "probe.odt").write_bytes(b"odt")
    return ServerProcess(
        work / name,
        **{
            "server": {"log_level": "WARNING"},
            "apps.collabora": {"discovery_url": CLOSED_PORT, "lock_files": lock_files},
        },
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        off = server(work, "off", False, args.clients)
        on = server(work, "on", True, args.clients)
        for srv in (off, on):
            srv.start()
        try:
            # alternated, so that a load change on a shared machine hits both alike
            offs, ons = [], []
            for _ in range(args.rounds):
                offs.append(await cycles(off, args.seconds, args.clients))
                ons.append(await cycles(on, args.seconds, args.clients))
            without, with_files = sum(offs) / len(offs), sum(ons) / len(ons)
            appear, vanish = await latencies(on, args.trials)
        finally:
            for srv in (off, on):
                srv.stop()
    ratio = with_files / without
    print(
        f"Lock+Unlock on .odt, {args.clients} clients, {args.rounds} alternated rounds"
        f" of {args.seconds:.0f} s each"
    )
    print(f"  lock files off  {without:9.0f} cycles/s")
    print(f"  lock files on   {with_files:9.0f} cycles/s   ratio {ratio:.2f} (target >= 0.50)")
    for what, times in (("appears after the LOCK", appear), ("gone after the UNLOCK", vanish)):
        median = sorted(times)[len(times) // 2]
        print(
            f"  lock file {what} answer: median {median * 1e3:.1f} ms,"
            f" max {max(times) * 1e3:.1f} ms (target < 1000 ms)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
