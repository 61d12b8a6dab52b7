"""Short-token handles in Redis: every instance sharing the lock store's Redis resolves them.

It uses the lock store's URL and key prefix but its own redis-py (``redis.asyncio``) client,
so it does not depend on how the lock store talks to Redis. Keys:

- ``<prefix>handle:<handle>``: the signed JWT, expiring with it;
- ``<prefix>handles:<file id>``: the set of handles issued for the file, kept as long as its
  longest-lived handle, so deleting the file revokes them all.

The contract is :class:`wopibridge.security.handles.HandleStore`; a failure to reach Redis is
:class:`~wopibridge.errors.Unavailable` (503), never a token accepted without its check.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from wopibridge.errors import Unavailable

T = TypeVar("T")


class RedisHandleStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "wopibridge:") -> None:
        self._client = client
        self._handle = f"{prefix}handle:"
        self._by_file = f"{prefix}handles:"

    @classmethod
    def from_url(cls, url: str, prefix: str = "wopibridge:") -> RedisHandleStore:
        return cls(aioredis.Redis.from_url(url, decode_responses=True), prefix)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
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
        return None if value is None else str(value)

    async def revoke_file(self, file_id: str) -> int:
        key = self._by_file + file_id
        members: Any = await self._call(self._client.smembers(key))
        handles = [self._handle + str(handle) for handle in members]
        await self._call(self._client.delete(key, *handles))
        return len(handles)

    async def close(self) -> None:
        await self._client.aclose()
