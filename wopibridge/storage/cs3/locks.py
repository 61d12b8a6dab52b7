"""WOPI locks kept on the CS3 gateway (``SetLock``/``GetLock``/``RefreshLock``/``Unlock``), so
every client of the storage sees them; a gateway without locks falls back to wopibridge's."""

from __future__ import annotations

import logging
import time
from typing import Any

import cs3.rpc.v1beta1.code_pb2 as code
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr
import cs3.types.v1beta1.types_pb2 as types

from wopibridge.errors import NotImplementedOperation
from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore
from wopibridge.storage.cs3.client import GatewayClient
from wopibridge.storage.cs3.config import APP_NAME, parse_reva_id

log = logging.getLogger("wopibridge.storage.cs3")


def _lock(lock_id: str, ttl: float) -> spr.Lock:
    return spr.Lock(
        lock_id=lock_id,
        type=spr.LOCK_TYPE_WRITE,
        app_name=APP_NAME,
        expiration=types.Timestamp(seconds=int(time.time() + ttl)),
    )


class Cs3LockStore:
    """WOPI locks kept on the CS3 gateway, for the files of one storage view.

    Keys that are not this storage's identities, and every key once the gateway has answered
    UNIMPLEMENTED, go to ``fallback`` (wopibridge's own lock store). Conflicts answer the lock
    the gateway reports, like every other lock store.
    """

    def __init__(self, gateway: GatewayClient, site: str, name: str, fallback: LockStore) -> None:
        """``gateway`` is the storage view's client (it acts as the view's user), ``site`` the
        prefix of the storage's identities, ``name`` the storage's name in the logs."""
        self._gateway = gateway
        self._name = name
        self._fallback = fallback
        self._prefix = site + ":"

    def _ref(self, key: str) -> spr.Reference | None:
        if not self._gateway.shared.locks_supported or not key.startswith(self._prefix):
            return None
        rid = parse_reva_id(key[len(self._prefix) :])
        return None if rid is None else spr.Reference(resource_id=rid)

    async def _try(self, method: str, request: Any) -> Any | None:
        """Call a lock method; ``None`` (and fall back from now on) when unimplemented."""
        try:
            response = await self._gateway.call(method, request)
        except NotImplementedOperation:
            response = None
        if response is None or response.status.code == code.CODE_UNIMPLEMENTED:
            if self._gateway.shared.locks_supported:
                log.info("storage %s has no CS3 locks; using wopibridge's", self._name)
            self._gateway.shared.locks_supported = False
            return None
        return response

    async def _current(self, ref: spr.Reference) -> str | None:
        response = await self._try("GetLock", sp.GetLockRequest(ref=ref))
        if response is None:
            return None
        if response.status.code == code.CODE_OK:
            return str(response.lock.lock_id)
        if response.status.code == code.CODE_NOT_FOUND:
            return ""
        raise self._gateway.error(response.status, what="lock")

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        ref = self._ref(key)
        for _ in range(2):  # a lock released between SetLock and GetLock: try once more
            if ref is None:
                break
            request = sp.SetLockRequest(ref=ref, lock=_lock(lock_id, ttl))
            response = await self._try("SetLock", request)
            if response is None:
                break
            if response.status.code == code.CODE_OK:
                return LockResult(True, lock_id)
            current = await self._current(ref)
            if current is None:
                break
            if current == lock_id:
                return await self.refresh(key, lock_id, ttl)
            if current:
                return LockResult(False, current)
        else:
            return LockResult(False, "")
        return await self._fallback.lock(key, lock_id, ttl)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        ref = self._ref(key)
        if ref is not None:
            request = sp.RefreshLockRequest(
                ref=ref, lock=_lock(new_lock_id, ttl), existing_lock_id=old_lock_id
            )
            response = await self._try("RefreshLock", request)
            if response is not None:
                if response.status.code == code.CODE_OK:
                    return LockResult(True, new_lock_id)
                current = await self._current(ref)
                if current is not None:
                    return LockResult(False, current)
        return await self._fallback.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        ref = self._ref(key)
        if ref is not None:
            response = await self._try("Unlock", sp.UnlockRequest(ref=ref, lock=_lock(lock_id, 0)))
            if response is not None:
                if response.status.code == code.CODE_OK:
                    return LockResult(True, "")
                current = await self._current(ref)
                if current is not None:
                    return LockResult(False, current)
        return await self._fallback.unlock(key, lock_id)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        ref = self._ref(key)
        if ref is not None:
            response = await self._try(
                "RefreshLock", sp.RefreshLockRequest(ref=ref, lock=_lock(lock_id, ttl))
            )
            if response is not None:
                if response.status.code == code.CODE_OK:
                    return LockResult(True, lock_id)
                current = await self._current(ref)
                if current is not None:
                    return LockResult(False, current)
        return await self._fallback.refresh(key, lock_id, ttl)

    async def get(self, key: str) -> str:
        ref = self._ref(key)
        if ref is not None:
            current = await self._current(ref)
            if current is not None:
                return current
        return await self._fallback.get(key)

    async def ping(self) -> None:
        await self._fallback.ping()

    async def close(self) -> None:
        """The fallback belongs to the app and the channel to the storage."""
        return None
