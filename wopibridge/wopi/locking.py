"""Lock, UnlockAndRelock, Unlock, RefreshLock and GetLock.

Each is one atomic call on the lock store keyed by the file's identity at its storage, so the
answer is right even when other instances or sites race on the same file.
"""

from __future__ import annotations

from aiohttp import web

from wopibridge.errors import LockMismatch
from wopibridge.locks.base import LockResult
from wopibridge.locks.keys import LOCKS
from wopibridge.wopi import lockowners
from wopibridge.wopi.context import WopiRequest
from wopibridge.wopi.hooks import hooks_of


def _answer(result: LockResult, version: str, reason: str) -> web.Response:
    if not result.ok:
        raise LockMismatch(result.current, reason)
    return web.Response(headers={"X-WOPI-ItemVersion": version})


async def lock(wopi: WopiRequest) -> web.Response:
    """LOCK, or UnlockAndRelock when ``X-WOPI-OldLock`` is present."""
    wopi.require_edit()
    lock_id = wopi.lock_header()
    stat = await wopi.stat()
    if wopi.header("X-WOPI-OldLock") is not None:
        old = wopi.lock_header("X-WOPI-OldLock")
        result = await wopi.locks.unlock_and_relock(stat.identity, old, lock_id)
        return _answer(result, stat.version, "The old lock does not match")
    result = await wopi.locks.lock(stat.identity, lock_id)
    owners = wopi.request.app[LOCKS]
    server = wopi.header(lockowners.SERVER_HEADER)
    if not result.ok and await lockowners.taken_over(
        wopi.locks, owners, stat.identity, result.current, lock_id, wopi.access, server
    ):
        result = LockResult(True, lock_id)
    if result.ok:
        await lockowners.remember(owners, stat.identity, lock_id, wopi.access, server)
        await hooks_of(wopi.request.app).locked(wopi.access, wopi.storage, wopi.backend_id, stat)
    return _answer(result, stat.version, "The file is locked by another session")


async def unlock(wopi: WopiRequest) -> web.Response:
    wopi.require_edit()
    lock_id = wopi.lock_header()
    stat = await wopi.stat()
    result = await wopi.locks.unlock(stat.identity, lock_id)
    if result.ok:
        await hooks_of(wopi.request.app).unlocked(wopi.access, wopi.storage, wopi.backend_id, stat)
    return _answer(result, stat.version, "The lock does not match")


async def refresh_lock(wopi: WopiRequest) -> web.Response:
    wopi.require_edit()
    lock_id = wopi.lock_header()
    stat = await wopi.stat()
    result = await wopi.locks.refresh(stat.identity, lock_id)
    return _answer(result, stat.version, "The lock does not match")


async def get_lock(wopi: WopiRequest) -> web.Response:
    stat = await wopi.stat()
    current = await wopi.locks.get(stat.identity)
    return web.Response(headers={"X-WOPI-Lock": current, "X-WOPI-ItemVersion": stat.version})
