"""PutFile: decide, then write or keep.

:func:`put_file` reads as the decision of :mod:`.decide`: it finds the one case that stands in
the save's way (a foreign or lost WOPI lock, a timestamp the stored file no longer has), asks
:func:`~.decide.decide` what to do, and then either writes (:meth:`ConflictKeeper.write`) or
keeps the body (:meth:`ConflictKeeper.keep`). A write the storage refuses after the body arrived
(the file changed meanwhile, a storage lock, a full disk) comes back with where the body was
kept, and is decided again by its case. :func:`_answer` turns a verdict into what the editor is
told. Nothing below this module calls back into it.

After a save that landed:

- an exit save (``IsExitSave: true``) shortens the WOPI lock to :data:`EXIT_LOCK_TTL`, so a
  session whose editor closed cannot keep the file read-only for 30 minutes if its Unlock
  never arrives (owncloud/ocis#3936);
- an empty body over a non-empty file had the previous content kept in the recovery folder
  first (a corrupted save must never be the only copy left, Euro-Office/server#42).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from wopibridge.config import SETTINGS
from wopibridge.errors import (
    InsufficientStorage,
    Locked,
    LockMismatch,
    PayloadTooLarge,
    VersionConflict,
    WopiError,
)
from wopibridge.jsonio import json_response
from wopibridge.storage.base import CHUNK_SIZE, FileStat
from wopibridge.storage.versions import noting
from wopibridge.wopi.context import WopiRequest
from wopibridge.wopi.hooks import hooks_of
from wopibridge.wopi.saves.decide import Answer, Case, Verdict, decide
from wopibridge.wopi.saves.hints import DocumentChanged, SaveHints, read_save_hints
from wopibridge.wopi.saves.keeper import CONFLICTS, ConflictKeeper
from wopibridge.wopi.saves.naming import Owner
from wopibridge.wopi.saves.placing import KeptCopy

log = logging.getLogger("wopibridge.saving")

EXIT_LOCK_TTL = 120.0


def upload_limit(request: web.Request) -> int:
    """The upload limit; a declared ``Content-Length`` above it is refused before reading."""
    limit = request.app[SETTINGS].server.max_upload_size
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
    return limit


async def body_chunks(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    """The request body in chunks, refusing (413) once more than ``limit`` bytes arrived."""
    received = 0
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
        yield chunk


async def put_file(wopi: WopiRequest) -> web.Response:
    """PutFile: decide, then write or keep."""
    wopi.require_edit()
    limit = upload_limit(wopi.request)
    hints = read_save_hints(wopi.request.headers)
    stat = await wopi.stat()
    current = await wopi.locks.get(stat.identity) or ""
    given = wopi.header("X-WOPI-Lock") or ""
    case = _case(stat, current, given, hints)
    verdict = decide(case, final=hints.final)
    if verdict.relock:
        case, current = await _relock(wopi, stat, given)
        verdict = decide(case, final=hints.final)
    keeper = wopi.request.app[CONFLICTS]
    owner = Owner(wopi.access.user_id, wopi.access.user_name)
    chunks = body_chunks(wopi.request, limit)
    if verdict.write:
        return await _write(wopi, keeper, owner, stat, current, hints, chunks)
    assert case is not None
    kept = None
    if verdict.keep:
        kept = await keeper.keep(wopi.storage, wopi.backend_id, stat, owner, chunks, case.value)
    else:
        async for _ in chunks:  # read to its end: the editor still holds it
            pass
    return _answer(verdict, case, kept, stat, current, hints, None)


async def _relock(wopi: WopiRequest, stat: FileStat, given: str) -> tuple[Case | None, str]:
    """Take a lost lock again for the editor's id; a foreign lock if someone was quicker."""
    result = await wopi.locks.lock(stat.identity, given)
    if not result.ok:
        return Case.FOREIGN_LOCK, result.current
    log.info("lock of %s taken again for %s (lost, unchanged since)", stat.file_id, given)
    await hooks_of(wopi.request.app).locked(wopi.access, wopi.storage, wopi.backend_id, stat)
    return None, given


