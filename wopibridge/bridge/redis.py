"""The Redis bridge state: shared by every instance that shares the lock store's Redis.

It goes through the lock store's client (:class:`wopibridge.locks.client.RedisConnection`), so
it follows the same topology (one server, Sentinel, Cluster) and answers 503 on the same terms.
Every key carries the one hash tag ``{bridge}``: the bridge state is small (a record per open
document) and lives on one Cluster shard, so each script below stays one atomic call.

Keys (under the lock store's prefix plus ``bridge:{bridge}:``):

* ``doc:<id>``    the document record, JSON (created with ``SET NX``)
* ``users:<id>``  hash user id → display name
* ``save:<id>``   a pending save request flag
* ``claim:<id>``  the save claim: the owning instance's id, with a TTL (its lease)
* ``docs``        set of open document ids
"""

from __future__ import annotations

from typing import Any

from wopibridge.bridge.state import DocState
from wopibridge.locks.client import RedisConnection, Script

WHAT = "The bridge state store"

# KEYS[1] claim key; ARGV[1] owner; ARGV[2] lease in ms.
# Returns 1 when the claim was taken or renewed by the owner, 0 when another owner holds it.
CLAIM = Script.of(
    """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
)

# KEYS[1] claim key; ARGV[1] owner. Deletes the claim only when the owner holds it.
RELEASE = Script.of(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
)

# KEYS[1] users, KEYS[2] doc, KEYS[3] save flag, KEYS[4] claim, KEYS[5] docs set; ARGV[1] id.
# Returns 1 when the document was dropped, 0 when it still has users.
DELETE_IF_UNUSED = Script.of(
    """
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[1])
return 1
"""
)

# KEYS[1] doc, KEYS[2] docs set; ARGV[1] record, ARGV[2] id. 1 when created, 0 when it existed.
CREATE = Script.of(
    """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
)

# KEYS[1] doc; ARGV[1] record. Replaces an existing record only; 1 when replaced, else 0.
PUT = Script.of(
    """
if redis.call('SET', KEYS[1], ARGV[1], 'XX') then
  return 1
end
return 0
"""
)

# KEYS[1] users; ARGV[1] user id. Returns how many users remain.
REMOVE_USER = Script.of(
    """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HLEN', KEYS[1])
"""
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBridgeStore:
    def __init__(
        self,
        connection: RedisConnection,
        prefix: str = "wopibridge:",
        owned: bool = False,
        replicas: int = 0,
    ) -> None:
        """``replicas``: how many replicas must hold a document's record before a write of it
        returns (``locks.min_replicas``), so that a failover cannot roll the record back to
        the version before a save, which would make the next save look like a change made
        outside the bridge."""
        self.connection = connection
        self._replicas = replicas
        self.client = connection.client
        self._prefix = f"{prefix}bridge:{{bridge}}:"
        self._owned = owned

    @classmethod
    def from_url(cls, url: str, prefix: str = "wopibridge:") -> RedisBridgeStore:
        """A store with a client of its own (closed with it)."""
        return cls(RedisConnection.from_url(url), prefix, owned=True)

    def _k(self, kind: str, docid: str = "") -> str:
        return f"{self._prefix}{kind}:{docid}" if docid else f"{self._prefix}{kind}"

    async def _cmd(self, *args: Any) -> Any:
        return await self.connection.call(WHAT, lambda: self.connection.execute(*args))

    async def _script(
        self, script: Script, keys: list[str], args: list[Any], replicas: int = 0
    ) -> Any:
        return await self.connection.script(WHAT, script, keys, args, replicas)

    async def create(self, state: DocState) -> bool:
        keys = [self._k("doc", state.docid), self._k("docs")]
        return bool(await self._script(CREATE, keys, [state.dumps(), state.docid], self._replicas))

    async def get(self, docid: str) -> DocState | None:
        raw = await self._cmd("GET", self._k("doc", docid))
        return DocState.loads(raw) if raw else None

    async def put(self, state: DocState) -> None:
        await self._script(PUT, [self._k("doc", state.docid)], [state.dumps()], self._replicas)

    async def docids(self) -> list[str]:
        members = await self._cmd("SMEMBERS", self._k("docs"))
        return sorted(_text(m) for m in members)

    async def add_user(self, docid: str, user_id: str, user_name: str) -> None:
        await self._cmd("HSET", self._k("users", docid), user_id, user_name)

    async def remove_user(self, docid: str, user_id: str) -> int:
        return int(await self._script(REMOVE_USER, [self._k("users", docid)], [user_id]))

    async def users(self, docid: str) -> dict[str, str]:
        raw = await self._cmd("HGETALL", self._k("users", docid))
        if isinstance(raw, list):  # RESP2 without the client's reply callback
            raw = dict(zip(raw[::2], raw[1::2], strict=True))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def delete_if_unused(self, docid: str) -> bool:
        keys = [
            self._k("users", docid),
            self._k("doc", docid),
            self._k("save", docid),
            self._k("claim", docid),
            self._k("docs"),
        ]
        return bool(await self._script(DELETE_IF_UNUSED, keys, [docid]))

    async def request_save(self, docid: str) -> None:
        await self._cmd("SET", self._k("save", docid), b"1")

    async def take_save_request(self, docid: str) -> bool:
        return bool(await self._cmd("DEL", self._k("save", docid)))

    async def claim(self, docid: str, owner: str, ttl: float) -> bool:
        args: list[Any] = [owner, max(1, int(ttl * 1000))]
        return bool(await self._script(CLAIM, [self._k("claim", docid)], args))

    async def release(self, docid: str, owner: str) -> None:
        await self._script(RELEASE, [self._k("claim", docid)], [owner])

    async def ping(self) -> None:
        await self.connection.ping(WHAT)

    async def close(self) -> None:
        """Close the client only when it is this store's own (else the lock store owns it)."""
        if self._owned:
            await self.connection.close()
