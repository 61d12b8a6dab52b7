"""Never lose a save: content that cannot land on its file is kept as a conflict copy.

When a PutFile cannot replace the file (the file changed in storage meanwhile, a desktop client
holds a storage lock, the WOPI lock was lost), the editor still holds the user's work and is
about to be told "no". Before it is, the content is written next to the file as
``<name> (conflict <user> <YYYY-MM-DD HHMM> UTC).<ext>``; at most one such copy per user, file
and minute lands in the user's folder, anything more (or anything the storage refuses) goes to
the recovery folder on the server. The log line names where the content went.

A write is guarded by spooling the body to the recovery folder while it streams to the storage
(:meth:`ConflictKeeper.guarded_write`): a storage may consume the body and only then find that
it cannot commit it (an atomic local write checks the version again just before its rename).
The spool is deleted as soon as the write succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from wopibridge.errors import FileExists, WopiError
from wopibridge.instruments import Instruments
from wopibridge.storage.base import CHUNK_SIZE, FileStat, Storage

log = logging.getLogger("wopibridge.conflicts")

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
_SPOOL_BATCH = 1024 * 1024


def _safe(text: str, limit: int) -> str:
    cleaned = _UNSAFE.sub("_", text).strip(" .")
    return cleaned[:limit] or "unknown"


def conflict_name(name: str, user: str, when: datetime) -> str:
    """``report.odt`` → ``report (conflict Ada Lovelace 2026-11-25 0532 UTC).odt``."""
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H%M UTC")
    suffix = f" (conflict {_safe(user, 64)} {stamp}){ext}"
    return stem[: max(1, 250 - len(suffix.encode()))] + suffix


@dataclass(frozen=True, slots=True)
class KeptCopy:
    """Where a save that could not land went: ``storage`` (a conflict copy next to the file,
    ``stat`` set) or ``recovery`` (a file on the server, ``path`` set)."""

    where: str
    name: str
    stat: FileStat | None = None
    path: Path | None = None


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, CHUNK_SIZE)
            if not chunk:
                return
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _durable_rename(source: Path, target: Path) -> None:
    fd = os.open(source, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    source.rename(target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class _Spool:
    """A file in the recovery folder that records a body while it streams elsewhere.

    :meth:`tee` hands the storage an iterator that records every chunk it takes; when the
    storage gives up half way, :meth:`finish` records the rest of the body, so the whole body
    is kept whatever the point of failure.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"spool-{secrets.token_hex(8)}"
        self.complete = False
        self._pending = bytearray()
        self._handle: BinaryIO | None = None

    async def _flush(self) -> None:
        if self._handle is None:
            self._handle = await asyncio.to_thread(self.path.open, "wb")
        if self._pending:
            await asyncio.to_thread(self._handle.write, bytes(self._pending))
            self._pending.clear()

    async def add(self, chunk: bytes) -> None:
        self._pending += chunk
        if len(self._pending) >= _SPOOL_BATCH:
            await self._flush()

    def tee(self, chunks: AsyncIterable[bytes]) -> _Tee:
        return _Tee(self, chunks.__aiter__())

    async def finish(self, rest: AsyncIterator[bytes] | None = None) -> None:
        """Record whatever is left of the body. The spool is not fsynced here: it only
        matters when a save fails, and then it is made durable where it is kept (the storage's
        atomic create, or :meth:`ConflictKeeper._to_recovery`)."""
        if rest is not None:
            async for chunk in rest:
                await self.add(chunk)
        await self._flush()
        handle = self._handle
        assert handle is not None
        await asyncio.to_thread(handle.close)
        self._handle = None
        self.complete = True

    async def drop(self) -> None:
        if self._handle is not None:
            await asyncio.to_thread(self._handle.close)
            self._handle = None
        await asyncio.to_thread(self.path.unlink, True)


class _Tee:
    def __init__(self, spool: _Spool, source: AsyncIterator[bytes]) -> None:
        self.spool = spool
        self.source = source
        self.body_failed = False

    def __aiter__(self) -> _Tee:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self.source.__anext__()
        except StopAsyncIteration:
            await self.spool.finish()
            raise
        except BaseException:
            self.body_failed = True  # the upload itself broke (too large, disconnected)
            raise
        await self.spool.add(chunk)
        return chunk


