"""What refused saves were kept, so that the same content is kept once and the kept copies
stay within their quota and age.

One row per kept copy: the file's identity (the lock key, the same for every route to the
file), the user, the SHA-256 of the content, its size, when, and where it went (a path in the
recovery folder, or a conflict copy's file id and version on its storage). SQLite in the state
folder, shared by the workers and instances that share that folder.

The index is an aid, never a reason to refuse: when it cannot be read or written (a full state
folder), the copy is kept without it and the failure logged.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("wopibridge.conflicts")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kept (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL,
    user TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    place TEXT NOT NULL,
    location TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS kept_by_content ON kept (identity, user, digest);
CREATE INDEX IF NOT EXISTS kept_by_user ON kept (user);
"""


@dataclass(frozen=True, slots=True)
class KeptRow:
    """``place`` is ``recovery`` (``location`` a path) or ``storage`` (``location`` is
    ``<storage name>:<file id>`` and ``version`` the copy's version when it was made)."""

    id: int
    identity: str
    user: str
    digest: str
    size: int
    created: float
    place: str
    location: str
    version: str


class KeptIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    def _rows(self, sql: str, args: tuple[object, ...]) -> list[KeptRow]:
        try:
            return [KeptRow(*row) for row in self._conn().execute(sql, args).fetchall()]
        except sqlite3.Error as exc:
            log.warning("index of kept copies %s unreadable: %s", self.path, exc)
            return []

    def same_content(self, identity: str, user: str, digest: str) -> list[KeptRow]:
        return self._rows(
            "SELECT * FROM kept WHERE identity = ? AND user = ? AND digest = ?",
            (identity, user, digest),
        )

    def of_user(self, user: str) -> list[KeptRow]:
        return self._rows("SELECT * FROM kept WHERE user = ? ORDER BY created", (user,))

    def everything(self) -> list[KeptRow]:
        return self._rows("SELECT * FROM kept ORDER BY created", ())

    def older_than(self, cutoff: float) -> list[KeptRow]:
        return self._rows("SELECT * FROM kept WHERE created < ? ORDER BY created", (cutoff,))

    def add(
        self,
        identity: str,
        user: str,
        digest: str,
        size: int,
        place: str,
        location: str,
        version: str = "",
    ) -> None:
        try:
            self._conn().execute(
                "INSERT INTO kept (identity, user, digest, size, created, place, location, "
                "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (identity, user, digest, size, time.time(), place, location, version),
            )
        except sqlite3.Error as exc:
            log.warning("could not record the kept copy %s in %s: %s", location, self.path, exc)

    def forget(self, row_id: int) -> None:
        try:
            self._conn().execute("DELETE FROM kept WHERE id = ?", (row_id,))
        except sqlite3.Error as exc:
            log.warning("could not update the index of kept copies %s: %s", self.path, exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
