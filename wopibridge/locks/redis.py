"""Redis lock store: every instance and every site sharing one Redis agrees on each lock.

Each check-and-set is one Lua script, so it runs atomically inside Redis; acquisition of an
unlocked key and refresh of one's own lock are the same script because WOPI's Lock means both.
Scripts go through ``register_script`` (EVALSHA, reloaded on NOSCRIPT). Keys are namespaced by
the configured prefix. Connection failures become ``Unavailable`` (503) with the part named.
"""

from __future__ import annotations

from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from ..errors import Unavailable
from .base import LOCK_TTL_SECONDS, LockResult

# KEYS[1] lock key; ARGV[1] lock id; ARGV[2] ttl in ms.
# Returns {1, lock id} when set or refreshed, {0, current lock} when another lock holds the key.
LOCK = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ARGV[1]}
"""

# KEYS[1] lock key; ARGV[1] old lock id; ARGV[2] new lock id; ARGV[3] ttl in ms.
# Returns {1, new lock id} when the old lock held the key, else {0, current lock or ""}.
UNLOCK_AND_RELOCK = """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, ARGV[2]}
"""

# KEYS[1] lock key; ARGV[1] lock id. Returns {1, ""} when deleted, else {0, current or ""}.
UNLOCK = """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('DEL', KEYS[1])
return {1, ''}
"""

# KEYS[1] lock key; ARGV[1] lock id; ARGV[2] ttl in ms.
# Returns {1, lock id} when the timer was reset, else {0, current or ""}.
REFRESH = """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ARGV[1]}
"""


def _result(reply: Any) -> LockResult:
    ok, current = reply
    if isinstance(current, bytes):
        current = current.decode()
    return LockResult(bool(ok), str(current))


class RedisLockStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "wopibridge:") -> None:
        self.client = client
        self._prefix = f"{prefix}lock:"
        self._lock = client.register_script(LOCK)
        self._relock = client.register_script(UNLOCK_AND_RELOCK)
        self._unlock = client.register_script(UNLOCK)
        self._refresh = client.register_script(REFRESH)

    @classmethod
    def from_url(cls, url: str, prefix: str = "wopibridge:") -> RedisLockStore:
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
            decode_responses=False,
        )
        return cls(client, prefix)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def _run(self, script: Any, key: str, *args: Any) -> LockResult:
        try:
            return _result(await script(keys=[self._key(key)], args=list(args)))
        except (RedisError, OSError) as exc:
            raise Unavailable(f"The lock store (Redis) is unreachable: {exc}") from None

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        return await self._run(self._lock, key, lock_id, int(ttl * 1000))

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        return await self._run(self._relock, key, old_lock_id, new_lock_id, int(ttl * 1000))

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        return await self._run(self._unlock, key, lock_id)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        return await self._run(self._refresh, key, lock_id, int(ttl * 1000))

    async def get(self, key: str) -> str:
        try:
            value = await self.client.get(self._key(key))
        except (RedisError, OSError) as exc:
            raise Unavailable(f"The lock store (Redis) is unreachable: {exc}") from None
        return value.decode() if value else ""

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise Unavailable(f"lock store (Redis) unreachable: {exc}") from None

    async def close(self) -> None:
        await self.client.aclose()
