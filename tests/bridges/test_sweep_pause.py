"""The save loop after its state store was down: it looks again within seconds of the store's
return, however long the outage was (a Sentinel failover takes a few seconds; the loop's pause
used to grow to 30 s over one and hold every bridged save that long after it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from wopibridge.bridge.engine import Bridge
from wopibridge.bridge.memory import MemoryBridgeStore
from wopibridge.errors import Unavailable
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.storage.local import LocalStorage
from wopibridge.storage.registry import StorageRegistry

#: Seconds within which the loop must look again once the store is back.
RESUMED_WITHIN = 4.0


class FailingStore(MemoryBridgeStore):
    """The in-process state store, unreachable while ``down`` (as Redis in a failover)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.sweeps: list[float] = []  # when each sweep reached the store, up or down

    async def docids(self) -> list[str]:
        self.sweeps.append(time.monotonic())
        if self.down:
            raise Unavailable("The bridge state store is unavailable")
        return await super().docids()


async def test_sweeps_resume_within_the_pause_cap_after_an_outage(tmp_path: Path) -> None:
    store = FailingStore()
    local = LocalStorage("local", tmp_path / "data", tmp_path / "state")
    async with aiohttp.ClientSession() as http:
        bridge = Bridge(
            editors={},
            store=store,
            storages=StorageRegistry({"local": local}, "local"),
            locks=MemoryLockStore(),
            http=http,
            key=b"k" * 32,
        )
        assert bridge.tick == 1.0
        store.down = True
        loop = asyncio.create_task(bridge.run())
        try:
            await asyncio.sleep(7.0)  # failed sweeps at 0, 2 and 5 s: the pause reached its cap
            store.down = False
            back = time.monotonic()
            while not store.sweeps or store.sweeps[-1] < back:
                assert time.monotonic() - back < RESUMED_WITHIN, "no sweep since the store is back"
                await asyncio.sleep(0.05)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await local.close()
    outage = [b - a for a, b in zip(store.sweeps, store.sweeps[1:], strict=False)]
    assert max(outage) <= RESUMED_WITHIN, outage
