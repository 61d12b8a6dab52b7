"""Never lose a save: content that cannot land on its file is kept as a conflict copy.

When a PutFile cannot replace the file (the file changed in storage meanwhile, a desktop client
holds a storage lock, the WOPI lock was lost), the editor still holds the user's work and is
about to be told "no". Before it is, the content is written next to the file as
``<name> (conflict <user> <YYYY-MM-DD HHMM> UTC).<ext>``; at most one such copy per user, file
and minute lands in the user's folder, anything more (or anything the storage refuses) goes to
the recovery folder on the server. The log line names where the content went.

The body is written once (:class:`~wopibridge.wopi.body.SaveBody` is its only reader):

- on a storage with ``local_staging`` it goes into a temporary file beside the file; a save
  that lands is that file renamed over the old one, a refused save is that file linked beside it
  as the conflict copy (or moved to the recovery folder);
- on a remote storage it streams to the upload and, batch by batch, into a temporary file in the
  recovery folder; that file becomes the kept copy when the storage refuses the save, and is
  deleted when it lands.

Kept copies are bounded (:class:`KeepLimits`): the same content for the same file and user is
kept once, each user and all users together have a quota, and copies older than ``max_age``
are deleted (a conflict copy beside the file only while nobody changed it since). Whatever is
not kept is logged with the reason and counted (``on_drop``, the ``/metrics`` counter).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wopibridge.errors import (
    FileExists,
    InsufficientStorage,
    Unavailable,
    WopiError,
)
from wopibridge.instruments import Instruments
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.tempfiles import TempFile, read_chunks, sweep
from wopibridge.wopi.body import SaveBody
from wopibridge.wopi.keptcopies import KeepLimits, KeptCopies
from wopibridge.wopi.keptindex import KeptIndex

log = logging.getLogger("wopibridge.conflicts")

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


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
    ``stat`` set), ``recovery`` (a file on the server, ``path`` set) or ``dropped`` (not kept:
    ``name`` says why)."""

    where: str
    name: str
    stat: FileStat | None = None
    path: Path | None = None


