"""What a local storage folder holds, read from the disk: which files carry which id, and the
desktop lock files beside them (wopibridge's own ``.wopibridge/`` records left out)."""

from __future__ import annotations

import os
from pathlib import Path

from wopibridge.storage.xattrid import ATTRIBUTE

HIDDEN = ".wopibridge"


def documents(root: Path) -> list[Path]:
    """Every regular file under ``root`` but wopibridge's records and temporary files."""
    found = []
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root and HIDDEN in dirs:
            dirs.remove(HIDDEN)
        found += [Path(folder) / name for name in files if not name.startswith(".~wb-")]
    return found


def carried_id(path: Path) -> str | None:
    try:
        return os.getxattr(path, ATTRIBUTE).decode()
    except OSError:
        return None


def carriers(root: Path, backend_id: str) -> list[Path]:
    """The files under ``root`` that carry ``backend_id``."""
    return [path for path in documents(root) if carried_id(path) == backend_id]


def lock_files(root: Path) -> list[str]:
    return sorted(p.name for p in documents(root) if p.name.startswith(".~lock."))


def backend_id(wopi_src: str) -> str:
    """The local backend id in a WOPISrc (``…/wopi/files/<storage>.<id>`` or ``…/<id>``)."""
    last = wopi_src.rsplit("/", 1)[1]
    return last.split(".", 1)[1] if "." in last else last
