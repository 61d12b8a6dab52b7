"""What the storages not on this machine (WebDAV, CS3) share.

- A body staged on local disk: a remote storage cannot rename a local file into place
  (``local_staging`` is off), so the WOPI layer never stages beside its files; when it hands
  over a staged file anyway (a spool kept in the recovery folder), the bytes are streamed up
  as an ordinary write or create.
- What an HTTP status of the storage means to a WOPI client (:func:`http_status_error`), so
  that both say the same thing for the same answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol

from wopibridge.errors import (
    Forbidden,
    InsufficientStorage,
    Locked,
    NotFound,
    VersionConflict,
    WopiError,
)
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


def http_status_error(storage: str, status: int, what: str) -> WopiError | None:
    """The WOPI error for the statuses every HTTP storage means the same by (404, 403, 412,
    423, 507); ``None`` for the others, which each storage reads its own way."""
    if status == 404:
        return NotFound("File not found")
    if status == 403:
        return Forbidden(f"The storage {storage} refused to {what} the file")
    if status == 412:
        return VersionConflict("The file changed on the storage")
    if status == 423:
        return Locked(f"The file is locked on the storage {storage}")
    if status == 507:
        return InsufficientStorage(f"The storage {storage} is full")
    return None