async def _write(
    wopi: WopiRequest,
    keeper: ConflictKeeper,
    owner: Owner,
    stat: FileStat,
    lock_id: str,
    hints: SaveHints,
    chunks: AsyncIterator[bytes],
) -> web.Response:
    if wopi.request.content_length == 0 and stat.size > 0:
        await keeper.keep_previous(wopi.storage, wopi.backend_id, stat, owner)
    with noting(hints.note(wopi.access.user_name or wopi.access.user_id, lock_id)):
        written = await keeper.write(
            wopi.storage, wopi.backend_id, stat, owner, chunks, expected_version=stat.version
        )
    if written.error is not None:
        case = _refusal_case(written.error)
        verdict = decide(case, final=hints.final)
        assert verdict.keep, "a body the storage consumed is always kept"
        return _answer(verdict, case, written.kept, stat, lock_id, hints, written.error)
    assert written.stat is not None
    if lock_id and hints.exit_save:
        await wopi.locks.refresh(written.stat.identity, lock_id, ttl=EXIT_LOCK_TTL)
    return _landed(written.stat)


def _case(stat: FileStat, current: str, given: str, hints: SaveHints) -> Case | None:
    """What stands in the save's way before anything is read, if anything."""
    if not given and (current or stat.size != 0):
        return Case.NO_LOCK_GIVEN
    if current and given != current:
        return Case.FOREIGN_LOCK
    matches = hints.timestamp_matches(stat.last_modified)
    if not current and stat.size != 0:
        if hints.speaks_timestamps and matches is not False:
            return Case.LOST_LOCK_CURRENT
        return Case.LOST_LOCK
    if matches is False:
        return Case.TIMESTAMP_MISMATCH
    return None


def _refusal_case(error: WopiError) -> Case:
    """The case of a write the storage (or this machine's disk) refused."""
    if isinstance(error, VersionConflict):
        return Case.CHANGED_DURING_WRITE
    if isinstance(error, Locked | LockMismatch):  # a lock at the storage itself
        return Case.STORAGE_LOCK
    if isinstance(error, InsufficientStorage | PayloadTooLarge):
        return Case.FULL
    return Case.OTHER


def _landed(stat: FileStat) -> web.Response:
    return json_response(
        {"LastModifiedTime": stat.last_modified}, headers={"X-WOPI-ItemVersion": stat.version}
    )


def _answer(
    verdict: Verdict,
    case: Case,
    kept: KeptCopy | None,
    stat: FileStat,
    current: str,
    hints: SaveHints,
    error: WopiError | None,
) -> web.Response:
    """What the editor is told (a refusal is raised), given the verdict and the copy."""
    answer = verdict.answer if kept is None or kept.safe else verdict.unkept
    if answer is Answer.KEPT:
        assert kept is not None
        log.warning(
            "final save of %s (%s), %s: kept as %s (%s) and answered 200; the file is unchanged",
            stat.name,
            stat.file_id,
            case.value,
            kept.name,
            kept.where,
        )
        return _landed(stat)
    if answer is Answer.DOCUMENT_CHANGED:
        if hints.timestamp is None and error is not None:
            raise error
        raise DocumentChanged()
    if answer is Answer.LOCK_MISMATCH:
        if current:
            raise LockMismatch(current, "The file is locked by another session")
        raise LockMismatch("", "The file is not locked")
    if answer is Answer.TOO_LARGE:
        if kept is not None and not kept.safe and kept.name == "quota":
            raise PayloadTooLarge("The save is over the quota of kept copies; nothing was written")
        raise PayloadTooLarge("The storage cannot take this save; nothing was written")
    assert answer is Answer.STORAGE_ERROR and error is not None
    raise error


__all__ = ["EXIT_LOCK_TTL", "body_chunks", "put_file", "upload_limit"]
