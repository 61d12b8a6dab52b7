"""A local file's id, kept on the file itself in the ``user.wopibridge.id`` extended attribute.

An id stored beside the file (in an index) is lost the moment someone renames the file outside
wopibridge, and each instance with its own index gives the same file its own id, hence its own
lock. An attribute travels with the inode: a plain ``mv`` inside the filesystem keeps it, every
instance reading the file reads the same id, and a hard link or a symlink to the file shows the
same id. A save replaces the inode, so the id is copied onto the replacement before the replace.

The filesystems research sites share (ext4, XFS, CephFS, GPFS, Lustre, tmpfs, NFS 4.2) keep user
attributes; where one does not, :func:`supported` says so and the storage falls back to its map.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from pathlib import Path

ATTRIBUTE = "user.wopibridge.id"

_VALID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

#: errors meaning "this filesystem (or file) keeps no user attributes"
UNSUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


def read_id(path: Path | str | int) -> str | None:
    """The id on the file (a path or an open descriptor), or ``None`` when it has none or a
    malformed one (then it is given a fresh id, as if it had none)."""
    try:
        raw = os.getxattr(path, ATTRIBUTE)
    except OSError as exc:
        if exc.errno == errno.ENODATA or exc.errno in UNSUPPORTED:
            return None
        raise
    try:
        value = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return value if _VALID.match(value) else None


def write_id(path: Path | str | int, file_id: str, *, only_if_absent: bool = False) -> None:
    """Store ``file_id`` on the file. ``only_if_absent`` raises ``FileExistsError`` when the
    file has an id already (two instances naming a new file at once: the first one wins)."""
    flags = os.XATTR_CREATE if only_if_absent else 0
    os.setxattr(path, ATTRIBUTE, file_id.encode("ascii"), flags)


def supported(folder: Path) -> bool:
    """Whether files in ``folder`` keep user attributes: a probe file is created, tagged and
    removed. A folder that cannot be written counts as not keeping them."""
    probe = folder / f".~wb-probe-{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        os.setxattr(fd, ATTRIBUTE, b"probe")
        return bool(os.getxattr(fd, ATTRIBUTE) == b"probe")
    except OSError:
        return False
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
