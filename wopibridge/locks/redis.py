"""Redis lock store: every instance and every site sharing one Redis agrees on each lock.

Each check-and-set is one Lua script, so it runs atomically inside Redis; acquisition of an
unlocked key and refresh of one's own lock are the same script because WOPI's Lock means both.
Scripts run by their SHA-1 (EVALSHA) and are sent in full on NOSCRIPT (after a Redis restart).
Keys are namespaced by the configured prefix. The calls go over one pipelined connection
(:mod:`.resp`), because they sit on the path of every lock operation and PutFile. Connection
failures become ``Unavailable`` (503) with the part named.
"""

from __future__ import annotations

import hashlib
from typing import Any

from wopibridge.errors import Unavailable
from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult
from wopibridge.locks.resp import Endpoint, ReplyError, RespConnection

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


class _Script:
    """A Lua script and its SHA-1."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def _result(reply: Any) -> LockResult:
    ok, current = reply
    if isinstance(current, bytes):
        current = current.decode()
    return LockResult(bool(ok), str(current))


class RedisLockStore:
    def __init__(self, connection: RespConnection, prefix: str = "wopibridge:") -> None:
        self.connection = connection
        self._prefix = f"{prefix}lock:"
        self._lock = _Script(LOCK)
        self._relock = _Script(UNLOCK_AND_RELOCK)
        self._unlock = _Script(UNLOCK)
        self._refresh = _Script(REFRESH)

    @classmethod
    def from_url(cls, url: str, prefix: str = "wopibridge:") -> RedisLockStore:
        return cls(RespConnection(Endpoint.from_url(url)), prefix)

    async def _call(self, *args: Any) -> Any:
        try:
            return await self.connection.call(*args)
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise Unavailable(f"The lock store (Redis) is unreachable: {exc}") from None
        except ReplyError as exc:
            if str(exc).startswith("NOSCRIPT"):
                raise
            raise Unavailable(f"The lock store (Redis) refused the call: {exc}") from None

    async def _run(self, script: _Script, key: str, *args: Any) -> LockResult:
        full_key = self._prefix + key
        try:
            reply = await self._call("EVALSHA", script.sha, 1, full_key, *args)
        except ReplyError:  # NOSCRIPT: Redis restarted or was flushed
            reply = await self._call("EVAL", script.source, 1, full_key, *args)
        return _result(reply)

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
        value = await self._call("GET", self._prefix + key)
        return value.decode() if value else ""

    async def ping(self) -> None:
        try:
            await self.connection.call("PING")
        except (ConnectionError, OSError, TimeoutError, ReplyError) as exc:
            raise Unavailable(f"lock store (Redis) unreachable: {exc}") from None

    async def close(self) -> None:
        await self.connection.close()
