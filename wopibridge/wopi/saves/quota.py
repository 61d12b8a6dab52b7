"""The bookkeeping of kept copies: each is kept once, within its quota and age.

:class:`~wopibridge.wopi.saves.keeper.ConflictKeeper` decides where a copy goes; this says
whether it may be kept at all (:meth:`KeptCopies.refusal`: the same content for the same file
and user is already kept, or a quota would be exceeded once what expired is gone), removes what
has aged (:meth:`KeptCopies.expire`), and reports every copy not kept or removed in the log and
through ``on_drop`` (the ``/metrics`` counter), with its reason.

Quotas are per user **id**: display names are neither unique nor stable. Every kept copy counts,
whatever made it (a refused save, the previous content before an empty save).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wopibridge.errors import NotFound, WopiError
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.tempfiles import is_temp_name
from wopibridge.wopi.saves.index import KeptIndex, KeptRow

log = logging.getLogger("wopibridge.conflicts")


@dataclass(frozen=True, slots=True)
class KeepLimits:
    """How much kept content is allowed: bytes per user, bytes in all, seconds of age."""

    max_bytes: int = 10 * 1024**3
    max_bytes_per_user: int = 1024**3
    max_age: float = 30 * 24 * 3600.0


class KeptCopies:
    def __init__(self, index: KeptIndex, recovery_dir: Path, limits: KeepLimits) -> None:
        self.index = index
        self.recovery_dir = recovery_dir
        self.limits = limits
        #: called with the reason whenever a refused save is not kept, or a kept copy removed
        self.on_drop: Callable[[str], None] = lambda reason: None

    def dropped(self, what: str, reason: str, detail: str) -> None:
        log.warning("kept copy dropped (%s): %s, %s", reason, what, detail)
        self.on_drop(reason)

    async def expire(self, storage: Storage | None = None) -> int:
        """Delete kept copies older than ``max_age``: in the recovery folder always, beside
        their file when ``storage`` (a view with the user's credential) is the one they are
        on and the copy is unchanged since it was made. Returns how many were removed."""
        cutoff = time.time() - self.limits.max_age
        removed = 0
        for row in self.index.older_than(cutoff):  # SQLite inline, like the file index
            if row.place == "recovery":
                await asyncio.to_thread(Path(row.location).unlink, True)
            elif storage is not None and row.location.startswith(f"{storage.name}:"):
                if not await self._remove_unchanged(storage, row):
                    self.index.forget(row.id)  # changed since: the user's file now
                    continue
            else:
                continue  # beside a file on a storage not at hand now: later
            self.index.forget(row.id)
            removed += 1
            self.dropped(row.location, "expired", f"older than {self.limits.max_age:.0f} s")
        known = {row.location for row in self.index.everything() if row.place == "recovery"}
        removed += await asyncio.to_thread(self._expire_unindexed, cutoff, known)
        return removed

    async def _remove_unchanged(self, storage: Storage, row: KeptRow) -> bool:
        file_id = row.location.partition(":")[2]
        try:
            stat = await storage.stat(file_id)
            if stat.version != row.version:
                return False
            await storage.delete(file_id)
        except NotFound:
            return True
        except WopiError as exc:
            log.info("expired conflict copy %s left in place: %s", row.location, exc.message)
            return False
        return True

    def _expire_unindexed(self, cutoff: float, known: set[str]) -> int:
        """Files in the recovery folder the index does not know (kept while it could not be
        written, or by an older version) expire by their age."""
        removed = 0
        try:
            entries = list(os.scandir(self.recovery_dir))
        except OSError:
            return 0
        for entry in entries:
            if is_temp_name(entry.name) or entry.path in known or not entry.is_file():
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
                    self.dropped(entry.path, "expired", "older than the limit")
            except OSError:
                continue
        return removed

    # -- the body -------------------------------------------------------------------------

    async def refusal(
        self, storage: Storage, stat: FileStat, user: str, digest: str, size: int
    ) -> tuple[str, str] | None:
        """Why this content is not to be kept (reason, detail), or ``None``: already kept for
        this file and user (``user`` is the user's id), or over a quota once the expired copies
        are gone."""
        for row in self.index.same_content(stat.identity, user, digest):
            if await self._still_there(storage, row):
                return "duplicate", f"the same content is already kept as {row.location}"
            self.index.forget(row.id)
        await self.expire(storage)
        mine = sum(row.size for row in await self._present(storage, self.index.of_user(user)))
        if mine + size > self.limits.max_bytes_per_user:
            return "quota", (
                f"the kept copies of user {user} would exceed "
                f"{self.limits.max_bytes_per_user} bytes"
            )
        everyone = sum(row.size for row in await self._present(storage, self.index.everything()))
        if everyone + size > self.limits.max_bytes:
            return "quota", f"the kept copies would exceed {self.limits.max_bytes} bytes"
        return None

    async def _present(self, storage: Storage, rows: list[KeptRow]) -> list[KeptRow]:
        """The rows whose copy still exists; the others are forgotten. Copies on another
        storage than ``storage`` cannot be checked here and count as present."""
        present = []
        for row in rows:
            if await self._still_there(storage, row):
                present.append(row)
            else:
                self.index.forget(row.id)
        return present

    async def _still_there(self, storage: Storage, row: KeptRow) -> bool:
        if row.place == "recovery":
            return await asyncio.to_thread(os.path.exists, row.location)
        name, _, file_id = row.location.partition(":")
        if name != storage.name:
            return True
        try:
            await storage.stat(file_id)
        except NotFound:
            return False
        except WopiError:
            return True
        return True
