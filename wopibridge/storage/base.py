"""The storage contract every backend (local, WebDAV, CS3) implements.

WOPI handlers only ever talk to a :class:`Storage`; they never see paths, URLs or gRPC. A
backend raises :mod:`wopibridge.errors` exceptions (``NotFound``, ``VersionConflict``,
``FileExists``, ``Locked``, ``Forbidden``, ``Unavailable``) so the HTTP mapping stays in one place.

Ids: a backend's ``file_id`` is URL-safe, opaque and stable across saves and renames. The WOPI
file id the editor sees is built from the storage name and that id by
:mod:`wopibridge.storage.fileids`.
``identity`` is the file's identity at its owning site, used as the lock key, so two bridges that
reach the same file through different routes share one lock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wopibridge.storage.tempfiles import read_chunks

if TYPE_CHECKING:
    from wopibridge.locks.base import LockStore

CHUNK_SIZE = 256 * 1024


def canonical_time(mtime_ns: int) -> str:
    """The one ISO-8601 UTC form of a modification time, with microseconds.

    Editors compare ``LastModifiedTime`` as a string, so every response that carries it must
    be produced by this function from the same ``mtime_ns``.
    """
    seconds, nanos = divmod(mtime_ns, 1_000_000_000)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{nanos // 1000:06d}Z"
    )


@dataclass(frozen=True, slots=True)
class FileStat:
    """What a storage knows of one file at one moment."""

    file_id: str
    name: str
    size: int
    mtime_ns: int
    version: str
    identity: str
    owner_id: str = ""
    folder: str = ""
    #: why the file may only be viewed, whatever the token allows (a hard-linked local file)
    read_only_reason: str = ""

    @property
    def last_modified(self) -> str:
        return canonical_time(self.mtime_ns)

    @property
    def extension(self) -> str:
        dot = self.name.rfind(".")
        return self.name[dot:] if dot > 0 else ""


@dataclass(slots=True)
class FileContent:
    """An open read of one file state.

    ``local_path`` is set when the bytes can be sent by the kernel (sendfile); otherwise
    ``chunks`` streams them. ``close`` must be awaited once the response is done.
    """

    stat: FileStat
    chunks: AsyncIterator[bytes] | None = None
    local_path: Path | None = None

    def stream(self) -> AsyncIterator[bytes]:
        """The bytes, whichever way the backend hands them: its ``chunks``, or the file at
        ``local_path`` read off the event loop (for callers that are not an HTTP response)."""
        if self.chunks is not None:
            return self.chunks
        assert self.local_path is not None
        return read_chunks(self.local_path)

    def changed(self) -> bool:
        """Whether the bytes at ``local_path`` changed since the file was opened.

        A file on this machine may be rewritten in place by someone else (a sync client, a
        shell) while the kernel sends it: the answer then promised ``stat.size`` bytes of a
        state that no longer exists. Backends that stream their own ``chunks`` check sizes as
        they go (:mod:`.httpbody`) and answer ``False``.
        """
        return False

    async def close(self) -> None:  # pragma: no cover - overridden by backends that hold handles
        return None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do beyond the contract, declared by it and read where the app is
    wired, so the request path never asks a storage what it is.

    - ``user_credential``: it can act with a user's own credential (Reva's token, a WebDAV
      bearer): the open endpoints seal the credential into the access token, and every request
      works on :meth:`Storage.with_credential`'s view.
    - ``own_locks``: it keeps WOPI locks itself (CS3 gateway locks): :meth:`Storage.lock_store`
      gives them.
    - ``shared_by_sites``: its files are reached by other sites too, so WOPI locks record this
      site as holder (:class:`wopibridge.locks.sitelocks.SiteLockStore`).
    - ``reva_gateway``: it resolves Reva storage ids, which openinapp's ``endpoint`` may name.
    - ``desktop_lock_files``: desktop lock files (``.~lock.<name>#``) can be kept beside files.
    - ``local_staging``: its files live on this machine, so a save's body is written once, into
      :meth:`Storage.staging_folder`, and moved into place (:meth:`Storage.commit`) or beside
      the file as a conflict copy (:meth:`Storage.adopt`) with one rename.
    - ``versions``: it keeps previous contents and implements
      :class:`wopibridge.storage.versions.Versioned` (list, open, restore).
    """

    user_credential: bool = False
    own_locks: bool = False
    shared_by_sites: bool = False
    reva_gateway: bool = False
    desktop_lock_files: bool = True
    local_staging: bool = False
    versions: bool = False


@runtime_checkable
class ReportsLocks(Protocol):
    """A storage that can hold WOPI locks at the owner says how it does now (for ``/ready``
    and the status page): the owner's own locks, or the site's store only, and why."""

    def lock_mode(self) -> str: ...


@runtime_checkable
class Storage(Protocol):
    """A place files live. All methods are safe to call concurrently."""

    name: str
    capabilities: Capabilities

    def with_credential(self, credential: str | None) -> Storage:
        """A view acting with the user's credential (``self`` when the backend takes none)."""

    def lock_store(self, fallback: LockStore) -> LockStore:
        """The store of WOPI locks on this storage's files: its own, or ``fallback``."""

    async def start(self) -> None:
        """Called once when the app starts: tidy what a crash left, log where files live."""

    async def resolve(self, ref: str) -> FileStat:
        """Find a file by a backend id or by a path relative to the storage root."""

    async def stat(self, file_id: str) -> FileStat: ...

    async def open_read(self, file_id: str) -> FileContent: ...

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        """Replace the content atomically: the old bytes stay intact until the new ones are
        complete and durable. With ``expected_version``, raise ``VersionConflict`` instead of
        writing when the file changed."""

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        """Create ``name`` in the folder of ``sibling_of``. Without ``overwrite``, raise
        ``FileExists`` when the name is taken (checked atomically with the create)."""

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        """Create ``name`` in ``folder`` (a path from the storage root, ``""`` for the root),
        never overwriting: ``FileExists`` when the name is taken (checked atomically with the
        create), ``NotFound`` when the folder does not exist."""

    async def staging_folder(self, file_id: str) -> Path | None:
        """A folder on this machine from which :meth:`commit` and :meth:`adopt` move a file
        into place with a rename (``capabilities.local_staging``), else ``None``."""

    async def commit(
        self, file_id: str, staged: Path, *, expected_version: str | None = None
    ) -> FileStat:
        """Replace the content with the complete, durable file ``staged``, as :meth:`write`
        does. On failure ``staged`` is left where it is: the caller owns it."""

    async def adopt(self, sibling_of: str, name: str, staged: Path) -> FileStat:
        """Create ``name`` beside ``sibling_of`` from the file ``staged`` (``FileExists`` when
        the name is taken). On failure ``staged`` is left where it is."""

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        """The file named ``name`` in the same folder, if any."""

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        """Rename in place; the file id survives. ``FileExists`` when the name is taken."""

    async def delete(self, file_id: str) -> None: ...

    async def get_meta(self, file_id: str, key: str) -> str | None: ...

    async def set_meta(self, file_id: str, key: str, value: str) -> None: ...

    async def check(self) -> None:
        """Raise ``Unavailable`` when the storage cannot serve requests (readiness)."""

    async def lock_file_ids(self) -> list[str]:
        """Ids of the LibreOffice lock files (``.~lock.<name>#``) the storage can list cheaply,
        for the start-up sweep of lock files no WOPI lock backs. A remote storage answers none:
        walking it over the network at every start would cost more than a stale lock file."""

    async def close(self) -> None: ...
