"""The owner's lock token kept beside the site's WOPI lock: one Redis call per step the order of
the operations needs, and the same answers whether the token rides on the lock's calls or is
kept in a store of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.procs import RedisServer
from wopibridge.instruments import Instruments
from wopibridge.locks import (
    LockResult,
    LockStore,
    MemoryLockStore,
    RedisConnection,
    RedisLockStore,
)
from wopibridge.locks.instrumented import InstrumentedLockStore
from wopibridge.locks.kepttokens import TOKEN_SUFFIX, TokensApart, TokensBeside, kept_tokens
from wopibridge.locks.ownerlocks import OwnerAttempt, OwnerHolder, OwnerLockStore


@dataclass
class FakeOwner:
    """An owner's storage that grants one lock at a time, and records what it was asked."""

    active: bool = True
    held: str = ""
    other: OwnerHolder | None = None  # set: somebody else holds the file
    calls: list[str] = field(default_factory=list)
    issued: int = 0

    async def acquire(self, key: str, lock_id: str, site: str, ttl: float) -> OwnerAttempt:
        self.calls.append("acquire")
        if self.other is not None:
            return OwnerAttempt(holder=self.other)
        self.issued += 1
        self.held = f"token-{self.issued}"
        return OwnerAttempt(token=self.held)

    async def refresh(self, key: str, token: str, lock_id: str, ttl: float) -> bool:
        self.calls.append("refresh")
        return token == self.held

    async def release(self, key: str, token: str) -> None:
        self.calls.append(f"release {token}")
        if token == self.held:
            self.held = ""

    async def holder(self, key: str) -> OwnerHolder | None:
        return self.other


@pytest.fixture(params=["redis", "memory", "apart"])
async def stores(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[LockStore, LockStore, str]]:
    """(site store, token store, how the tokens are kept)."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"kept{id(request)}:"
        site = RedisLockStore.from_url(server.url, prefix=prefix)
        tokens = RedisLockStore.from_url(server.url, prefix=prefix)
        yield site, tokens, "beside"
        await site.close()
        await tokens.close()
    elif request.param == "memory":
        same = MemoryLockStore()
        yield same, same, "beside"
    else:
        yield MemoryLockStore(), MemoryLockStore(), "apart"


def test_the_apps_wiring_keeps_tokens_beside_its_locks(redis_server: RedisServer) -> None:
    """The app's instrumented Redis store and a storage's token store on the same Redis and
    prefix are one keyspace; another prefix, or two process tables, are not."""
    target = RedisConnection.from_url(redis_server.url).target
    app = InstrumentedLockStore(RedisLockStore(RedisConnection(target)), Instruments.create())
    same = RedisLockStore(RedisConnection(target))
    assert isinstance(kept_tokens(app, same), TokensBeside)
    other = RedisLockStore(RedisConnection(target), prefix="elsewhere:")
    assert isinstance(kept_tokens(app, other), TokensApart)
    assert isinstance(kept_tokens(MemoryLockStore(), MemoryLockStore()), TokensApart)
    memory = InstrumentedLockStore(MemoryLockStore(), Instruments.create())
    assert isinstance(kept_tokens(memory, memory), TokensBeside)


async def test_lock_keeps_the_token_before_it_answers_and_unlock_releases_it(
    stores: tuple[LockStore, LockStore, str],
) -> None:
    site, tokens, how = stores
    owner = FakeOwner()
    store = OwnerLockStore(site, owner, tokens, "https://a.test")
    assert type(store._kept).__name__ == ("TokensBeside" if how == "beside" else "TokensApart")
    assert (await store.lock("f", "L")).ok
    assert await tokens.get("f" + TOKEN_SUFFIX) == "token-1"  # any instance can save now
    assert (await store.lock("f", "L")).ok  # again: the kept token is refreshed, not retaken
    assert owner.calls == ["acquire", "refresh"]
    assert not (await store.unlock("f", "other")).ok  # a refused unlock keeps both locks
    assert await tokens.get("f" + TOKEN_SUFFIX) == "token-1" and owner.held == "token-1"
    assert (await store.unlock("f", "L")).ok
    assert owner.calls[-1] == "release token-1" and owner.held == ""
    assert await tokens.get("f" + TOKEN_SUFFIX) == ""
    assert await site.get("f") == ""


async def test_a_refusing_owner_gets_the_site_lock_back(
    stores: tuple[LockStore, LockStore, str],
) -> None:
    site, tokens, _ = stores
    owner = FakeOwner(other=OwnerHolder(lock_id="theirs", site="https://b.test", name="Bo"))
    store = OwnerLockStore(site, owner, tokens, "https://a.test")
    assert await store.lock("f", "L") == LockResult(False, "theirs")
    assert await site.get("f") == "" and await tokens.get("f" + TOKEN_SUFFIX) == ""


async def test_a_token_of_a_lapsed_lock_is_replaced(
    stores: tuple[LockStore, LockStore, str],
) -> None:
    """The owner's lock was lost (broken at the server): Lock takes a new one and keeps its
    token over the old."""
    site, tokens, _ = stores
    owner = FakeOwner()
    store = OwnerLockStore(site, owner, tokens, "https://a.test")
    assert (await store.lock("f", "L")).ok
    owner.held = ""  # broken by an administrator
    assert (await store.refresh("f", "L")).ok
    assert owner.calls == ["acquire", "refresh", "acquire"]
    assert await tokens.get("f" + TOKEN_SUFFIX) == "token-2"
    assert (await store.unlock_and_relock("f", "L", "M")).ok
    assert owner.calls[-1] == "refresh" and await site.get("f") == "M"


async def test_lock_and_unlock_make_one_redis_call_per_step(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Site lock (reading the token), token kept; site unlock (taking it): three commands."""
    prefix = f"count{id(redis_server)}:"
    site = RedisLockStore.from_url(redis_server.url, prefix=prefix)
    tokens = RedisLockStore.from_url(redis_server.url, prefix=prefix)
    store = OwnerLockStore(site, FakeOwner(), tokens, "https://a.test")
    sent: list[str] = []
    for connection in (site.connection, tokens.connection):
        execute = connection.execute

        def counted(*args: Any, execute: Any = execute) -> Any:
            sent.append(str(args[0]))
            return execute(*args)

        monkeypatch.setattr(connection, "execute", counted)
    try:
        assert (await store.lock("f", "L")).ok
        assert (await store.unlock("f", "L")).ok
        assert sent == ["EVALSHA", "SET", "EVALSHA"]
    finally:
        await site.close()
        await tokens.close()
