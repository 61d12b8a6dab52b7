"""A seeded fuzz run over the real HTTP surface: 2,000 random WOPI, open and bridge requests.

Every answer must be a documented status, none a 500 (no proof keys are configured here, so
no proof failure can excuse one), and the log must hold no traceback and no error. A failure
prints the seed and the request, which replays it: ``FUZZ_SEED=<seed> pytest tests/test_fuzz.py``.
``bench/fuzz.py`` runs the same generator for long runs against a started server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tests.support.fuzz import NAMES, Fuzzer, Opened, bad_answer
from tests.support.wopi import IOP_SECRET, open_file
from wopibridge.app import create_app

REQUESTS = 2000
SEED = int(os.environ.get("FUZZ_SEED", "1313"))
APPS = {
    "collabora": {"discovery_url": "http://127.0.0.1:9/hosting/discovery"},
    "codimd": {"url": "http://127.0.0.1:9"},
}


def seed_files(data_dir: Path) -> None:
    for name in NAMES:
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'{"pad:x": {"atext": {"text": "t"}}}' if name.endswith("pad") else b"v0")


async def test_fuzz(aiohttp_client, make_settings, lock_url, data_dir: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    client = await aiohttp_client(create_app(make_settings(lock_url, apps=APPS)))

    async def reopen() -> list[Opened]:
        """Deleted and renamed files come back (with new ids) and are opened again."""
        seed_files(data_dir)
        opened = []
        for name in NAMES:
            handle = await open_file(client, name, appname="collabora")
            opened.append(Opened(handle.file_id, handle.token))
        return opened

    fuzzer = Fuzzer(SEED, await reopen(), IOP_SECRET)
    statuses: dict[int, int] = {}
    for number in range(REQUESTS):
        request = fuzzer.next()
        async with client.request(
            request.method,
            request.path,
            params=request.params,
            headers=request.headers,
            data=request.body,
            allow_redirects=False,
        ) as resp:
            body = await resp.text(errors="replace")
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        problem = bad_answer(resp.status, body)
        assert problem is None, f"seed {SEED}, request {number}: {problem}: {request}\n{body}"
        if number % 100 == 99:
            fuzzer.opened = await reopen()
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [r.getMessage() for r in logged][:5]
    assert "Traceback" not in caplog.text
    # the run reached past the token checks, into the operations
    assert statuses.get(200, 0) > REQUESTS // 10, statuses
    assert len(statuses) >= 6, statuses
