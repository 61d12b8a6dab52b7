"""The in-process bridge state: for one instance with the in-process lock store."""

from __future__ import annotations

import time

from wopibridge.bridge.state import DocState


class MemoryBridgeStore:
    """Every method is a few dictionary operations without an ``await`` in between, so each is
    atomic with respect to the event loop."""

    def __init__(self) -> None:
        self._docs: dict[str, str] = {}
        self._users: dict[str, dict[str, str]] = {}
        self._requests: set[str] = set()
        self._claims: dict[str, tuple[str, float]] = {}

    async def create(self, state: DocState) -> bool:
        if state.docid in self._docs:
            return False
        self._docs[state.docid] = state.dumps()
        return True

    async def get(self, docid: str) -> DocState | None:
        raw = self._docs.get(docid)
        return DocState.loads(raw) if raw is not None else None

    async def put(self, state: DocState) -> None:
        if state.docid in self._docs:
            self._docs[state.docid] = state.dumps()

    async def docids(self) -> list[str]:
        return list(self._docs)

    async def add_user(self, docid: str, user_id: str, user_name: str) -> None:
        self._users.setdefault(docid, {})[user_id] = user_name

    async def remove_user(self, docid: str, user_id: str) -> int:
        users = self._users.get(docid, {})
        users.pop(user_id, None)
        if not users:
            self._users.pop(docid, None)
        return len(users)

    async def users(self, docid: str) -> dict[str, str]:
        return dict(self._users.get(docid, {}))

    async def delete_if_unused(self, docid: str) -> bool:
        if self._users.get(docid):
            return False
        self._docs.pop(docid, None)
        self._requests.discard(docid)
        self._claims.pop(docid, None)
        return True

    async def request_save(self, docid: str) -> None:
        self._requests.add(docid)

    async def take_save_request(self, docid: str) -> bool:
        if docid in self._requests:
            self._requests.discard(docid)
            return True
        return False

    async def claim(self, docid: str, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        held = self._claims.get(docid)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._claims[docid] = (owner, now + ttl)
        return True

    async def release(self, docid: str, owner: str) -> None:
        held = self._claims.get(docid)
        if held is not None and held[0] == owner:
            del self._claims[docid]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
