"""Where short access-token handles live: the contract, and the in-process store.

A handle (``security.short_tokens``) stands for a signed JWT for the JWT's lifetime. The
contract is defined here, beside the tokens, because the security layer sits below the lock
store and must not import it; the Redis implementation lives with the lock store
(:mod:`wopibridge.locks.handles`), which shares its server and key prefix, and
:mod:`wopibridge.resources` picks one from ``locks.url``.

Handles are remembered per file id too, so deleting a file revokes every handle issued for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class HandleStore(Protocol):
    async def put(self, handle: str, token: str, file_id: str, ttl: int) -> None:
        """Keep ``token`` under ``handle`` for ``ttl`` seconds, filed under ``file_id``."""

    async def get(self, handle: str) -> str | None:
        """The token behind a live handle, ``None`` when unknown, expired or revoked."""

    async def revoke_file(self, file_id: str) -> int:
        """Forget every handle filed under ``file_id``; the number forgotten."""

    async def close(self) -> None: ...


class MemoryHandleStore:
    """Handles of one process (``locks.url = memory://``): they do not survive a restart and
    are not seen by other processes, which is what in-process locks mean too."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, str, float]] = {}
        self._by_file: dict[str, set[str]] = {}
        self._sweep_at = 1024

    async def put(self, handle: str, token: str, file_id: str, ttl: int) -> None:
        self._tokens[handle] = (token, file_id, self._clock() + ttl)
        self._by_file.setdefault(file_id, set()).add(handle)
        if len(self._tokens) >= self._sweep_at:
            self._sweep()

    async def get(self, handle: str) -> str | None:
        entry = self._tokens.get(handle)
        if entry is None:
            return None
        token, file_id, expires = entry
        if expires <= self._clock():
            self._forget(handle, file_id)
            return None
        return token

    async def revoke_file(self, file_id: str) -> int:
        handles = self._by_file.pop(file_id, set())
        for handle in handles:
            self._tokens.pop(handle, None)
        return len(handles)

    async def close(self) -> None:
        self._tokens.clear()
        self._by_file.clear()

    def _forget(self, handle: str, file_id: str) -> None:
        self._tokens.pop(handle, None)
        handles = self._by_file.get(file_id)
        if handles is not None:
            handles.discard(handle)
            if not handles:
                del self._by_file[file_id]

    def _sweep(self) -> None:
        now = self._clock()
        for handle, (_, file_id, expires) in list(self._tokens.items()):
            if expires <= now:
                self._forget(handle, file_id)
        self._sweep_at = max(1024, 2 * len(self._tokens))
