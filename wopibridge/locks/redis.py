"""Redis lock store: every instance and every site sharing one Redis agrees on each lock.

Each check-and-set is one Lua script, so it runs atomically inside Redis; acquisition of an
unlocked key and refresh of one's own lock are the same script because WOPI's Lock means both.
Scripts run by their SHA-1 (EVALSHA) and are sent in full on NOSCRIPT (see :mod:`.client`).

Keys are ``<prefix>lock:{<key up to its first NUL>}<rest>``: the braces are a Redis Cluster
hash tag, so a lock and the values kept beside it (its site marker ``<key>\\0site``,
:mod:`.sitelocks`; the owner's lock token ``<key>\\0owner``, :mod:`.ownerlocks`) live in one
slot, on one shard, and fail over together. Every script touches the lock's key and, given a
second key (:class:`~.base.CompanionLocks`), the value beside it: one call where two would
each cost a round trip.

Writes that take or keep a lock (Lock, UnlockAndRelock, RefreshLock) are answered only after
``min_replicas`` replicas hold them (``WAIT``), so a failover that promotes one of those
replicas keeps the lock. Unlock needs no such wait: a lost unlock leaves a lock that expires,
never two holders. Failures to reach Redis become ``Unavailable`` (503) with the part named.
"""

from __future__ import annotations

from typing import Any

from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore
from wopibridge.locks.client import RedisConnection, Script

# Every script: KEYS[2], when given, is a value beside the lock; a script that took effect
# answers it third ("" when none), and UNLOCK removes it.

# KEYS[1] lock key; ARGV[1] lock id; ARGV[2] ttl in ms.
# Returns {1, lock id} when set or refreshed, {0, current lock} when another lock holds the key.
LOCK = Script.of(
    """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then return {1, ARGV[1], redis.call('GET', KEYS[2]) or ''} end
return {1, ARGV[1]}
"""
)

# KEYS[1] lock key; ARGV[1] old lock id; ARGV[2] new lock id; ARGV[3] ttl in ms.
# Returns {1, new lock id} when the old lock held the key, else {0, current lock or ""}.
UNLOCK_AND_RELOCK = Script.of(
    """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if KEYS[2] then return {1, ARGV[2], redis.call('GET', KEYS[2]) or ''} end
return {1, ARGV[2]}
"""
)

# KEYS[1] lock key; ARGV[1] lock id. Returns {1, ""} when deleted, else {0, current or ""}.
UNLOCK = Script.of(
    """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('DEL', KEYS[1])
if KEYS[2] then
  local kept = redis.call('GET', KEYS[2]) or ''
  redis.call('DEL', KEYS[2])
  return {1, '', kept}
end
return {1, ''}
"""
)

# KEYS[1] lock key; ARGV[1] lock id; ARGV[2] ttl in ms.
# Returns {1, lock id} when the timer was reset, else {0, current or ""}.
REFRESH = Script.of(
    """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then return {1, ARGV[1], redis.call('GET', KEYS[2]) or ''} end
return {1, ARGV[1]}
"""
)

WHAT = "The lock store"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _result(reply: Any) -> LockResult:
    return LockResult(bool(reply[0]), _text(reply[1]))


def _paired(reply: Any) -> tuple[LockResult, str]:
    """A script's answer with the value beside the lock (only when it took effect)."""
    return _result(reply), _text(reply[2]) if len(reply) > 2 else ""


def tagged(prefix: str, key: str) -> str:
    """The Redis key of ``key``: its part before the first NUL is the Cluster hash tag."""
    tag, nul, rest = key.partition("\x00")
    return f"{prefix}{{{tag}}}{nul}{rest}"


class RedisLockStore:
    def __init__(
        self, connection: RedisConnection, prefix: str = "wopibridge:", min_replicas: int = 0
    ) -> None:
        self.connection = connection
        self.min_replicas = min_replicas
        self.prefix = prefix
        self._prefix = f"{prefix}lock:"

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "wopibridge:",
        min_replicas: int = 0,
        timeout: float = 3.0,
    ) -> RedisLockStore:
        return cls(RedisConnection.from_url(url, timeout), prefix, min_replicas)

    async def _call(
        self, script: Script, keys: list[str], args: tuple[Any, ...], acked: bool
    ) -> Any:
        replicas = self.min_replicas if acked else 0
        return await self.connection.script(WHAT, script, keys, args, replicas)

    async def _run(self, script: Script, key: str, *args: Any, acked: bool = False) -> LockResult:
        return _result(await self._call(script, [tagged(self._prefix, key)], args, acked))

    async def _beside(
        self, script: Script, key: str, suffix: str, *args: Any, acked: bool = False
    ) -> tuple[LockResult, str]:
        keys = [tagged(self._prefix, key), tagged(self._prefix, key + suffix)]
        return _paired(await self._call(script, keys, args, acked))

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        return await self._run(LOCK, key, lock_id, int(ttl * 1000), acked=True)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        return await self._run(
            UNLOCK_AND_RELOCK, key, old_lock_id, new_lock_id, int(ttl * 1000), acked=True
        )

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        return await self._run(UNLOCK, key, lock_id)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        return await self._run(REFRESH, key, lock_id, int(ttl * 1000), acked=True)

    def shares_keys(self, other: LockStore) -> bool:
        return (
            isinstance(other, RedisLockStore)
            and other._prefix == self._prefix
            and other.connection.target == self.connection.target
        )

    async def lock_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        return await self._beside(LOCK, key, suffix, lock_id, int(ttl * 1000), acked=True)

    async def unlock_and_relock_reading(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        args = (old_lock_id, new_lock_id, int(ttl * 1000))
        return await self._beside(UNLOCK_AND_RELOCK, key, suffix, *args, acked=True)

    async def refresh_reading(
        self, key: str, lock_id: str, ttl: float, suffix: str
    ) -> tuple[LockResult, str]:
        return await self._beside(REFRESH, key, suffix, lock_id, int(ttl * 1000), acked=True)

    async def unlock_taking(self, key: str, lock_id: str, suffix: str) -> tuple[LockResult, str]:
        return await self._beside(UNLOCK, key, suffix, lock_id)

    async def keep(self, key: str, suffix: str, value: str, ttl: float) -> None:
        full_key = tagged(self._prefix, key + suffix)
        command = ("SET", full_key, value, "PX", max(1, int(ttl * 1000)))
        await self.connection.call(WHAT, lambda: self.connection.execute(*command))

    async def get(self, key: str) -> str:
        full_key = tagged(self._prefix, key)
        value = await self.connection.call(WHAT, lambda: self.connection.execute("GET", full_key))
        return value.decode() if value else ""

    async def ping(self) -> None:
        await self.connection.ping(WHAT)

    async def close(self) -> None:
        await self.connection.close()
