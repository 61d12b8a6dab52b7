"""File names and paths as storages accept them.

:func:`check_name` is the portable rule for names an editor asks wopibridge to create (Save
As, rename; see :mod:`wopibridge.wopi.names`). Names that already exist are the filesystem's
business: :func:`check_plain_name` and :func:`check_path` refuse only what could leave the
folder a storage was given, so ``what?.odt``, ``12:30 notes.txt`` or ``back\\slash.txt``
open like any other file. Only ``/`` separates folders; ``\\`` is a character of a POSIX name.
"""

from __future__ import annotations

import re

from wopibridge.errors import BadRequest, InvalidFileName, WopiError

MAX_NAME_BYTES = 255
FORBIDDEN = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def check_name(name: str) -> str:
    """Return ``name`` if a file may carry it, else raise ``InvalidFileName``."""
    if not name or name.strip() != name or name in (".", ".."):
        raise InvalidFileName("The file name is empty or has leading or trailing spaces")
    if FORBIDDEN.search(name):
        raise InvalidFileName("The file name contains a character that is not allowed")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidFileName("The file name is too long")
    if name.startswith(".~wb-"):
        raise InvalidFileName("The file name is reserved")
    return name


def check_path(ref: str, *, error: WopiError | None = None) -> str:
    """Normalise a path relative to the storage URL; refuse anything that could escape it."""
    bad = error or BadRequest("Invalid file reference")
    if not ref or "\x00" in ref or ref.startswith("/"):
        raise bad
    parts = ref.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise bad
    return "/".join(parts)


def check_plain_name(name: str) -> str:
    """A name the remote storage will judge itself: only what could leave the folder is refused."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise InvalidFileName("The file name is not valid")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidFileName("The file name is too long")
    return name
