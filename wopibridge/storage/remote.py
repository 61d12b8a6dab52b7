"""What a storage not on this machine (WebDAV, CS3) does with a body staged on local disk.

A remote storage cannot rename a local file into place (``local_staging`` is off), so the WOPI
layer never stages beside its files; when it hands over a staged file anyway (a spool kept
in the recovery folder), the bytes are streamed up as an ordinary write or create.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol

from wopibridge.storage.base import FileStat
from wopibridge.storage.tempfiles import read_chunks


class _Writes(Protocol):
    async def write(
        self, file_id: str, chunks: AsyncIterable[bytes], *, expected_version: str | None = None
    ) -> FileStat: ...

    async def create(
        self, sibling_of: str, name: str, chunks: AsyncIterable[bytes], *, overwrite: bool = False
    ) -> FileStat: ...


class StreamsStagedFiles:
    """``staging_folder``, ``commit`` and ``adopt`` of the Storage contract, by streaming."""

    async def staging_folder(self, file_id: str) -> Path | None:
        return None

    async def commit(
        self: _Writes, file_id: str, staged: Path, *, expected_version: str | None = None
    ) -> FileStat:
        return await self.write(file_id, read_chunks(staged), expected_version=expected_version)

    async def adopt(self: _Writes, sibling_of: str, name: str, staged: Path) -> FileStat:
        return await self.create(sibling_of, name, read_chunks(staged))
