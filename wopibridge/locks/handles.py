"""Short-token handles in Redis: every instance sharing the lock store's Redis resolves them.

It reaches the lock store's Redis (any topology of ``locks.url``: plain, Sentinel, Cluster)
with a client of its own, built like the lock store's, and uses the same key prefix. Keys, all
in one Redis Cluster slot (hash tag ``{handles}``) so that a handle and its file's set change
in one transaction:

- ``<prefix>{handles}:handle:<handle>``: the signed JWT, expiring with it;
- ``<prefix>{handles}:file:<file id>``: the set of handles issued for the file, kept as long as
  its longest-lived handle, so deleting the file revokes them all.

The contract is :class:`wopibridge.security.handles.HandleStore`; a failure to reach Redis is
:class:`~wopibridge.errors.Unavailable` (503), never a token accepted without its check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from wopibridge.errors import Unavailable
from wopibridge.locks.client import RedisConnection
from wopibridge.lockurl import RedisTarget

T = TypeVar("T")


class RedisHandleStore:
    def __init__(
        self,
        client: Any,
        prefix: str = "wopibridge:",
        closer: Callable[[], Awaitable[None]] | None = None,
        timeout: float = 3.0,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._handle = f"{prefix}{{handles}}:handle:"
        self._by_file = f"{prefix}{{handles}}:file:"
        self._closer = closer

    @classmethod
    def from_url(cls, url: str, prefix: str = "wopibridge:") -> RedisHandleStore:
        """A store on a plain ``redis://`` URL (tests and tools)."""
        return cls(aioredis.Redis.from_url(url), prefix)

    @classmethod
    def from_target(
        cls, target: RedisTarget, timeout: float, prefix: str = "wopibridge:"
    ) -> RedisHandleStore:
        """A store on the Redis of ``locks.url``, whatever its topology."""
        connection = RedisConnection(target, timeout)
        return cls(connection.client, prefix, closer=connection.close, timeout=timeout)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._timeout)
        except TimeoutError:
            raise Unavailable("The token store (Redis) did not answer in time") from None
        except (RedisError, OSError) as exc:
            raise Unavailable(f"The token store (Redis) is unreachable: {exc}") from None

    async def put(self, handle: str, token: str, file_id: str, ttl: int) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._handle + handle, token, ex=ttl)
        pipe.sadd(self._by_file + file_id, handle)
        # GT: never shorten the set's life below a longer-lived handle's
        pipe.expire(self._by_file + file_id, ttl, gt=True)
        pipe.expire(self._by_file + file_id, ttl, nx=True)
        await self._call(pipe.execute())

    async def get(self, handle: str) -> str | None:
        value: Any = await self._call(self._client.get(self._handle + handle))
        if isinstance(value, bytes):
            value = value.decode()
        return None if value is None else str(value)

    async def revoke_file(self, file_id: str) -> int:
        key = self._by_file + file_id
        members: Any = await self._call(self._client.smembers(key))
        handles = [self._handle + (h.decode() if isinstance(h, bytes) else str(h)) for h in members]
        await self._call(self._client.delete(key, *handles))
        return len(handles)

    async def close(self) -> None:
        if self._closer is not None:
            await self._closer()
        else:
            await self._client.aclose()
