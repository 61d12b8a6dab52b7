"""Local POSIX storage: a folder on this machine (or any mounted filesystem).

Safety rules this backend keeps:

* Only files under ``root``: references with ``..``, absolute paths, or symlinks that resolve
  outside the root are refused.
* Writes are atomic: the new bytes go to a temporary file in the same folder, are fsynced, and
  replace the old file with one ``rename``; the folder is fsynced after. A crash at any moment
  leaves either the old or the new content, never a mix. The temporary file is locked while its
  writer lives (:mod:`..tempfiles`); those a crash left are swept at start, those another live
  instance is writing are not.
* A PutFile body is written once (``local_staging``): the WOPI layer streams it into a
  temporary file of :meth:`LocalStorage.staging_folder` and :meth:`LocalStorage.commit` renames
  it over the file, or :meth:`LocalStorage.adopt` links it beside the file as a conflict copy.
* The modification time of every write is set to strictly more than the previous one (in whole
  microseconds), so ``Version`` and ``LastModifiedTime`` change on every save even when two saves
  land in the same clock tick.
* Reads hand the kernel an open descriptor (``/proc/self/fd``), so GetFile uses sendfile and
  serves exactly the file state that was stat'ed, even if a save replaces the file meanwhile.

Identity: a file's id is kept on the file (:mod:`..xattrid`) and copied onto the replacement of
every save, so every instance over the folder reads the same id and takes the same lock, a
``mv`` keeps it, and a symlink or hard link inside the root shows it too. The id map
(:mod:`..idmap`) routes an id to its current path for every instance; the id on the file is
checked before a path from the map is used. Where the filesystem keeps no user attributes the
map alone names files, by path, as before. A hard-linked file (more than one name) is view
only: an atomic replace would give the edited name a new inode and silently split it from
its other names, and writing in place would give up atomic saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from wopibridge.errors import Unavailable, WopiError
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import Capabilities
from wopibridge.storage.idmap import IdMap
from wopibridge.storage.local.owner import LocalLockStore, LocalOwnerLocks, SiteIds
from wopibridge.storage.local.reading import LocalReading
from wopibridge.storage.local.records import HIDDEN
from wopibridge.storage.local.versions import LocalVersions

log = logging.getLogger("wopibridge.storage.local")


class LocalStorage(LocalVersions, LocalReading):
    """Files under one folder. ``name`` is the storage's name in WOPI file ids.

    ``ids`` is the id map shared by every instance serving the folder (an SQLite index in
    ``state_dir`` when none is given); ``xattrs`` overrides the probe of whether the folder's
    filesystem keeps user extended attributes. ``holder`` is what a lock record says of this
    instance (its public URL); ``site`` fixes this site's id (with in-process locks, where no
    shared store can keep it); ``owner_locks`` ``False`` keeps WOPI locks in the site's store
    only (for measuring what holding them at the folder costs).
    """

    capabilities = Capabilities(local_staging=True, own_locks=True)

    def __init__(
        self,
        name: str,
        root: Path,
        state_dir: Path,
        ids: IdMap | None = None,
        *,
        xattrs: bool | None = None,
        holder: str = "",
        site: str | None = None,
        owner_locks: bool = True,
    ) -> None:
        super().__init__(name, root, state_dir, ids, xattrs=xattrs)
        self._sites = SiteIds(site)
        self._owner = LocalOwnerLocks(self._records, holder) if owner_locks else None
        self._lock_stores: dict[int, tuple[LockStore, LocalLockStore]] = {}

    # -- metadata and lifecycle ---------------------------------------------------------

    async def get_meta(self, file_id: str, key: str) -> str | None:
        return await self._ids.get_meta(file_id, key)

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        await self._find(file_id)
        await self._ids.set_meta(file_id, key, value)

    async def check(self) -> None:
        writable = await asyncio.to_thread(_writable_dir, self.root)
        if not writable:
            raise Unavailable(
                f"storage {self.name!r}: its folder is not writable", detail=str(self.root)
            )
        await self._ids.ping()

    def with_credential(self, credential: str | None) -> LocalStorage:
        """The local folder is reached with this process's own rights, never a user's."""
        return self

    def lock_store(self, fallback: LockStore) -> LockStore:
        """The site's store, with every WOPI lock also held in the file's record beside the
        data, where instances of other sites (with their own Redis) see it too."""
        if self._owner is None:
            return fallback
        known = self._lock_stores.get(id(fallback))
        if known is not None and known[0] is fallback:
            return known[1]
        store = LocalLockStore(fallback, self._owner, self._sites)
        self._lock_stores[id(fallback)] = (fallback, store)
        return store

    async def start(self) -> None:
        await self.sweep_temporaries()
        log.info("storage %s: local folder %s", self.name, self.root)
        if not self.xattrs:
            log.warning(
                "storage %s: the filesystem of %s keeps no user extended attributes (or the "
                "folder cannot be written), so file ids are kept by path in the id map only: "
                "a file renamed or moved outside "
                "wopibridge gets a new id (its open sessions end and its lock is lost), and a "
                "hard link to a file gets an id and a lock of its own",
                self.name,
                self.root,
            )

    async def lock_file_ids(self) -> list[str]:
        relatives = await asyncio.to_thread(_lock_files, self.root)
        ids = []
        for relative in relatives:
            with contextlib.suppress(WopiError):
                ids.append(await self._identify(*self._canonical(relative)))
        return ids

    async def close(self) -> None:
        if self.version_limits is not None:
            await self.finish_pruning()
        await self._ids.close()


def _writable_dir(path: Path) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


def _lock_files(root: Path) -> list[str]:
    """Paths, relative to ``root``, of every ``.~lock.<name>#`` file under it."""
    found = []
    for folder, dirs, files in os.walk(root):
        if folder == str(root) and HIDDEN in dirs:
            dirs.remove(HIDDEN)  # wopibridge's own folder holds no documents
        for name in files:
            if name.startswith(".~lock.") and name.endswith("#"):
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return found
