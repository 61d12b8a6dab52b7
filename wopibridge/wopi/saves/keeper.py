"""Never lose a save: content that cannot land on its file is kept as a conflict copy.

:mod:`.entry` decides (with :mod:`.decide`) that a save is to be kept, or writes it and learns
here that the storage refused it; this module does the keeping. The content is written next to
the file as ``<name> (conflict <user> <YYYY-MM-DD HHMM> UTC).<ext>``; at most one such copy per
user, file and minute lands in the user's folder, anything more (or anything the storage
refuses) goes to the recovery folder on the server (:mod:`.placing` puts it there). The log
line names where the content went.

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
import logging
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from wopibridge.errors import InsufficientStorage, Unavailable, WopiError
from wopibridge.instruments import Instruments
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.tempfiles import TempFile, sweep
from wopibridge.wopi.saves.body import SaveBody
from wopibridge.wopi.saves.index import KeptIndex, KeptRow
from wopibridge.wopi.saves.naming import Owner, conflict_name
from wopibridge.wopi.saves.placing import KeptCopy, Placer
from wopibridge.wopi.saves.quota import KeepLimits, KeptCopies

log = logging.getLogger("wopibridge.conflicts")


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
    return Unavailable("The save could not be written", detail=str(exc))


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
        self.placer = Placer(recovery_dir, self.kept, self._clock, instruments)

    # -- start and upkeep -----------------------------------------------------------------

    async def start(self) -> None:
        """Remove the bodies a crash left half-received in the recovery folder (those whose
        writer is gone), and what has expired."""
        await asyncio.to_thread(self.placer.folder)
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
            return await self.placer.spool()
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
            file = await self.placer.spool()
        body = SaveBody(chunks, file, fallback=self.placer.spool)
        try:
            await body.drain()
        except BaseException:
            body.discard()
            raise
        return self.placer.counted(
            await self.placer.place(storage, backend_id, stat, owner, body, reason)
        )

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
            body = SaveBody(chunks, file, fallback=self.placer.spool)
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
                kept = await self.placer.place(
                    storage, backend_id, stat, owner, body, error.message
                )
                return Written(error=error, kept=self.placer.counted(kept))
            staged = body.file
            try:
                written = await storage.commit(
                    backend_id, staged.path, expected_version=expected_version
                )
            except WopiError as exc:
                kept = await self.placer.place(storage, backend_id, stat, owner, body, exc.message)
                return Written(error=exc, kept=self.placer.counted(kept))
            except BaseException:
                body.discard()
                raise
            staged.close()  # renamed into place
            return Written(stat=written)
        body = SaveBody(chunks, await self.placer.spool())
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
            kept = await self.placer.place(storage, backend_id, stat, owner, body, exc.message)
            return Written(error=exc, kept=self.placer.counted(kept))
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
        file = await self.placer.spool()
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
        accepted, refused = await self.placer.accepted(
            storage, stat, owner, body, what, "empty save"
        )
        if refused:
            return KeptCopy("dropped", refused)
        name = conflict_name(stat.name, f"previous version, before {owner.label}", self._clock())
        target = await self.placer.to_recovery(body, name)
        if target is None:
            return KeptCopy("dropped", "disk_full")
        self.placer.index(stat, owner, accepted, body.size, "recovery", str(target), name=name)
        log.warning(
            "empty save over %s (%s) by %s: previous content kept in the recovery folder as %s",
            stat.name,
            stat.file_id,
            owner.label,
            target,
        )
        return self.placer.counted(KeptCopy("recovery", target.name, path=target))

    # -- what was kept, for its user ---------------------------------------------------------

    def notices(self, identity: str, user_id: str) -> list[KeptRow]:
        """The copies of this file kept for this user that they were not told about yet; they
        count as told from now on."""
        rows = self.kept.index.unnotified(identity, user_id)
        if rows:
            self.kept.index.mark_notified([row.id for row in rows])
        return rows

    async def of_user(self, user_id: str) -> list[KeptRow]:
        """The copies still kept for this user. A recovery copy someone removed by hand is
        forgotten here; a conflict copy beside its file is listed until it expires (its
        storage, with the user's credential, is not at hand to look)."""
        rows = self.kept.index.of_user(user_id)
        gone = await asyncio.to_thread(
            lambda: {r.id for r in rows if r.place == "recovery" and not Path(r.location).exists()}
        )
        for row_id in gone:
            self.kept.index.forget(row_id)
        return [row for row in rows if row.id not in gone]

    def close(self) -> None:
        self.kept.index.close()


#: Where saves that cannot land are kept (conflict copies, recovery folder), on the app.
CONFLICTS: web.AppKey[ConflictKeeper] = web.AppKey("conflicts", ConflictKeeper)
