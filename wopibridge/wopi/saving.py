"""What PutFile does for the editors beyond writing bytes: the 1010 check, conflict copies,
exit saves and suspicious empty saves. The WOPI PutFile handler calls these hooks.

- :func:`check_document_changed` before anything is read: Collabora's and OnlyOffice's
  ``X-COOL-/X-LOOL-WOPI-Timestamp`` compared as a string with the canonical
  ``LastModifiedTime``; a mismatch is ``409 {"COOLStatusCode": 1010, ...}`` and nothing is
  written.
- :func:`write` replaces the content, guarded: when the write cannot land (the file changed
  in storage meanwhile, a storage lock), the body is kept as a conflict copy and the editor
  gets the status its protocol expects (1010 when it speaks the timestamp protocol, else 409;
  423 for a storage lock).
- :func:`keep_rejected` keeps a body that will be refused (lock lost or held by another
  session) before the 409 goes out.
- An exit save (``IsExitSave: true``) shortens the WOPI lock to :data:`EXIT_LOCK_TTL`, so a
  session whose editor closed cannot keep the file read-only for 30 minutes if its Unlock
  never arrives (owncloud/ocis#3936).
- An empty body over a non-empty file keeps the previous content in the recovery folder
  first (a corrupted save must never be the only copy left, Euro-Office/server#42).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Mapping

from aiohttp import web

from wopibridge.errors import VersionConflict
from wopibridge.locks.base import LockStore
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage
from wopibridge.wopi.conflicts import ConflictKeeper, KeptCopy, conflict_name
from wopibridge.wopi.keys import CONFLICTS
from wopibridge.wopi.savehints import DocumentChanged, SaveHints, read_save_hints

log = logging.getLogger("wopibridge.saving")

EXIT_LOCK_TTL = 120.0


def check_document_changed(headers: Mapping[str, str], stat: FileStat) -> SaveHints:
    hints = read_save_hints(headers)
    hints.check_timestamp(stat.last_modified)
    return hints


def _keeper(request: web.Request) -> ConflictKeeper:
    return request.app[CONFLICTS]


async def write(
    request: web.Request,
    storage: Storage,
    backend_id: str,
    stat: FileStat,
    access: AccessToken,
    chunks: AsyncIterable[bytes],
    *,
    size: int | None = None,
) -> FileStat:
    hints = read_save_hints(request.headers)
    keeper = _keeper(request)
    if size == 0 and stat.size > 0:
        await keeper.keep_previous(storage, backend_id, stat, access.user_name or access.user_id)
    try:
        return await keeper.guarded_write(
            storage,
            backend_id,
            stat,
            access.user_name or access.user_id,
            chunks,
            expected_version=stat.version,
        )
    except VersionConflict:
        if hints.timestamp is not None:
            raise DocumentChanged() from None
        raise


async def keep_rejected(
    request: web.Request,
    storage: Storage,
    backend_id: str,
    stat: FileStat,
    access: AccessToken,
    chunks: AsyncIterable[bytes],
    reason: str,
) -> KeptCopy:
    return await _keeper(request).keep(
        storage, backend_id, stat, access.user_name or access.user_id, chunks, reason
    )


async def after_write(
    request: web.Request, locks: LockStore, stat: FileStat, lock_id: str | None
) -> None:
    """After a successful save: an exit save shortens the lock (see module docstring)."""
    if lock_id and read_save_hints(request.headers).exit_save:
        await locks.refresh(stat.identity, lock_id, ttl=EXIT_LOCK_TTL)


__all__ = [
    "EXIT_LOCK_TTL",
    "after_write",
    "check_document_changed",
    "conflict_name",
    "keep_rejected",
    "write",
]