class ConflictKeeper:
    """Writes conflict copies and guards writes; one per application (``recovery_dir`` under
    the state folder)."""

    def __init__(
        self,
        recovery_dir: Path,
        clock: Callable[[], datetime] | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        self.recovery_dir = recovery_dir
        self._clock = clock or (lambda: datetime.now(UTC))
        self._instruments = instruments

    def _counted(self, kept: KeptCopy) -> KeptCopy:
        if self._instruments is not None:
            self._instruments.conflict_copies.labels(kept.where).inc()
        return kept

    def _folder(self) -> Path:
        self.recovery_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.recovery_dir

    async def keep(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        user: str,
        chunks: AsyncIterable[bytes],
        reason: str,
    ) -> KeptCopy:
        """Save ``chunks`` (a body that will not land on the file) as a conflict copy."""
        spool = _Spool(await asyncio.to_thread(self._folder))
        try:
            await spool.finish(chunks.__aiter__())
        except BaseException:
            await spool.drop()
            raise
        return self._counted(await self._place(storage, backend_id, stat, user, spool, reason))

    async def keep_previous(
        self, storage: Storage, backend_id: str, stat: FileStat, user: str
    ) -> KeptCopy:
        """Copy the current content to the recovery folder before a suspicious overwrite."""
        spool = _Spool(await asyncio.to_thread(self._folder))
        content = await storage.open_read(backend_id)
        try:
            if content.chunks is not None:
                await spool.finish(content.chunks)
            else:
                assert content.local_path is not None
                await spool.finish(_file_chunks(content.local_path))
        finally:
            await content.close()
        name = conflict_name(stat.name, f"previous version, before {user}", self._clock())
        target = await self._to_recovery(spool, name)
        log.warning(
            "empty save over %s (%s) by %s: previous content kept in the recovery folder as %s",
            stat.name,
            stat.file_id,
            user,
            target,
        )
        return self._counted(KeptCopy("recovery", target.name, path=target))

    async def guarded_write(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        user: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        """``storage.write`` that keeps the body as a conflict copy when the write fails with
        a :class:`WopiError` after the body was received; the error is raised again."""
        spool = _Spool(await asyncio.to_thread(self._folder))
        tee = spool.tee(chunks)
        try:
            written = await storage.write(backend_id, tee, expected_version=expected_version)
        except WopiError as exc:
            if tee.body_failed:  # nothing complete to keep: the editor gets the error
                await spool.drop()
                raise
            try:
                if not spool.complete:
                    await spool.finish(tee.source)
            except BaseException:
                await spool.drop()
                raise
            await self._place(storage, backend_id, stat, user, spool, exc.message)
            raise
        except BaseException:
            await spool.drop()
            raise
        await spool.drop()
        return written

    async def _place(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        user: str,
        spool: _Spool,
        reason: str,
    ) -> KeptCopy:
        name = conflict_name(stat.name, user, self._clock())
        try:
            copy = await storage.create(backend_id, name, _file_chunks(spool.path))
        except (WopiError, OSError) as exc:
            why = "one already exists this minute" if isinstance(exc, FileExists) else str(exc)
            target = await self._to_recovery(spool, name)
            log.warning(
                "save of %s (%s) could not land (%s) and no conflict copy was made beside it "
                "(%s): kept in the recovery folder as %s",
                stat.name,
                stat.file_id,
                reason,
                why,
                target,
            )
            return KeptCopy("recovery", target.name, path=target)
        await spool.drop()
        log.warning(
            "save of %s (%s) could not land (%s): kept as conflict copy %r in the same folder",
            stat.name,
            stat.file_id,
            reason,
            name,
        )
        return KeptCopy("storage", name, stat=copy)

    async def _to_recovery(self, spool: _Spool, name: str) -> Path:
        stamp = self._clock().strftime("%Y%m%dT%H%M%S")
        target = spool.path.with_name(f"{stamp}-{secrets.token_hex(3)} {_safe(name, 200)}")
        await asyncio.to_thread(_durable_rename, spool.path, target)
        return target
