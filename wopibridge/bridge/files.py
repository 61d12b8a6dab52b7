"""The bridge's file I/O: a whole file read for an editor, and a save written back under
PutFile's rule (only under the bridge's own lock, onto the version it loaded), or beside the
file as a conflict copy when that rule does not hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from wopibridge.bridge.docid import conflict_name
from wopibridge.bridge.state import BridgeStore, DocState
from wopibridge.errors import Conflict, FileExists, PayloadTooLarge, VersionConflict
from wopibridge.instruments import Instruments
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.registry import StorageRegistry
from wopibridge.storage.versions import SaveNote, noting, session_of

log = logging.getLogger("wopibridge.bridge")


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def read_file(
    storage: Storage, backend_id: str, limit: int, label: str
) -> tuple[bytes, FileStat]:
    """The whole file (an editor takes a document in one piece), refusing more than ``limit``."""
    content = await storage.open_read(backend_id)
    try:
        if content.stat.size > limit:
            raise PayloadTooLarge(f"The file is too large for {label}")
        if content.local_path is not None:
            data = await asyncio.to_thread(Path(content.local_path).read_bytes)
        else:
            parts: list[bytes] = []
            total = 0
            async for chunk in content.chunks or _empty():
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge(f"The file is too large for {label}")
                parts.append(chunk)
            data = b"".join(parts)
        if len(data) > limit:
            raise PayloadTooLarge(f"The file is too large for {label}")
        return data, content.stat
    finally:
        await content.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def write_save(
    state: DocState,
    content: bytes,
    storages: StorageRegistry,
    locks: LockStore,
    instruments: Instruments | None,
    store: BridgeStore,
    limit: int,
    digest: str,
) -> str:
    """PutFile's rule: write only under our own lock and onto the version we loaded.

    Answers the outcome: ``saved``, or ``conflict_copy`` when the content went beside.
    ``limit`` bounds the read that tells the bridge's own earlier write from an outside one;
    ``digest`` is the content's (:func:`digest_of`), which the caller compared already."""
    storage, backend_id = storages.for_file(state.file_id)
    stat = await storage.stat(backend_id)
    current = await locks.get(state.identity)
    if current == "":
        current = (await locks.lock(state.identity, state.lock_id)).current
    if current != state.lock_id:
        await conflict_copy(
            state, storage, backend_id, content, "the lock was lost", storages, locks, instruments
        )
        return "conflict_copy"
    if stat.version != state.version and not await _own_version(storage, backend_id, state, limit):
        await conflict_copy(
            state, storage, backend_id, content, "the file changed", storages, locks, instruments
        )
        return "conflict_copy"
    # Write-ahead: the record names the content before the file gets it, so that whoever
    # processes the document after a crash or a failover between the write and the record's
    # update knows the file's new version as the bridge's own (``_own_version``).
    state.pending = digest
    await store.put(state)
    try:
        # the bridge saves every few seconds while people type: its saves are one session's
        # autosaves for the version rule (docs/versions.md), not a version each
        with noting(SaveNote(kind="auto", session=session_of(state.lock_id))):
            written = await storage.write(backend_id, once(content), expected_version=state.version)
    except VersionConflict:
        await conflict_copy(
            state, storage, backend_id, content, "the file changed", storages, locks, instruments
        )
        return "conflict_copy"
    state.version = written.version
    state.pending = ""
    return "saved"


async def _own_version(storage: Storage, backend_id: str, state: DocState, limit: int) -> bool:
    """Whether the file's new version holds what the bridge itself last wrote or was writing.

    A save's record can be lost after its file write: the instance died in between, or a Redis
    failover rolled the record back. The file then has a version the record does not know,
    though nobody else changed it. Its content tells: the bytes the record last knew, or those
    of the save under way (``pending``), mean no outside change, and the record takes the
    file's version; anything else is a change made outside the bridge."""
    known = {state.digest, state.pending} - {""}
    try:
        data, stat = await read_file(storage, backend_id, limit, state.app)
    except PayloadTooLarge:
        return False
    if digest_of(data) not in known:
        return False
    log.info("bridge document %s: the file's version %s is its own save", state.docid, stat.version)
    state.version = stat.version
    return True


async def conflict_copy(
    state: DocState,
    storage: Storage,
    backend_id: str,
    content: bytes,
    why: str,
    storages: StorageRegistry,
    locks: LockStore,
    instruments: Instruments | None,
) -> None:
    """Put ``content`` beside the file under a free conflict name, and move the document's
    lock and state onto the copy: later saves follow it there."""
    name = conflict_name(state.name, state.writer_name or state.writer_id)
    for attempt in range(1, 100):
        candidate = name if attempt == 1 else name.replace(" UTC)", f" UTC {attempt})")
        try:
            copy = await storage.create(backend_id, candidate, once(content))
            break
        except FileExists:
            continue
    else:
        raise Conflict("No free name for a conflict copy")
    log.warning("bridge saved %s to conflict copy %r: %s", state.docid, copy.name, why)
    if instruments is not None:
        instruments.conflict_copies.labels("storage").inc()
    await locks.unlock(state.identity, state.lock_id)
    await locks.lock(copy.identity, state.lock_id)
    state.file_id = storages.wopi_id(storage, copy.file_id)
    state.identity = copy.identity
    state.name = copy.name
    state.version = copy.version
    state.pending = ""
