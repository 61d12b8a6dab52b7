"""Lock holders by site: the basis of openinapp's read-only answer at a second site."""

from __future__ import annotations

import pytest

from wopibridge.locks.sitelocks import SiteLockStore


@pytest.fixture
def shared():  # type: ignore[no-untyped-def]
    memory = pytest.importorskip("wopibridge.locks.memory")
    return memory.MemoryLockStore()


async def test_holder_follows_the_lock(shared) -> None:  # type: ignore[no-untyped-def]
    site_a = SiteLockStore(shared, shared, "https://a.example.org")
    site_b = SiteLockStore(shared, shared, "https://b.example.org")
    key = "site-b:report.docx"
    assert await site_a.holder(key) == ""
    assert not await site_b.locked_elsewhere(key)

    assert (await site_a.lock(key, "lock-A")).ok
    assert await site_b.holder(key) == "https://a.example.org"
    assert await site_b.locked_elsewhere(key)
    assert not await site_a.locked_elsewhere(key)

    conflict = await site_b.lock(key, "lock-B")
    assert (conflict.ok, conflict.current) == (False, "lock-A")
    assert await site_b.holder(key) == "https://a.example.org", "a failed lock marks nothing"

    assert (await site_a.unlock_and_relock(key, "lock-A", "lock-A2")).ok
    assert (await site_a.refresh(key, "lock-A2")).ok
    assert await site_b.locked_elsewhere(key)
    assert not (await site_b.unlock(key, "lock-A")).ok
    assert (await site_a.unlock(key, "lock-A2")).ok
    assert await site_b.holder(key) == ""
    assert (await site_b.lock(key, "lock-B")).ok
    assert await site_a.locked_elsewhere(key)
    assert await shared.get(key) == "lock-B"
