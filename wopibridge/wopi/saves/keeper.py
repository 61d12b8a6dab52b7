"""Never lose a save: content that cannot land on its file is kept as a conflict copy.

:mod:`.entry` decides (with :mod:`.decide`) that a save is to be kept, or writes it and learns
here that the storage refused it; this module does the keeping. The content is written next to
the file as ``<name> (conflict <user> <YYYY-MM-DD HHMM> UTC).<ext>``; at most one such copy per
user, file and minute lands in the user's folder, anything more (or anything the storage
refuses) goes to the recovery folder on the server. The log line names where the content went.

The body is written once (:class:`~wopibridge.wopi.saves.body.SaveBody` is its only reader):

- on a storage with ``local_staging`` it goes into a temporary file beside the file; a save
  that lands is that file renamed over the old one, a refused save is that file linked beside it
  as the conflict copy (or moved to the recovery folder). When the data disk fills up under
  it, the copy moves on into the recovery folder, so a save refused for a full disk is kept too;
- on a remote storage it streams to the upload and, batch by batch, into a temporary file in the
  recovery folder; that file becomes the kept copy when the storage refuses the save, and is
  deleted when it lands.

Kept copies are bounded (:class:`~wopibridge.wopi.saves.quota.KeepLimits`): the same content for
the same file and user is kept once, each user (by id) and all users together have a quota, and
copies older than ``max_age`` are deleted (a conflict copy beside the file only while nobody
changed it since). Every kept copy is indexed and counted, whatever made it: a refused save, or
the previous content kept before an empty save. Whatever is not kept is logged with the reason
and counted (``on_drop``, the ``/metrics`` counter).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from wopibridge.errors import FileExists, InsufficientStorage, Unavailable, WopiError
from wopibridge.instruments import Instruments
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.tempfiles import TempFile, read_chunks, sweep
from wopibridge.wopi.saves.body import SaveBody
from wopibridge.wopi.saves.index import KeptIndex, KeptRow
from wopibridge.wopi.saves.naming import Owner, conflict_name, safe
from wopibridge.wopi.saves.quota import KeepLimits, KeptCopies

log = logging.getLogger("wopibridge.conflicts")


@dataclass(frozen=True, slots=True)
class KeptCopy:
    """Where a save that could not land went: ``storage`` (a conflict copy next to the file,
    ``stat`` set), ``recovery`` (a file on the server, ``path`` set) or ``dropped`` (not kept:
    ``name`` says why)."""

    where: str
    name: str
    stat: FileStat | None = None
    path: Path | None = None
    digest: str = ""

    @property
    def safe(self) -> bool:
        """The content is kept somewhere: here, or already (a duplicate of an earlier copy)."""
        return self.where != "dropped" or self.name == "duplicate"


@dataclass(frozen=True, slots=True)
class Written:
    """What a write came to: the new ``stat``, or the storage's ``error`` and where the body
    was ``kept`` instead."""

    stat: FileStat | None = None
    error: WopiError | None = None
    kept: KeptCopy | None = None


def _file_error(exc: OSError) -> WopiError:
    """A failed write of a save's body on this machine, as the editor should hear it."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("The storage is full")
    return Unavailable(f"The save could not be written ({exc.strerror})")


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

    async def keep(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        owner: Owner,
        chunks: AsyncIterable[bytes],
        reason: str,
    ) -> KeptCopy:
        """Keep ``chunks`` (a body that will not land on the file), read to its end. When
        the file's folder cannot take a temporary file, the recovery folder is tried; when
        neither can, the body is still read, and its loss logged. A body that breaks off
        (too large, the editor went away) is not kept: its error is raised."""
        try:
            file = await self._staged(storage, backend_id)
        except OSError:
            file = await self._spool()
        body = SaveBody(chunks, file, fallback=self._spool)
        try:
            await body.drain()
        except BaseException:
            body.discard()
            raise
        return self._counted(await self._place(storage, backend_id, stat, owner, body, reason))

    async def write(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        owner: Owner,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> Written:
        """Write ``chunks`` over the file. When the storage (or a full disk) refuses it after
        the body arrived whole, the body is kept and the refusal returned with where it went;
        a body that broke off raises its own error, with nothing written."""
        if storage.capabilities.local_staging:
            try:
                file = await self._staged(storage, backend_id)
            except OSError as exc:  # no temporary file beside it: the body goes to recovery
                why = exc.strerror or "no temporary file"
                kept = await self.keep(storage, backend_id, stat, owner, chunks, why)
                return Written(error=_file_error(exc), kept=kept)
            body = SaveBody(chunks, file, fallback=self._spool)
            try:
                await body.drain()  # the body's own failure (too large, cut off) is raised
            except BaseException:
                body.discard()
                raise
            if body.file is not None:
                try:
                    await body.file.sync()
                except OSError as exc:
                    body.discard()
                    return Written(error=_file_error(exc), kept=self._dropped(stat, owner, exc))
            if body.file is None or body.fell_back:  # the data disk filled up under the body
                error = _file_error(body.file_error or OSError(errno.ENOSPC, "No space left"))
                kept = await self._place(storage, backend_id, stat, owner, body, error.message)
                return Written(error=error, kept=self._counted(kept))
            staged = body.file
            try:
                written = await storage.commit(
                    backend_id, staged.path, expected_version=expected_version
                )
            except WopiError as exc:
                kept = await self._place(storage, backend_id, stat, owner, body, exc.message)
                return Written(error=exc, kept=self._counted(kept))
            except BaseException:
                body.discard()
                raise
            staged.close()  # renamed into place
            return Written(stat=written)
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
            kept = await self._place(storage, backend_id, stat, owner, body, exc.message)
            return Written(error=exc, kept=self._counted(kept))
        except BaseException:
            await body.aclose()
            raise
        try:
            await body.drain()
        finally:
            await body.aclose()
        return Written(stat=written)

    def _dropped(self, stat: FileStat, owner: Owner, exc: OSError) -> KeptCopy:
        what = f"save of {stat.name} ({stat.file_id}) by {owner.label}"
        self.kept.dropped(what, "disk_full", exc.strerror or str(exc))
        return KeptCopy("dropped", "disk_full")

    async def keep_previous(
        self, storage: Storage, backend_id: str, stat: FileStat, owner: Owner
    ) -> KeptCopy:
        """Copy the current content to the recovery folder before a suspicious overwrite;
        counted against ``owner``'s quota and indexed like every kept copy."""
        what = f"previous content of {stat.name} ({stat.file_id})"
        file = await self._spool()
        if file is None:
            self.kept.dropped(what, "disk_full", "no room for the previous content")
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
        accepted, refused = await self._accepted(storage, stat, owner, body, what, "empty save")
        if refused:
            return KeptCopy("dropped", refused)
        name = conflict_name(stat.name, f"previous version, before {owner.label}", self._clock())
        target = await self._to_recovery(body, name)
        if target is None:
            return KeptCopy("dropped", "disk_full")
        self._index(stat, owner, accepted, body.size, "recovery", str(target), name=name)
        log.warning(
            "empty save over %s (%s) by %s: previous content kept in the recovery folder as %s",
            stat.name,
            stat.file_id,
            owner.label,
            target,
        )
        return self._counted(KeptCopy("recovery", target.name, path=target))

    # -- what was kept, for its user ---------------------------------------------------------

    def notices(self, identity: str, user_id: str) -> list[KeptRow]:
        """The copies of this file kept for this user that they were not told about yet; they
        count as told from now on."""
        rows = self.kept.index.unnotified(identity, user_id)
        if rows:
            self.kept.index.mark_notified([row.id for row in rows])
        return rows

    def of_user(self, user_id: str) -> list[KeptRow]:
        return self.kept.index.of_user(user_id)

    # -- where a refused body goes ----------------------------------------------------------

    def _index(
        self,
        stat: FileStat,
        owner: Owner,
        digest: str,
        size: int,
        place: str,
        location: str,
        version: str = "",
        *,
        name: str,
    ) -> None:
        self.kept.index.add(
            stat.identity,
            owner.user_id,
            digest,
            size,
            place,
            location,
            version,
            name=name,
            file_name=stat.name,
        )

    async def _accepted(
        self, storage: Storage, stat: FileStat, owner: Owner, body: SaveBody, what: str, reason: str
    ) -> tuple[str, str]:
        """``(digest, "")`` when the content may be kept; ``("", why)`` (logged, discarded) when
        it may not: a duplicate, over a quota, or its durable copy failed (``disk_full``)."""
        file = body.file
        if file is None:
            why = body.file_error.strerror if body.file_error else "no room"
            self.kept.dropped(what, "disk_full", f"could not land ({reason}); {why}")
            return "", "disk_full"
        try:
            await file.sync()
            digest = await file.in_thread(_sha256)
        except OSError as exc:
            body.discard()
            self.kept.dropped(what, "disk_full", f"could not land ({reason}); {exc.strerror}")
            return "", "disk_full"
        refusal = await self.kept.refusal(storage, stat, owner.user_id, digest, file.size)
        if refusal is not None:
            body.discard()
            self.kept.dropped(what, refusal[0], f"could not land ({reason}); {refusal[1]}")
            return "", refusal[0]
        return digest, ""

    async def _place(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        owner: Owner,
        body: SaveBody,
        reason: str,
    ) -> KeptCopy:
        what = f"save of {stat.name} ({stat.file_id}) by {owner.label}"
        digest, refused = await self._accepted(storage, stat, owner, body, what, reason)
        if refused:
            return KeptCopy("dropped", refused)
        file = body.file
        assert file is not None
        name = conflict_name(stat.name, owner.label, self._clock())
        try:
            if file.path.parent != self.recovery_dir:
                copy = await storage.adopt(backend_id, name, file.path)
                file.close()
            else:
                copy = await storage.create(backend_id, name, read_chunks(file.path))
                body.discard()
        except (WopiError, OSError) as exc:
            why = "one already exists this minute" if isinstance(exc, FileExists) else str(exc)
            if body.file is None:  # read back and created, yet refused: it is gone
                self.kept.dropped(what, "disk_full", f"could not land ({reason}); {why}")
                return KeptCopy("dropped", "disk_full")
            target = await self._to_recovery(body, name)
            if target is None:
                return KeptCopy("dropped", "disk_full")
            self._index(stat, owner, digest, body.size, "recovery", str(target), name=name)
            log.warning(
                "save of %s (%s) could not land (%s) and no conflict copy was made beside it "
                "(%s): kept in the recovery folder as %s",
                stat.name,
                stat.file_id,
                reason,
                why,
                target,
            )
            return KeptCopy("recovery", target.name, path=target, digest=digest)
        location = f"{storage.name}:{copy.file_id}"
        self._index(
            stat, owner, digest, body.size, "storage", location, copy.version, name=copy.name
        )
        log.warning(
            "save of %s (%s) could not land (%s): kept as conflict copy %r in the same folder",
            stat.name,
            stat.file_id,
            reason,
            copy.name,
        )
        return KeptCopy("storage", copy.name, stat=copy, digest=digest)

    async def _to_recovery(self, body: SaveBody, name: str) -> Path | None:
        """Move the body's durable file into the recovery folder under a dated name; ``None``
        (dropped, logged) when the state folder has no room for it."""
        file = body.file
        assert file is not None
        stamp = self._clock().strftime("%Y%m%dT%H%M%S")
        target = self.recovery_dir / f"{stamp}-{secrets.token_hex(3)} {safe(name, 200)}"
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


#: Where saves that cannot land are kept (conflict copies, recovery folder), on the app.
CONFLICTS: web.AppKey[ConflictKeeper] = web.AppKey("conflicts", ConflictKeeper)
