"""Where short access-token handles live: the contract, and the in-process store.

A handle (``security.short_tokens``) stands for a signed JWT for the JWT's lifetime. The
contract is defined here, beside the tokens, because the security layer sits below the lock
store and must not import it; the Redis implementation lives with the lock store
(:mod:`wopibridge.locks.handles`), which shares its server and key prefix, and
:mod:`wopibridge.resources` picks one from ``locks.url``.

What a store holds is bounded by what is live: one entry per live handle, expiring with it,
and one revocation mark per deleted file, expiring once no handle issued before it can be live
(``horizon``). There is no list of a file's handles, which every user opening the file would
grow and which nothing would prune: deleting a file marks the time instead, and a handle
issued for that file before the mark is refused (:meth:`TokenCodec.resolve
<wopibridge.security.tokens.TokenCodec.resolve>` compares it with the JWT's ``iat``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class HandleStore(Protocol):
    async def put(self, handle: str, token: str, ttl: int) -> None:
        """Keep ``token`` under ``handle`` for ``ttl`` seconds (replacing what it held)."""

    async def get(self, handle: str) -> str | None:
        """The token behind a live handle, ``None`` when unknown or expired."""

    async def lookup(self, handle: str, file_id: str) -> tuple[str | None, int]:
        """:meth:`get` and :meth:`revoked_at` of ``file_id`` together, in one round trip."""

    async def revoked_at(self, file_id: str) -> int:
        """When the file's handles were last revoked (ms since the epoch), 0 for never."""

    async def revoke_file(self, file_id: str, horizon: int) -> None:
        """Revoke every handle issued for ``file_id`` until now; the mark is kept ``horizon``
        seconds, the longest any of them can live."""

    async def close(self) -> None: ...


def now_ms() -> int:
    return int(time.time() * 1000)


class MemoryHandleStore:
    """Handles of one process (``locks.url = memory://``): they do not survive a restart and
    are not seen by other processes, which is what in-process locks mean too. Expired
    entries are dropped when they are looked up and by a sweep each time the store doubles."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._revoked: dict[str, tuple[int, float]] = {}
        self._sweep_at = 1024

    def __len__(self) -> int:
        """Entries held (handles and revocation marks), expired ones included until swept."""
        return len(self._tokens) + len(self._revoked)

    async def put(self, handle: str, token: str, ttl: int) -> None:
        self._tokens[handle] = (token, self._clock() + ttl)
        if len(self) >= self._sweep_at:
            self._sweep()

    async def get(self, handle: str) -> str | None:
        entry = self._tokens.get(handle)
        if entry is None:
            return None
        token, expires = entry
        if expires <= self._clock():
            del self._tokens[handle]
            return None
        return token

    async def lookup(self, handle: str, file_id: str) -> tuple[str | None, int]:
        return await self.get(handle), await self.revoked_at(file_id)

    async def revoked_at(self, file_id: str) -> int:
        entry = self._revoked.get(file_id)
        if entry is None:
            return 0
        at, until = entry
        if until <= self._clock():
            del self._revoked[file_id]
            return 0
        return at

    async def revoke_file(self, file_id: str, horizon: int) -> None:
        self._revoked[file_id] = (now_ms(), self._clock() + horizon)
        if len(self) >= self._sweep_at:
            self._sweep()

    async def close(self) -> None:
        self._tokens.clear()
        self._revoked.clear()

    def _sweep(self) -> None:
        now = self._clock()
        self._tokens = {h: entry for h, entry in self._tokens.items() if entry[1] > now}
        self._revoked = {f: entry for f, entry in self._revoked.items() if entry[1] > now}
        self._sweep_at = max(1024, 2 * len(self))
