"""The id map in Redis: every instance sharing the lock store's Redis resolves every id.

Keys, under ``locks.prefix`` plus ``ids:{<storage>}:`` (the braces keep one storage's keys in
one Redis Cluster slot, so the scripts below may touch several of them):

* ``id:<id>``     hash: ``path`` (relative to the storage root) and, while a rename is in
                  flight, ``pending`` (the new path)
* ``path:<path>`` the id recorded at a path (for files without their own id, see
                  :mod:`.xattrid`)
* ``meta:<id>``   hash of small per-file metadata

Every update that touches more than one key is one Lua script, so it is atomic. A script that
finds the keys changed since the caller read them answers 0 and the caller reads again: every
key a script touches is declared, as Redis Cluster asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from wopibridge.config.redisurl import RedisTarget
from wopibridge.errors import InsufficientStorage, Unavailable
from wopibridge.locks.client import RedisConnection
from wopibridge.storage.idmap import Entry, MetaCache

T = TypeVar("T")

_RETRIES = 8
POOL_SIZE = 32

# KEYS[1] path key, KEYS[2] id key of the candidate; ARGV[1] candidate id, ARGV[2] path.
# Returns the id recorded at the path: the existing one, or the candidate, now recorded; ""
# when the candidate names another path already.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
if redis.call('EXISTS', KEYS[2]) == 1 then return '' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'path', ARGV[2])
return ARGV[1]
"""

# KEYS[1] id key, KEYS[2] new path key, KEYS[3] old path key, KEYS[4] id key of the id the new
# path held; ARGV[1] id, ARGV[2] new path, ARGV[3] old path as read ("" for none), ARGV[4] id
# the new path held as read ("" for none).
# Moves the id to the new path, drops its old path and the displaced id's claim on the new one.
# Returns 1, or 0 when the id's path or the new path's id changed since they were read.
PLACE = """
local cur = redis.call('HGET', KEYS[1], 'path') or ''
local held = redis.call('GET', KEYS[2]) or ''
if cur ~= ARGV[3] or held ~= ARGV[4] then return 0 end
if cur ~= '' and cur ~= ARGV[2] and redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('DEL', KEYS[3])
end
if held ~= '' and held ~= ARGV[1] and redis.call('HGET', KEYS[4], 'path') == ARGV[2] then
  redis.call('HDEL', KEYS[4], 'path')
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'path', ARGV[2])
redis.call('HDEL', KEYS[1], 'pending')
return 1
"""

# KEYS[1] id key, KEYS[2] path key, KEYS[3] meta key; ARGV[1] id.
# Forgets the id, its metadata, and the path's record of it. Returns 1.
FORGET = """
redis.call('DEL', KEYS[1], KEYS[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class RedisIdMap:
    def __init__(
        self,
        client: Any,
        prefix: str,
        storage: str,
        closer: Callable[[], Awaitable[None]] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.client = client
        self._closer = closer
        self._timeout = timeout
        self._base = f"{prefix}ids:{{{storage}}}:"
        self._claim = client.register_script(CLAIM)
        self._place = client.register_script(PLACE)
        self._forget = client.register_script(FORGET)
        self._meta = MetaCache()

    @classmethod
    def from_url(cls, url: str, prefix: str, storage: str) -> RedisIdMap:
        """A client whose pool makes a burst of requests wait for a connection (up to
        :data:`POOL_SIZE`) instead of failing, as redis-py's default pool does past 100."""
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        return cls(aioredis.Redis.from_pool(pool), prefix, storage)

    @classmethod
    def from_target(
        cls, target: RedisTarget, url: str, timeout: float, prefix: str, storage: str
    ) -> RedisIdMap:
        """On the Redis of ``locks.url``: one server through :meth:`from_url`'s pool; Sentinel
        (the primary followed on failover) or Cluster (the map's keys share the slot of
        ``{<storage>}``) through a client built like the lock store's."""
        if target.topology == "redis":
            return cls.from_url(url, prefix, storage)
        connection = RedisConnection(target, timeout)
        return cls(connection.client, prefix, storage, closer=connection.close, timeout=timeout)

    def _id(self, file_id: str) -> str:
        return f"{self._base}id:{file_id}"

    def _path(self, path: str) -> str:
        return f"{self._base}path:{path}"

    def _meta_key(self, file_id: str) -> str:
        return f"{self._base}meta:{file_id}"

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await asyncio.wait_for(call(), self._timeout)
        except TimeoutError:
            raise Unavailable("The file id map (Redis) did not answer in time") from None
        except ResponseError as exc:
            if str(exc).startswith("OOM"):
                raise InsufficientStorage(
                    "The file id map (Redis) is out of memory: it cannot be updated"
                ) from None
            raise Unavailable("The file id map refused the call", detail=f"Redis: {exc}") from None
        except (RedisError, OSError) as exc:
            raise Unavailable("The file id map is unavailable", detail=f"Redis: {exc}") from None

    async def lookup(self, file_id: str) -> Entry | None:
        path, pending = await self._call(
            lambda: self.client.hmget(self._id(file_id), ["path", "pending"])
        )
        if path is None and pending is None:
            return None
        return Entry(_text(path), _text(pending))

    async def claim(self, path: str, candidate: str) -> str:
        keys = [self._path(path), self._id(candidate)]
        found = await self._call(lambda: self._claim(keys=keys, args=[candidate, path]))
        return str(_text(found))

    async def place(self, file_id: str, path: str) -> None:
        await self._move(file_id, path)

    async def _move(self, file_id: str, new_path: str) -> None:
        for _ in range(_RETRIES):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hget(self._id(file_id), "path")
                pipe.get(self._path(new_path))
                current, held = await self._call(pipe.execute)
            old, displaced = _text(current) or "", _text(held) or ""
            keys = [
                self._id(file_id),
                self._path(new_path),
                self._path(old or new_path),
                self._id(displaced or file_id),
            ]
            args = [file_id, new_path, old, displaced]
            if await self._call(lambda k=keys, a=args: self._place(keys=k, args=a)):  # type: ignore[misc]
                return
        raise Unavailable("The file id map (Redis) kept changing; try again")

    async def begin_move(self, file_id: str, new_path: str) -> None:
        await self._call(lambda: self.client.hset(self._id(file_id), "pending", new_path))

    async def finish_move(self, file_id: str, old_path: str, new_path: str) -> None:
        await self._move(file_id, new_path)

    async def abort_move(self, file_id: str) -> None:
        await self._call(lambda: self.client.hdel(self._id(file_id), "pending"))

    async def forget(self, file_id: str, path: str) -> None:
        keys = [self._id(file_id), self._path(path), self._meta_key(file_id)]
        await self._call(lambda: self._forget(keys=keys, args=[file_id]))
        self._meta.drop(file_id)

    async def get_meta(self, file_id: str, key: str) -> str | None:
        hit, value = self._meta.get(file_id, key)
        if not hit:
            raw: Any = await self._call(lambda: self.client.hget(self._meta_key(file_id), key))
            value = _text(raw)
            self._meta.put(file_id, key, value)
        return value

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        await self._call(lambda: self.client.hset(self._meta_key(file_id), key, value))
        self._meta.put(file_id, key, value)

    async def ping(self) -> None:
        await self._call(lambda: self.client.ping())

    async def close(self) -> None:
        if self._closer is not None:
            await self._closer()
        else:
            await self.client.aclose()
