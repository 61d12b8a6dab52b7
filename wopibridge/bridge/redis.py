"""The Redis bridge state: shared by every instance that shares the lock store's Redis.

Keys (under the lock store's prefix plus ``bridge:``):

* ``doc:<id>``    the document record, JSON (created with ``SET NX``)
* ``users:<id>``  hash user id → display name
* ``save:<id>``   a pending save request flag
* ``claim:<id>``  the save claim: the owning instance's id, with a TTL (its lease)
* ``docs``        set of open document ids
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from wopibridge.bridge.state import DocState
from wopibridge.errors import Unavailable

T = TypeVar("T")

# KEYS[1] claim key; ARGV[1] owner; ARGV[2] lease in ms.
# Returns 1 when the claim was taken or renewed by the owner, 0 when another owner holds it.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS[1] claim key; ARGV[1] owner. Deletes the claim only when the owner holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS[1] users, KEYS[2] doc, KEYS[3] save flag, KEYS[4] claim, KEYS[5] docs set; ARGV[1] id.
# Returns 1 when the document was dropped, 0 when it still has users.
DELETE_IF_UNUSED = """
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[1])
return 1
"""

# KEYS[1] doc, KEYS[2] docs set; ARGV[1] record, ARGV[2] id. 1 when created, 0 when it existed.
CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] users; ARGV[1] user id. Returns how many users remain.
REMOVE_USER = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HLEN', KEYS[1])
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBridgeStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "wopibridge:") -> None:
        self.client = client
        self._prefix = f"{prefix}bridge:"
        self._claim = client.register_script(CLAIM)
        self._release = client.register_script(RELEASE)
        self._delete = client.register_script(DELETE_IF_UNUSED)
        self._create = client.register_script(CREATE)
        self._remove_user = client.register_script(REMOVE_USER)

    @classmethod
    def from_url(cls, url: str, prefix: str = "wopibridge:") -> RedisBridgeStore:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        return cls(client, prefix)

    def _k(self, kind: str, docid: str = "") -> str:
        return f"{self._prefix}{kind}:{docid}" if docid else f"{self._prefix}{kind}"

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (RedisError, OSError) as exc:
            raise Unavailable(f"The bridge state store (Redis) is unreachable: {exc}") from None

    async def create(self, state: DocState) -> bool:
        keys = [self._k("doc", state.docid), self._k("docs")]
        args: list[Any] = [state.dumps(), state.docid]
        return bool(await self._call(lambda: self._create(keys=keys, args=args)))

    async def get(self, docid: str) -> DocState | None:
        raw = await self._call(lambda: self.client.get(self._k("doc", docid)))
        return DocState.loads(raw) if raw else None

    async def put(self, state: DocState) -> None:
        key = self._k("doc", state.docid)
        await self._call(lambda: self.client.set(key, state.dumps(), xx=True))

    async def docids(self) -> list[str]:
        members = await self._call(lambda: self.client.smembers(self._k("docs")))
        return sorted(_text(m) for m in members)

    async def add_user(self, docid: str, user_id: str, user_name: str) -> None:
        key = self._k("users", docid)
        await self._call(lambda: self.client.hset(key, user_id, user_name))

    async def remove_user(self, docid: str, user_id: str) -> int:
        keys = [self._k("users", docid)]
        return int(await self._call(lambda: self._remove_user(keys=keys, args=[user_id])))

    async def users(self, docid: str) -> dict[str, str]:
        raw = await self._call(lambda: self.client.hgetall(self._k("users", docid)))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def delete_if_unused(self, docid: str) -> bool:
        keys = [
            self._k("users", docid),
            self._k("doc", docid),
            self._k("save", docid),
            self._k("claim", docid),
            self._k("docs"),
        ]
        return bool(await self._call(lambda: self._delete(keys=keys, args=[docid])))

    async def request_save(self, docid: str) -> None:
        await self._call(lambda: self.client.set(self._k("save", docid), b"1"))

    async def take_save_request(self, docid: str) -> bool:
        return bool(await self._call(lambda: self.client.delete(self._k("save", docid))))

    async def claim(self, docid: str, owner: str, ttl: float) -> bool:
        keys = [self._k("claim", docid)]
        args: list[Any] = [owner, max(1, int(ttl * 1000))]
        return bool(await self._call(lambda: self._claim(keys=keys, args=args)))

    async def release(self, docid: str, owner: str) -> None:
        keys = [self._k("claim", docid)]
        await self._call(lambda: self._release(keys=keys, args=[owner]))

    async def ping(self) -> None:
        await self._call(lambda: self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()
