"""The local folder itself: paths under the root, the stat of a file, the per-file mutex.

What every part of :class:`~wopibridge.storage.local.LocalStorage` shares (identity, reading,
staging and writing), and the one reading of an OS error as the WOPI error it means.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
from contextlib import AbstractAsyncContextManager
from pathlib import Path, PurePosixPath

from wopibridge.errors import (
    BadRequest,
    Forbidden,
    InsufficientStorage,
    NotFound,
    Unavailable,
    WopiError,
)
from wopibridge.storage import xattrid
from wopibridge.storage.base import FileStat
from wopibridge.storage.idmap import IdMap, SqliteIdMap
from wopibridge.storage.local.owner import SiteIds
from wopibridge.storage.local.records import HIDDEN, FileRecords, Record

#: ids of files that cannot carry their own (no write permission on them) start with this
PATH_BOUND = "~"
HARD_LINKED = (
    "The file has other names (hard links): it opens read-only, since saving would "
    "separate it from them"
)


def identity_of(file_id: str) -> str:
    """A local file's identity: its WOPI lock key, and the key of its record."""
    return f"local:{file_id}"


def os_error(exc: OSError, what: str) -> WopiError:
    """Map an OS error to the WOPI-facing error it means."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound("File not found")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Forbidden(f"The storage refused to {what} the file")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("The storage is full")
    if exc.errno == errno.ENAMETOOLONG:
        return BadRequest("The file name is too long")
    return Unavailable(f"The local storage could not {what} the file", detail=str(exc))


class LocalTree:
    """The folder, its id map and the state kept between calls (paths built, files seen),
    and the per-file records whose mutex orders every change of a file across instances; the
    parts of the local storage build on it."""

    def __init__(
        self,
        name: str,
        root: Path,
        state_dir: Path,
        ids: IdMap | None = None,
        *,
        xattrs: bool | None = None,
    ) -> None:
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._root_str = str(self.root)
        self._paths: dict[str, Path] = {}  # Path objects cost more to build than to keep
        # file id -> (path, inode, change time) of the file its last stat found: see stat()
        self._seen: dict[str, tuple[Path, int, int]] = {}
        self._ids: IdMap = (
            ids if ids is not None else SqliteIdMap(state_dir / f"{name}-files.sqlite3")
        )
        self.xattrs = xattrid.supported(self.root) if xattrs is None else xattrs
        self._records = FileRecords(self.root, _lock_error)
        self._sites = SiteIds()  # this site's id, once a lock store told it

    def _relative(self, ref: str) -> str:
        """Normalise a user-given path; refuse anything that could leave the root.

        Only ``/`` separates folders: ``\\``, ``:``, ``?`` and the like are ordinary
        characters of POSIX names (``back\\slash.txt``, ``12:30 notes.txt``) and files
        carrying them must open like any other.
        """
        if not ref or "\x00" in ref or ref.startswith("/"):
            raise BadRequest("Invalid file reference")
        parts = PurePosixPath(ref).parts
        if not parts:
            raise BadRequest("Invalid file reference")
        if any(part in ("..", ".") for part in parts):
            raise BadRequest("Invalid file reference: name the file without '.' or '..'")
        if parts[0] == HIDDEN:  # wopibridge's own records, never a document
            raise NotFound("File not found")
        return "/".join(parts)

    def _canonical(self, relative: str) -> tuple[str, Path]:
        """The one spelling of ``relative`` and its path: through a symlink inside the root,
        its target, so an alias shares the target's id and lock; a symlink resolving outside
        the root is refused.

        Each component below the root is ``lstat``-ed; only when one is a symlink is the whole
        path resolved. That keeps the common case to one or two system calls instead of
        ``realpath``'s walk from ``/``.
        """
        full = f"{self._root_str}/{relative}"
        current = self._root_str
        for part in relative.split("/"):
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                break  # missing: the caller's stat answers 404
            if statmod.S_ISLNK(mode):
                real = os.path.realpath(full)
                if not real.startswith(self._root_str + "/") or real.startswith(
                    f"{self._root_str}/{HIDDEN}/"
                ):
                    raise NotFound("File not found")
                full, relative = real, real[len(self._root_str) + 1 :]
                if relative.partition("/")[0] == HIDDEN:  # an alias of wopibridge's own files
                    raise NotFound("File not found")
                break
        path = self._paths.get(full)
        if path is None:
            if len(self._paths) >= 100_000:
                self._paths.clear()
            path = self._paths[full] = Path(full)
        return relative, path

    def _relative_of(self, path: Path) -> str:
        return str(path)[len(self._root_str) + 1 :]

    def _stat_path(self, file_id: str, path: Path) -> FileStat:
        return self._make_stat(file_id, path, self._os_stat(path))

    def _make_stat(self, file_id: str, path: Path, st: os.stat_result) -> FileStat:
        if not statmod.S_ISREG(st.st_mode):
            raise NotFound("File not found")
        parent, _, name = str(path).rpartition("/")
        folder = parent[len(self._root_str) + 1 :]
        return FileStat(
            file_id=file_id,
            name=name,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            version=f"{st.st_mtime_ns:x}.{st.st_ino:x}.{st.st_size:x}",
            identity=identity_of(file_id),
            owner_id=str(st.st_uid),
            folder=folder,
            read_only_reason=HARD_LINKED if st.st_nlink > 1 else "",
        )

    def _exclusive(self, file_id: str) -> AbstractAsyncContextManager[Record]:
        """The mutex of ``file_id`` across tasks, processes and hosts over the folder: every
        save, rename and delete of the file holds it from finding the file to changing it."""
        return self._records.exclusive(identity_of(file_id))

    @staticmethod
    def _os_stat(path: Path) -> os.stat_result:
        try:
            return os.stat(path)
        except OSError as exc:
            raise os_error(exc, "read") from None


def _lock_error(exc: OSError) -> WopiError:
    return os_error(exc, "write")
