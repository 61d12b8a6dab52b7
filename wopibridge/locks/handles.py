"""Short-token handles in Redis: every instance sharing the lock store's Redis resolves them.

It works on the lock store's own redis-py client (any topology of ``locks.url``: plain,
Sentinel, Cluster) and uses the same key prefix. Keys, all
in one Redis Cluster slot (hash tag ``{handles}``) so that a handle and its file's set change
in one transaction:

- ``<prefix>{handles}:handle:<handle>``: the signed JWT, expiring with it;
- ``<prefix>{handles}:file:<file id>``: the set of handles issued for the file, kept as long as
  its longest-lived handle, so deleting the file revokes them all.

The contract is :class:`wopibridge.security.handles.HandleStore`; a failure to reach Redis is
:class:`~wopibridge.errors.Unavailable` (503), never a token accepted without its check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wopibridge.locks.client import RedisConnection

T = TypeVar("T")


class RedisHandleStore:
    def __init__(self, connection: RedisConnection, prefix: str = "wopibridge:") -> None:
        """``connection`` is the lock store's (any topology); it bounds every call with
        ``locks.timeout`` and is closed with the lock store, not here."""
        self._connection = connection
        self._client: Any = connection.client
        self._handle = f"{prefix}{{handles}}:handle:"
        self._by_file = f"{prefix}{{handles}}:file:"

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        return await self._connection.call("The token store", make)

    async def put(self, handle: str, token: str, file_id: str, ttl: int) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._handle + handle, token, ex=ttl)
        pipe.sadd(self._by_file + file_id, handle)
        # GT: never shorten the set's life below a longer-lived handle's
        pipe.expire(self._by_file + file_id, ttl, gt=True)
        pipe.expire(self._by_file + file_id, ttl, nx=True)
        await self._call(pipe.execute)

    async def get(self, handle: str) -> str | None:
        value: Any = await self._call(lambda: self._client.get(self._handle + handle))
        if isinstance(value, bytes):
            value = value.decode()
        return None if value is None else str(value)

    async def revoke_file(self, file_id: str) -> int:
        key = self._by_file + file_id
        members: Any = await self._call(lambda: self._client.smembers(key))
        handles = [self._handle + (h.decode() if isinstance(h, bytes) else str(h)) for h in members]
        await self._call(lambda: self._client.delete(key, *handles))
        return len(handles)

    async def close(self) -> None:
        """The connection belongs to the lock store, which closes it."""
        return None
