"""Costs the editor layer adds: discovery parsing, editor URLs, guarded saves.

    python3 bench/editors.py

Prints the time to parse each real discovery document, editor URLs built per second, and the
throughput of a 100 MiB save through the local storage directly and through the guarded write
(which writes the body once, beside the file, so a refused save is kept by a rename).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from wopibridge.apps.discovery import fill_urlsrc, parse_discovery
from wopibridge.storage.local import LocalStorage
from wopibridge.wopi.saves.keeper import ConflictKeeper
from wopibridge.wopi.saves.naming import Owner

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "discovery"
SIZE = 100 * 1024 * 1024
CHUNK = 256 * 1024


async def body():
    block = b"x" * CHUNK
    for _ in range(SIZE // CHUNK):
        yield block


async def saves() -> None:
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        root = Path(tmp)
        storage = LocalStorage("local", root / "data", root / "state")
        (root / "data" / "big.odt").write_bytes(b"0")
        stat = await storage.resolve("big.odt")
        keeper = ConflictKeeper(root / "state" / "recovery")
        for label in ("direct", "guarded", "direct", "guarded"):
            stat = await storage.stat(stat.file_id)
            start = time.perf_counter()
            if label == "direct":
                await storage.write(stat.file_id, body(), expected_version=stat.version)
            else:
                await keeper.write(
                    storage,
                    stat.file_id,
                    stat,
                    Owner("bench"),
                    body(),
                    expected_version=stat.version,
                )
            elapsed = time.perf_counter() - start
            print(f"save 100 MiB {label:8s} {SIZE / elapsed / 2**20:8.1f} MB/s")
        await storage.close()


def main() -> None:
    for name in ("collabora-runtime.xml", "onlyoffice-runtime.xml", "msoffice-oos.xml"):
        data = (FIXTURES / name).read_bytes()
        start = time.perf_counter()
        for _ in range(20):
            doc = parse_discovery(data)
        per = (time.perf_counter() - start) / 20 * 1000
        print(f"parse {name:24s} {per:7.2f} ms ({len(doc.actions)} actions)")
    doc = parse_discovery((FIXTURES / "msoffice-oos.xml").read_bytes())
    start = time.perf_counter()
    n = 20000
    for _ in range(n):
        action = doc.find("docx", "edit")
        assert action is not None
        fill_urlsrc(action.urlsrc, "https://bridge.example/wopi/files/local.abc", {"UI_LLCC": "en"})
    print(f"editor URLs (lookup + fill) {n / (time.perf_counter() - start):10.0f} /s")
    asyncio.run(saves())


if __name__ == "__main__":
    main()
