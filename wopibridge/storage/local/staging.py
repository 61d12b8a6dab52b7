"""Temporary files of the local storage: a save's bytes are streamed into a locked temporary
file beside the file they replace (:mod:`wopibridge.storage.tempfiles`), and those a crash
left behind are swept at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from pathlib import Path

from wopibridge.storage.local.identity import LocalIdentity
from wopibridge.storage.local.tree import os_error
from wopibridge.storage.tempfiles import WRITE_BATCH, TempFile, sweep


class LocalStaging(LocalIdentity):
    """The staging folder of a file and the temporary files written there."""

    async def _write_temp(self, folder: Path, chunks: AsyncIterable[bytes], mode: int) -> TempFile:
        """Stream ``chunks`` into a fresh locked temporary file in ``folder``, fsynced. It stays
        open, and so locked, until the caller has renamed it into place: an instance starting
        meanwhile sweeps only temporaries nobody holds."""
        try:
            temp = await TempFile.create(folder)
        except OSError as exc:
            raise os_error(exc, "write") from None
        try:
            batch: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                batch.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_BATCH:
                    await temp.write(batch)
                    batch, pending = [], 0
            if batch:
                await temp.write(batch)
            await temp.sync(mode)
        except BaseException as exc:
            temp.discard()
            if isinstance(exc, OSError):
                raise os_error(exc, "write") from None
            raise
        return temp

    async def staging_folder(self, file_id: str) -> Path:
        path, _ = await self._where(file_id)
        return path.parent

    async def sweep_temporaries(self) -> int:
        """Remove the temporary files a crash left behind (whose writer no longer holds their
        lock); returns how many."""
        removed, _ = await asyncio.to_thread(sweep, self.root)
        return removed
