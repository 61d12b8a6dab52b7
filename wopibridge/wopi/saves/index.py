"""What kept copies exist, so that the same content is kept once, the kept copies stay within
their quota and age, and their users can be told about them.

One row per kept copy, whatever made it (a refused save, or the previous content kept before an
empty save): the file's identity (the lock key, the same for every route to the file), the
user's **id** (never the display name: two users may share a name, and one user may show up
under several), the SHA-256 of the content, its size, when, where it went (a path in the
recovery folder, or a conflict copy's file id and version on its storage), the name a person
knows it by, and whether that user was told about it yet. SQLite in the state folder, shared by
the workers and instances that share that folder.

The index is an aid, never a reason to refuse: when it cannot be read or written (a full state
folder), the copy is kept without it and the failure logged.
"""

from __future__ import annotations

import contextlib
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
#: Columns added after the first release; an older index gets them on open.
ADDED_COLUMNS = (
    ("name", "TEXT NOT NULL DEFAULT ''"),
    ("file_name", "TEXT NOT NULL DEFAULT ''"),
    ("notified", "INTEGER NOT NULL DEFAULT 0"),
)
COLUMNS = (
    "id, identity, user, digest, size, created, place, location, version, name, file_name, notified"
)


@dataclass(frozen=True, slots=True)
class KeptRow:
    """``place`` is ``recovery`` (``location`` a path) or ``storage`` (``location`` is
    ``<storage name>:<file id>`` and ``version`` the copy's version when it was made).
    ``name`` is the kept copy's file name, ``file_name`` the name of the file it belongs to."""

    id: int
    identity: str
    user: str
    digest: str
    size: int
    created: float
    place: str
    location: str
    version: str
    name: str = ""
    file_name: str = ""
    notified: int = 0


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
            present = {row[1] for row in db.execute("PRAGMA table_info(kept)")}
            for column, kind in ADDED_COLUMNS:
                if column not in present:
                    # another process may have added it meanwhile
                    with contextlib.suppress(sqlite3.OperationalError):
                        db.execute(f"ALTER TABLE kept ADD COLUMN {column} {kind}")
            self._db = db
        return self._db

    def _rows(self, where: str, args: tuple[object, ...]) -> list[KeptRow]:
        sql = f"SELECT {COLUMNS} FROM kept {where}"
        try:
            return [KeptRow(*row) for row in self._conn().execute(sql, args).fetchall()]
        except sqlite3.Error as exc:
            log.warning("index of kept copies %s unreadable: %s", self.path, exc)
            return []

    def same_content(self, identity: str, user: str, digest: str) -> list[KeptRow]:
        return self._rows(
            "WHERE identity = ? AND user = ? AND digest = ?", (identity, user, digest)
        )

    def of_user(self, user: str) -> list[KeptRow]:
        return self._rows("WHERE user = ? ORDER BY created", (user,))

    def unnotified(self, identity: str, user: str) -> list[KeptRow]:
        """The copies of this file kept for this user that nobody told them about yet."""
        return self._rows(
            "WHERE identity = ? AND user = ? AND notified = 0 ORDER BY created", (identity, user)
        )

    def everything(self) -> list[KeptRow]:
        return self._rows("ORDER BY created", ())

    def older_than(self, cutoff: float) -> list[KeptRow]:
        return self._rows("WHERE created < ? ORDER BY created", (cutoff,))

    def add(
        self,
        identity: str,
        user: str,
        digest: str,
        size: int,
        place: str,
        location: str,
        version: str = "",
        *,
        name: str = "",
        file_name: str = "",
    ) -> None:
        try:
            self._conn().execute(
                "INSERT INTO kept (identity, user, digest, size, created, place, location, "
                "version, name, file_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    identity,
                    user,
                    digest,
                    size,
                    time.time(),
                    place,
                    location,
                    version,
                    name,
                    file_name,
                ),
            )
        except sqlite3.Error as exc:
            log.warning("could not record the kept copy %s in %s: %s", location, self.path, exc)

    def mark_notified(self, row_ids: list[int]) -> None:
        try:
            self._conn().executemany(
                "UPDATE kept SET notified = 1 WHERE id = ?", [(row_id,) for row_id in row_ids]
            )
        except sqlite3.Error as exc:
            log.warning("could not update the index of kept copies %s: %s", self.path, exc)

    def forget(self, row_id: int) -> None:
        try:
            self._conn().execute("DELETE FROM kept WHERE id = ?", (row_id,))
        except sqlite3.Error as exc:
            log.warning("could not update the index of kept copies %s: %s", self.path, exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
