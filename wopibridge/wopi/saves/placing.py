"""Where a body that will not land goes: a conflict copy beside its file, else the recovery
folder, or nowhere (logged and counted) when it may not be kept.

:class:`Placer` is the keeper's hand: it checks a durable body against the bounds
(:meth:`Placer.accepted`: once per content, within the user's and everyone's quota), puts it
beside the file (``adopt`` of a staged file, or ``create`` from a spool) or moves it into the
recovery folder, indexes it and counts it. The log line names where the content went.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from wopibridge.errors import FileExists, WopiError
from wopibridge.instruments import Instruments
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.tempfiles import TempFile, read_chunks
from wopibridge.wopi.saves.body import SaveBody
from wopibridge.wopi.saves.naming import Owner, conflict_name, safe
from wopibridge.wopi.saves.quota import KeptCopies

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


class Placer:
    """Places kept bodies for one application (``recovery_dir`` under the state folder)."""

    def __init__(
        self,
        recovery_dir: Path,
        kept: KeptCopies,
        clock: Callable[[], datetime],
        instruments: Instruments | None,
    ) -> None:
        self.recovery_dir = recovery_dir
        self.kept = kept
        self.clock = clock
        self._instruments = instruments

    def counted(self, kept: KeptCopy) -> KeptCopy:
        if self._instruments is not None and kept.where != "dropped":
            self._instruments.conflict_copies.labels(kept.where).inc()
        return kept

    def folder(self) -> Path:
        self.recovery_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.recovery_dir

    async def spool(self) -> TempFile | None:
        """A temporary file in the recovery folder for a body streaming to a remote storage;
        ``None`` (logged) when the state folder cannot take it: the save goes on unguarded."""
        try:
            return await TempFile.create(await asyncio.to_thread(self.folder))
        except OSError as exc:
            log.warning("no copy of this save can be kept in %s: %s", self.recovery_dir, exc)
            return None

    def index(
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

    async def accepted(
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

    async def place(
        self,
        storage: Storage,
        backend_id: str,
        stat: FileStat,
        owner: Owner,
        body: SaveBody,
        reason: str,
    ) -> KeptCopy:
        what = f"save of {stat.name} ({stat.file_id}) by {owner.label}"
        digest, refused = await self.accepted(storage, stat, owner, body, what, reason)
        if refused:
            return KeptCopy("dropped", refused)
        file = body.file
        assert file is not None
        name = conflict_name(stat.name, owner.label, self.clock())
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
            target = await self.to_recovery(body, name)
            if target is None:
                return KeptCopy("dropped", "disk_full")
            self.index(stat, owner, digest, body.size, "recovery", str(target), name=name)
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
        self.index(
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

    async def to_recovery(self, body: SaveBody, name: str) -> Path | None:
        """Move the body's durable file into the recovery folder under a dated name; ``None``
        (dropped, logged) when the state folder has no room for it."""
        file = body.file
        assert file is not None
        stamp = self.clock().strftime("%Y%m%dT%H%M%S")
        target = self.recovery_dir / f"{stamp}-{secrets.token_hex(3)} {safe(name, 200)}"
        try:
            await file.sync()
            await asyncio.to_thread(self.folder)
            await asyncio.to_thread(_durable_move, file.path, target)
        except OSError as exc:
            body.discard()
            self.kept.dropped(name, "disk_full", f"the recovery folder could not take it: {exc}")
            return None
        file.close()
        return target
