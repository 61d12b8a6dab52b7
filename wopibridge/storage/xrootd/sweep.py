"""What an instance killed mid-save leaves beside files, removed later by another one.

An upload in progress is a ``.~wb-<hex>.tmp`` file and a guard a ``.~wb-guard-<hash>`` file
(:mod:`.guard`); both are removed by the request that made them, unless its instance died.
Walking a remote server at start-up to find them would cost more than they do, so each
instance looks once per folder it saves into (one listing, at most :data:`MAX_FOLDERS`
folders remembered) and removes those old enough that no live request can own them.
"""

from __future__ import annotations

import contextlib
import logging
import time

from wopibridge.errors import WopiError
from wopibridge.storage.xrootd.client import XrdClient
from wopibridge.storage.xrootd.guard import RESERVED_PREFIX, STALE_SECONDS

log = logging.getLogger("wopibridge.storage.xrootd")

#: an upload older than this has no writer any more (a save streams for minutes, not hours)
UPLOAD_STALE_SECONDS = 6 * 3600.0
MAX_FOLDERS = 10_000


class LeftoverSweep:
    """Removes stale uploads and guards, once per folder and process."""

    def __init__(self, client: XrdClient) -> None:
        self._client = client
        self._seen: set[str] = set()

    async def folder(self, folder: str) -> int:
        """Sweep the server folder ``folder`` if not done yet; how many files went."""
        if folder in self._seen:
            return 0
        if len(self._seen) >= MAX_FOLDERS:
            self._seen.clear()
        self._seen.add(folder)
        flags = self._client.flags.DirListFlags.STAT
        answer = await self._client.fs("dirlist", folder, flags)
        if not answer.ok or answer.response is None:
            return 0
        now = time.time()
        removed = 0
        for entry in answer.response:
            name = str(entry.name)
            if not name.startswith(RESERVED_PREFIX) or entry.statinfo is None:
                continue
            age = now - float(entry.statinfo.modtime)
            stale = STALE_SECONDS if name.startswith(f"{RESERVED_PREFIX}guard-") else None
            if name.endswith(".tmp"):
                stale = UPLOAD_STALE_SECONDS
            if stale is None or age < stale:
                continue
            with contextlib.suppress(WopiError):
                if (await self._client.fs("rm", f"{folder.rstrip('/')}/{name}")).ok:
                    removed += 1
        if removed:
            log.info(
                "storage %s: removed %d leftovers of stopped saves", self._client.name, removed
            )
        return removed