def _file_error(exc: OSError) -> WopiError:
    """A failed write of a save's body on this machine, as the editor should hear it."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("The storage is full")
    return Unavailable("The save could not be written", detail=str(exc))


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, 1024 * 1024, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def _durable_move(source: Path, target: Path) -> None:
    """Move a durable file into ``target``'s folder; across filesystems, by a copy."""
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = target.with_name(f".~wb-{secrets.token_hex(8)}.tmp")
        try:
            shutil.copyfile(source, partial)
            fd = os.open(partial, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        source.unlink(missing_ok=True)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class ConflictKeeper:
    """Writes conflict copies and guards writes; one per application (``recovery_dir`` under
    the state folder)."""

    def __init__(
        self,
        recovery_dir: Path,
        clock: Callable[[], datetime] | None = None,
        limits: KeepLimits | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        self.recovery_dir = recovery_dir
        self.kept = KeptCopies(
            KeptIndex(recovery_dir.parent / "kept-copies.sqlite3"),
            recovery_dir,
            limits or KeepLimits(),
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._instruments = instruments

    def _counted(self, kept: KeptCopy) -> KeptCopy:
        if self._instruments is not None and kept.where != "dropped":
            self._instruments.conflict_copies.labels(kept.where).inc()
        return kept

    def _folder(self) -> Path:
        self.recovery_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.recovery_dir

    # -- start and upkeep -----------------------------------------------------------------

    async def start(self) -> None:
        """Remove the bodies a crash left half-received in the recovery folder (those whose
        writer is gone), and what has expired."""
        await asyncio.to_thread(self._folder)
        await asyncio.to_thread(sweep, self.recovery_dir, recursive=False)
        await self.kept.expire()

    async def run(self) -> None:
        """Expire kept copies now and then, for as long as the app runs."""
        while True:
            await asyncio.sleep(min(3600.0, max(1.0, self.kept.limits.max_age / 2)))
            try:
                await self.kept.expire()
            except Exception:  # pragma: no cover - upkeep must not die
                log.exception("expiring kept copies failed")

    async def _spool(self) -> TempFile | None:
        """A temporary file in the recovery folder for a body streaming to a remote storage;
        ``None`` (logged) when the state folder cannot take it: the save goes on unguarded."""
        try:
            return await TempFile.create(await asyncio.to_thread(self._folder))
        except OSError as exc:
            log.warning("no copy of this save can be kept in %s: %s", self.recovery_dir, exc)
            return None

    @staticmethod
    async def _local_folder(storage: Storage, backend_id: str) -> Path | None:
        """The folder a body is staged in beside its file, for storages on this machine."""
        if not storage.capabilities.local_staging:
            return None
        return await storage.staging_folder(backend_id)

    async def _staged(self, storage: Storage, backend_id: str) -> TempFile | None:
        """The file a body is written to: beside its file on a local storage (``OSError``
        when it cannot be made), else a spool in the recovery folder (or ``None``)."""
        folder = await self._local_folder(storage, backend_id)
        if folder is None:
            return await self._spool()
        return await TempFile.create(folder)

    async def _read_staged(self, storage: Storage, body: SaveBody) -> TempFile:
        """Read the whole body into its staged file, durable; the errors as the editor hears
        them (a full disk is 507)."""
        try:
            await body.drain()
            if body.file is None:
                assert body.file_error is not None
                raise _file_error(body.file_error)
            await body.file.sync()
        except OSError as exc:
            body.discard()
            raise _file_error(exc) from None
        except BaseException:
            body.discard()
            raise
        return body.file

    async def keep(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        user: str,
        chunks: AsyncIterable[bytes],
        reason: str,
    ) -> KeptCopy:
        """Keep ``chunks`` (a body that will not land on the file), read to its end. When
        the file's folder cannot take a temporary file, the recovery folder is tried; when
        neither can, the body is still read, and its loss logged."""
        try:
            file = await self._staged(storage, backend_id)
        except OSError:
            file = await self._spool()
        body = SaveBody(chunks, file)
        try:
            await body.drain()
        except BaseException:
            body.discard()
            raise
        return self._counted(await self._place(storage, backend_id, stat, user, body, reason))

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
        """Write ``chunks`` over the file; when the storage refuses it with a
        :class:`WopiError` after the body arrived whole, keep it and raise the error again."""
        if storage.capabilities.local_staging:
            try:
                file = await self._staged(storage, backend_id)
            except OSError as exc:
                await SaveBody(chunks, None).drain()  # read to its end, then refuse it
                raise _file_error(exc) from None
            body = SaveBody(chunks, file)
            staged = await self._read_staged(storage, body)
            try:
                written = await storage.commit(
                    backend_id, staged.path, expected_version=expected_version
                )
            except WopiError as exc:
                self._counted(await self._place(storage, backend_id, stat, user, body, exc.message))
                raise
            except BaseException:
                body.discard()
                raise
            staged.close()  # renamed into place
            return written
        body = SaveBody(chunks, await self._spool())
        try:
            written = await storage.write(
                backend_id, body.stream(), expected_version=expected_version
            )
        except WopiError as exc:
            try:
                await body.drain()
            except BaseException:
                await body.aclose()
                raise
            self._counted(await self._place(storage, backend_id, stat, user, body, exc.message))
            raise
        except BaseException:
            await body.aclose()
            raise
        try:
            await body.drain()
        finally:
            await body.aclose()
        return written

    async def keep_previous(
        self, storage: Storage, backend_id: str, stat: FileStat, user: str
    ) -> KeptCopy:
        """Copy the current content to the recovery folder before a suspicious overwrite."""
        file = await self._spool()
        if file is None:
            self.kept.dropped(stat.name, "disk_full", "no room for the previous content")
            return KeptCopy("dropped", "disk_full")
        try:
            content = await storage.open_read(backend_id)
            try:
                body = SaveBody(content.stream(), file)
                await body.drain()
            finally:
                await content.close()
        except BaseException:
            file.discard()
            raise
        name = conflict_name(stat.name, f"previous version, before {user}", self._clock())
        target = await self._to_recovery(body, name)
        if target is None:
            return KeptCopy("dropped", "disk_full")
        log.warning(
            "empty save over %s (%s) by %s: previous content kept in the recovery folder as %s",
            stat.name,
            stat.file_id,
            user,
            target,
        )
        return self._counted(KeptCopy("recovery", target.name, path=target))

    # -- where a refused body goes ----------------------------------------------------------

    async def _place(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        user: str,
        body: SaveBody,
        reason: str,
    ) -> KeptCopy:
        what = f"save of {stat.name} ({stat.file_id}) by {user}"
        file = body.file
        if file is None:
            why = body.file_error.strerror if body.file_error else "no room"
            self.kept.dropped(what, "disk_full", f"could not land ({reason}); {why}")
            return KeptCopy("dropped", "disk_full")
        try:
            await file.sync()
            digest = await file.in_thread(_sha256)
        except OSError as exc:
            body.discard()
            self.kept.dropped(what, "disk_full", f"could not land ({reason}); {exc.strerror}")
            return KeptCopy("dropped", "disk_full")
        refusal = await self.kept.refusal(storage, stat, user, digest, file.size)
        if refusal is not None:
            body.discard()
            self.kept.dropped(what, refusal[0], f"could not land ({reason}); {refusal[1]}")
            return KeptCopy("dropped", refusal[0])
        name = conflict_name(stat.name, user, self._clock())
        try:
            if file.path.parent != self.recovery_dir:
                copy = await storage.adopt(backend_id, name, file.path)
                file.close()
            else:
                copy = await storage.create(backend_id, name, read_chunks(file.path))
                body.discard()
        except (WopiError, OSError) as exc:
            why = "one already exists this minute" if isinstance(exc, FileExists) else str(exc)
            target = await self._to_recovery(body, name)
            if target is None:
                return KeptCopy("dropped", "disk_full")
            self.kept.index.add(stat.identity, user, digest, body.size, "recovery", str(target))
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
        location = f"{storage.name}:{copy.file_id}"
        self.kept.index.add(
            stat.identity, user, digest, body.size, "storage", location, copy.version
        )
        log.warning(
            "save of %s (%s) could not land (%s): kept as conflict copy %r in the same folder",
            stat.name,
            stat.file_id,
            reason,
            name,
        )
        return KeptCopy("storage", name, stat=copy)

    async def _to_recovery(self, body: SaveBody, name: str) -> Path | None:
        """Move the body's durable file into the recovery folder under a dated name; ``None``
        (dropped, logged) when the state folder has no room for it."""
        file = body.file
        assert file is not None
        stamp = self._clock().strftime("%Y%m%dT%H%M%S")
        target = self.recovery_dir / f"{stamp}-{secrets.token_hex(3)} {_safe(name, 200)}"
        try:
            await file.sync()
            await asyncio.to_thread(self._folder)
            await asyncio.to_thread(_durable_move, file.path, target)
        except OSError as exc:
            body.discard()
            self.kept.dropped(name, "disk_full", f"the recovery folder could not take it: {exc}")
            return None
        file.close()
        return target

    def close(self) -> None:
        self.kept.index.close()
