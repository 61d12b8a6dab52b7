"""GetFile and PutFile of a large file through WebDAV: throughput and the server's RSS growth.

Starts a real wsgidav server (``tests/mesh/davserver.py``) and a ``wopibridge serve`` process
whose ``[storages.dav]`` points at it, mints an edit token, then streams the file out
(GetFile) and back in (Lock + PutFile), sampling the wopibridge process's resident set size
every 10 ms. Target: RSS growth under 50 MB while moving 200 MiB each way.

    python bench/webdav_rss.py [--size-mib 200]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.rss import RssSampler, rss_bytes  # noqa: E402
from tests.support.procs import free_port, wait_for_port  # noqa: E402
from wopibridge.security.tokens import TokenCodec  # noqa: E402
from wopibridge.storage import fileids  # noqa: E402
from wopibridge.storage.webdav import encode_id  # noqa: E402

SECRET = "bench-token-secret-0123456789abcdef"
IOP = "bench-iop-secret-0123456789abcdef"
BLOCK = 1024 * 1024


def start(cmd: list[str], port: int, **kwargs: object) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=REPO, **kwargs)  # type: ignore[call-overload]
    wait_for_port(port, timeout=30)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def run(size_mib: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        tmp_path = Path(tmp)
        share = tmp_path / "share"
        share.mkdir()
        name = "big.bin"
        block = os.urandom(BLOCK)
        with (share / name).open("wb") as handle:
            for _ in range(size_mib):
                handle.write(block)
        expected = hashlib.sha256()
        for _ in range(size_mib):
            expected.update(block)

        dav_port = free_port()
        dav = start(
            [
                sys.executable,
                "-m",
                "tests.mesh.davserver",
                "--port",
                str(dav_port),
                "--root",
                str(share),
                "--user",
                "bench",
                "--password",
                "bench-password",
            ],
            dav_port,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = free_port()
        config = tmp_path / "wopibridge.toml"
        config.write_text(
            f"""
[server]
host = "127.0.0.1"
port = {port}
state_dir = "{tmp_path / "state"}"
log_level = "WARNING"
[storage]
root = "{tmp_path / "data"}"
[security]
token_secret = "{SECRET}"
iop_secret = "{IOP}"
[storages.dav]
type = "webdav"
url = "http://127.0.0.1:{dav_port}/dav"
auth = "basic"
username = "bench"
password = "bench-password"
"""
        )
        server = start(
            [
                sys.executable,
                "-m",
                "wopibridge",
                "serve",
                "--config",
                str(config),
            ],
            port,
            stdout=subprocess.DEVNULL,
        )
        try:
            wopi_id = fileids.encode("dav", encode_id(name))
            token, _ = TokenCodec(SECRET, 3600).mint(
                file_id=wopi_id, user_id="bench", user_name="Bench", mode="edit", app="bench"
            )
            base = f"http://127.0.0.1:{port}/wopi/files/{wopi_id}"
            params = {"access_token": token}
            total = size_mib * BLOCK
            async with aiohttp.ClientSession() as http:
                async with http.get(base, params=params) as r:
                    assert r.status == 200, (r.status, await r.text())
                baseline = rss_bytes(server.pid) // 1024

                # Direct GET from wsgidav, for reference.
                start_t = time.perf_counter()
                headers = {"Authorization": "Basic YmVuY2g6YmVuY2gtcGFzc3dvcmQ="}
                async with http.get(
                    f"http://127.0.0.1:{dav_port}/dav/{name}", headers=headers
                ) as r:
                    async for _ in r.content.iter_chunked(BLOCK):
                        pass
                direct = total / (time.perf_counter() - start_t) / 1e6

                digest = hashlib.sha256()
                with RssSampler(server.pid) as get_rss:
                    start_t = time.perf_counter()
                    async with http.get(f"{base}/contents", params=params) as r:
                        assert r.status == 200, (r.status, await r.text())
                        async for chunk in r.content.iter_chunked(BLOCK):
                            digest.update(chunk)
                    get_s = time.perf_counter() - start_t
                assert digest.digest() == expected.digest(), "GetFile returned other bytes"

                lock = {"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "bench-lock"}
                async with http.post(base, params=params, headers=lock) as r:
                    assert r.status == 200, (r.status, await r.text())

                async def body():  # type: ignore[no-untyped-def]
                    for i in range(size_mib):
                        yield block if i else block[::-1]

                with RssSampler(server.pid) as put_rss:
                    start_t = time.perf_counter()
                    headers = {"X-WOPI-Override": "PUT", "X-WOPI-Lock": "bench-lock"}
                    async with http.post(
                        f"{base}/contents", params=params, headers=headers, data=body()
                    ) as r:
                        assert r.status == 200, (r.status, await r.text())
                    put_s = time.perf_counter() - start_t
                assert (share / name).stat().st_size == total
                with (share / name).open("rb") as handle:
                    assert handle.read(BLOCK) == block[::-1], "PutFile did not land"
        finally:
            stop(server)
            stop(dav)

    print(f"file: {size_mib} MiB through WebDAV (wsgidav on loopback), 2-core machine")
    print(f"wopibridge RSS before: {baseline / 1024:.1f} MiB")
    print(
        f"GetFile: {total / get_s / 1e6:.1f} MB/s (direct wsgidav GET {direct:.1f} MB/s), "
        f"peak RSS growth {(get_rss.peak // 1024 - baseline) / 1024:.1f} MiB"
    )
    print(
        f"PutFile: {total / put_s / 1e6:.1f} MB/s, "
        f"peak RSS growth {(put_rss.peak // 1024 - baseline) / 1024:.1f} MiB"
    )
    worst = max(get_rss.peak // 1024, put_rss.peak // 1024) - baseline
    verdict = "OK" if worst < 50 * 1000 else "OVER"
    print(f"target: RSS growth under 50 MB -> {verdict} ({worst * 1024 / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.size_mib))


if __name__ == "__main__":
    main()
