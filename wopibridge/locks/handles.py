"""Short-token handles in Redis: every instance sharing the lock store's Redis resolves them.

It works on the lock store's own redis-py client (any topology of ``locks.url``: plain,
Sentinel, Cluster) and uses the same key prefix. Keys, all in one Redis Cluster slot (hash tag
``{handles}``) so that a handle and its file's mark are read in one ``MGET``:

- ``<prefix>{handles}:handle:<handle>``: the signed JWT, expiring with it;
- ``<prefix>{handles}:revoked:<file id>``: when the file was deleted (ms since the epoch),
  kept as long as a handle issued before could live.

Nothing else: no set of a file's handles, so the keys are one per live handle and one per
recently deleted file, each gone when it no longer matters (see
:mod:`wopibridge.security.handles`).

The contract is :class:`wopibridge.security.handles.HandleStore`; a failure to reach Redis is
:class:`~wopibridge.errors.Unavailable` (503), never a token accepted without its check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wopibridge.locks.client import RedisConnection
from wopibridge.security.handles import now_ms

T = TypeVar("T")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)


class RedisHandleStore:
    def __init__(self, connection: RedisConnection, prefix: str = "wopibridge:") -> None:
        """``connection`` is the lock store's (any topology); it bounds every call with
        ``locks.timeout`` and is closed with the lock store, not here."""
        self._connection = connection
        self._client: Any = connection.client
        self._handle = f"{prefix}{{handles}}:handle:"
        self._revoked = f"{prefix}{{handles}}:revoked:"

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        return await self._connection.call("The token store", make)

    async def put(self, handle: str, token: str, ttl: int) -> None:
        await self._call(lambda: self._client.set(self._handle + handle, token, ex=ttl))

    async def get(self, handle: str) -> str | None:
        return _text(await self._call(lambda: self._client.get(self._handle + handle)))

    async def lookup(self, handle: str, file_id: str) -> tuple[str | None, int]:
        keys = (self._handle + handle, self._revoked + file_id)
        token, mark = await self._call(lambda: self._client.mget(keys))
        return _text(token), int(_text(mark) or 0)

    async def revoked_at(self, file_id: str) -> int:
        return int(_text(await self._call(lambda: self._client.get(self._revoked + file_id))) or 0)

    async def revoke_file(self, file_id: str, horizon: int) -> None:
        key = self._revoked + file_id
        await self._call(lambda: self._client.set(key, now_ms(), ex=max(1, horizon)))

    async def close(self) -> None:
        """The connection belongs to the lock store, which closes it."""
        return None
