"""A storage that times each call and traces it as a child span of the request.

The storage factory wraps every configured storage in it (``build_registry``), so local, WebDAV
and CS3 are measured alike and none of them knows about metrics. A view acting with a user's
credential, and a storage's own lock store, are wrapped too.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path

from prometheus_client import Histogram

from wopibridge.errors import NotFound
from wopibridge.instruments import Instruments, Timed
from wopibridge.locks.base import LockStore
from wopibridge.locks.instrumented import InstrumentedLockStore
from wopibridge.storage.base import Capabilities, FileContent, FileStat, ReportsLocks, Storage
from wopibridge.storage.versions import Versioned, VersionInfo

CALLS = (
    "resolve",
    "stat",
    "open_read",
    "write",
    "create",
    "create_in",
    "commit",
    "adopt",
    "find_sibling",
    "rename",
    "delete",
    "get_meta",
    "set_meta",
    "check",
    "list_versions",
    "open_version",
    "restore_version",
)


class VersionCounters:
    """A storage's versions kept and dropped, on the app's metrics."""

    def __init__(self, instruments: Instruments) -> None:
        self._kept = instruments.versions_kept
        self._dropped = instruments.versions_dropped

    def kept(self) -> None:
        self._kept.inc()

    def dropped(self, reason: str, count: int) -> None:
        self._dropped.labels(reason).inc(count)


class InstrumentedStorage:
    """``inner`` with every call observed on ``wopibridge_storage_duration_seconds``."""

    def __init__(
        self,
        inner: Storage,
        instruments: Instruments,
        timers: dict[str, Histogram] | None = None,
    ) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.capabilities: Capabilities = inner.capabilities
        self._instruments = instruments
        self._timers = timers or {
            call: instruments.storage_seconds.labels(inner.name, call) for call in CALLS
        }
        self._attributes = {"wopibridge.storage": inner.name}
        #: The wrapped lock store per fallback store: every WOPI request asks for one, and
        #: the fallback (the app's store) is the same object each time.
        self._lock_stores: tuple[LockStore, LockStore, LockStore] | None = None

    def _measure(self, call: str) -> Timed:
        return self._instruments.measure(self._timers[call], f"storage.{call}", self._attributes)

    def with_credential(self, credential: str | None) -> Storage:
        view = self.inner.with_credential(credential)
        if view is self.inner:
            return self
        return InstrumentedStorage(view, self._instruments, self._timers)

    def lock_store(self, fallback: LockStore) -> LockStore:
        own = self.inner.lock_store(fallback)
        if own is fallback:
            return fallback
        known = self._lock_stores
        if known is not None and known[0] is fallback and known[1] is own:
            return known[2]
        wrapped = InstrumentedLockStore(own, self._instruments)
        self._lock_stores = (fallback, own, wrapped)
        return wrapped

    def lock_mode(self) -> str:
        """The inner storage's, ``""`` when it holds no locks at the owner."""
        return self.inner.lock_mode() if isinstance(self.inner, ReportsLocks) else ""

    async def start(self) -> None:
        await self.inner.start()

    async def resolve(self, ref: str) -> FileStat:
        with self._measure("resolve"):
            return await self.inner.resolve(ref)

    async def stat(self, file_id: str) -> FileStat:
        with self._measure("stat"):
            return await self.inner.stat(file_id)

    async def open_read(self, file_id: str) -> FileContent:
        """Times the opening only: the body streams to the client afterwards."""
        with self._measure("open_read"):
            return await self.inner.open_read(file_id)

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        with self._measure("write"):
            return await self.inner.write(file_id, chunks, expected_version=expected_version)

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        with self._measure("create"):
            return await self.inner.create(sibling_of, name, chunks, overwrite=overwrite)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        with self._measure("create_in"):
            return await self.inner.create_in(folder, name, chunks)

    async def staging_folder(self, file_id: str) -> Path | None:
        return await self.inner.staging_folder(file_id)

    async def commit(
        self, file_id: str, staged: Path, *, expected_version: str | None = None
    ) -> FileStat:
        with self._measure("commit"):
            return await self.inner.commit(file_id, staged, expected_version=expected_version)

    async def adopt(self, sibling_of: str, name: str, staged: Path) -> FileStat:
        with self._measure("adopt"):
            return await self.inner.adopt(sibling_of, name, staged)

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        with self._measure("find_sibling"):
            return await self.inner.find_sibling(file_id, name)

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        with self._measure("rename"):
            return await self.inner.rename(file_id, new_name)

    async def delete(self, file_id: str) -> None:
        with self._measure("delete"):
            await self.inner.delete(file_id)

    async def get_meta(self, file_id: str, key: str) -> str | None:
        with self._measure("get_meta"):
            return await self.inner.get_meta(file_id, key)

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        with self._measure("set_meta"):
            await self.inner.set_meta(file_id, key, value)

    async def check(self) -> None:
        with self._measure("check"):
            await self.inner.check()

    def _versioned(self) -> Versioned:
        if not self.capabilities.versions or not isinstance(self.inner, Versioned):
            raise NotFound("This storage keeps no versions")
        return self.inner

    async def list_versions(self, file_id: str) -> list[VersionInfo]:
        with self._measure("list_versions"):
            return await self._versioned().list_versions(file_id)

    async def open_version(self, file_id: str, version_id: str) -> FileContent:
        with self._measure("open_version"):
            return await self._versioned().open_version(file_id, version_id)

    async def restore_version(
        self, file_id: str, version_id: str, *, expected_version: str | None = None
    ) -> FileStat:
        with self._measure("restore_version"):
            return await self._versioned().restore_version(
                file_id, version_id, expected_version=expected_version
            )

    async def lock_file_ids(self) -> list[str]:
        return await self.inner.lock_file_ids()

    async def close(self) -> None:
        await self.inner.close()
