"""The file operations of local versions, off the event loop: the replace that keeps the
previous content, and the look at a file's kept versions.

Where versions live: ``<root>/.wopibridge/versions/<file id>/<mtime_ns>``, beside the data, so
every instance serving the folder sees them, and under the file's id, which a rename or an
outside ``mv`` keeps, so the history follows the file.

How a save keeps the previous content without copying a byte: the complete new file (staged
beside the file) is first renamed into the versions folder, under the name of the content
it will hold there (the current content's ``mtime_ns``), then exchanged with the file in one
atomic ``renameat2(RENAME_EXCHANGE)``: the file's name now holds the new bytes, the version's
name the old inode. A version is valid only when its modification time is its name, which
makes a crash at any moment consistent: killed before the exchange, the entry holds the new
bytes (a newer modification time), is never listed and is swept; killed after it, the save
happened and the version is kept. A filesystem without the exchange (NFS) gets a hard link
of the old inode followed by the ordinary replace.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import os
import stat as statmod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wopibridge.storage.local.writing import fsync_dir
from wopibridge.storage.versions import SaveNote, VersionInfo

NOTE_ATTRIBUTE = "user.wopibridge.save"

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Any:
    """The C library's ``renameat2`` (Python has no binding), looked up on first use."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return getattr(libc, "renameat2", None)


def exchange(first: Path, second: Path) -> None:
    """Swap two names atomically (``OSError`` ``EINVAL``/``ENOSYS`` where unsupported)."""
    renameat2 = _renameat2()
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(first))


def read_note(path: Path | str | int) -> SaveNote | None:
    try:
        return SaveNote.decode(os.getxattr(path, NOTE_ATTRIBUTE))
    except OSError:
        return None


def write_note(path: Path | str | int, note: SaveNote) -> None:
    with contextlib.suppress(OSError):  # a filesystem without attributes keeps no notes
        os.setxattr(path, NOTE_ATTRIBUTE, note.encode())


_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)


def replace_keeping(staged: Path, target: Path, folder: Path, previous_mtime_ns: int) -> bool:
    """Put ``staged`` (complete, durable, its time and attributes set) in place of ``target``,
    keeping ``target``'s content in ``folder`` as version ``previous_mtime_ns``. Answers
    whether it was kept (``False`` when ``folder`` cannot be had or is on another
    filesystem: the save still lands). ``staged`` is left where it was when the replace
    fails."""
    entry = folder / str(previous_mtime_ns)
    try:
        try:  # the new bytes wait under the version's name (see module)
            os.rename(staged, entry)
        except FileNotFoundError:  # the file's first version: its folder is made once
            os.makedirs(folder, mode=0o700, exist_ok=True)
            os.rename(staged, entry)
    except OSError:
        # no versions folder to be had (another filesystem, a file in its way, no room for
        # a folder): the save must land all the same
        os.replace(staged, target)
        fsync_dir(target.parent)
        return False
    try:
        exchange(entry, target)
    except OSError as exc:
        os.rename(entry, staged)
        if exc.errno not in _UNSUPPORTED:
            raise
        os.link(target, entry)
        try:
            os.replace(staged, target)
        except OSError:
            os.unlink(entry)
            raise
    # One folder sync makes the save durable. The versions folder is not synced on its own:
    # on a journalling filesystem (ext4, XFS) the same journal commit carries both names, and
    # elsewhere a power cut can at worst lose the kept version, never the saved content.
    fsync_dir(target.parent)
    return True


@dataclass(frozen=True, slots=True)
class Entry:
    path: Path
    info: VersionInfo


def _held(path: Path) -> bool:
    """Whether a live writer still holds the entry (its staged file, locked while written)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def entries(folder: Path, current_inode: int = 0, *, authors: bool = True) -> list[Entry]:
    """The valid versions in ``folder``, newest first. Entries a crash left (the new bytes
    of a save killed before its exchange, a link to the current inode) are removed unless a
    live writer holds them."""
    found: list[Entry] = []
    try:
        scan = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # none kept (yet, or none can be)
        return []
    for item in scan:
        if not item.name.isdigit():
            continue
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            continue
        if not statmod.S_ISREG(st.st_mode):
            continue
        path = Path(item.path)
        if st.st_mtime_ns != int(item.name) or st.st_ino == current_inode:
            if not _held(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            continue
        note = read_note(path) if authors else None
        info = VersionInfo(item.name, st.st_size, st.st_mtime_ns, note.author if note else "")
        found.append(Entry(path, info))
    found.sort(key=lambda e: e.info.mtime_ns, reverse=True)
    return found


def prune(
    folder: Path, max_count: int, max_age: int, max_bytes: int, now_ns: int, current_inode: int
) -> tuple[int, dict[str, int]]:
    """Drop the oldest versions beyond the limits (0: none); answers how many remain, and
    the count dropped by reason. The newest version is never dropped for its bytes alone."""
    dropped = {"count": 0, "age": 0, "bytes": 0}
    kept: list[Entry] = []
    total = 0
    for index, entry in enumerate(entries(folder, current_inode, authors=False)):
        reason = ""
        if max_age and now_ns - entry.info.mtime_ns > max_age * 1_000_000_000:
            reason = "age"
        elif max_count and len(kept) >= max_count:
            reason = "count"
        elif max_bytes and index and total + entry.info.size > max_bytes:
            reason = "bytes"
        if reason:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:  # another pass dropped it and counted it
                continue
            dropped[reason] += 1
            continue
        kept.append(entry)
        total += entry.info.size
    return len(kept), {reason: count for reason, count in dropped.items() if count}


def copy_into(source: Path, fd: int) -> None:
    """The bytes of ``source`` into the open file ``fd`` (by the kernel: ``copy_file_range``,
    a reflink where the filesystem has them)."""
    with open(source, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                sent = os.copy_file_range(src.fileno(), fd, size - offset, offset, offset)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                block = os.pread(src.fileno(), 1024 * 1024, offset)
                sent = os.pwrite(fd, block, offset) if block else 0
            if not sent:
                break
            offset += sent
    os.fsync(fd)
