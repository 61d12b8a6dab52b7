"""The local id map in SQLite: where each file id lives, and small per-file metadata.

Used when WOPI locks are in process (``locks.url = memory://``): then only this instance serves
the files, so the map may live in its state folder. (SQLite on a network filesystem is no way to
share it: WAL mode needs shared memory the filesystem cannot give.) With Redis locks the map is
:mod:`wopibridge.storage.redis_idmap`, seen by every instance.

A row is ``id → path`` plus ``pending``, the name a rename in progress is moving the file to:
it is written before the rename and cleared after, so an instance killed in between leaves an
id that still resolves (see :meth:`begin_move`). SQLite in WAL mode answers a primary-key
lookup in microseconds, so lookups run inline on the event loop rather than paying a thread hop.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from wopibridge.errors import InsufficientStorage

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, pending TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (id, key)
);
"""


@contextlib.contextmanager
def _full_is_507() -> Iterator[None]:
    """A write into the index on a full state folder is "insufficient storage", not a crash."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
            raise InsufficientStorage("The state folder of the server is full") from None
        raise


def new_id() -> str:
    """22 URL-safe characters: 128 random bits."""
    return secrets.token_urlsafe(16)


class FileIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._prepare()

    def _prepare(self) -> None:
        """WAL mode and the tables. Instances or workers starting together on a new state
        folder race here, and SQLite can answer "busy" at once instead of waiting out the busy
        timeout (it does not wait where waiting could deadlock), so the loser tries again for
        a few seconds."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
                if "pending" not in columns:  # an index written before renames were journalled
                    self._db.execute("ALTER TABLE files ADD COLUMN pending TEXT")
                return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + secrets.randbelow(50) / 1000)

    def lookup(self, file_id: str) -> tuple[str, str | None] | None:
        """``(path, pending)`` of an id, always from the database, never from memory: another
        instance sharing the index may have renamed the file and put a new one at its old
        path, and a remembered path would then send this id's reads and writes to that file."""
        row = self._db.execute(
            "SELECT path, pending FROM files WHERE id = ?", (file_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))

    def id_at(self, path: str) -> str | None:
        row = self._db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else str(row[0])

    def id_for(self, path: str, candidate: str | None = None) -> str:
        """The id of ``path``, assigning ``candidate`` (or a new id) on first sight; safe
        against concurrent callers. ``""`` when ``candidate`` names another path already."""
        found = self.id_at(path)
        if found is not None:
            return found
        with _full_is_507():
            self._db.execute(
                "INSERT OR IGNORE INTO files (id, path) VALUES (?, ?)",
                (candidate or new_id(), path),
            )
        return self.id_at(path) or ""

    def place(self, file_id: str, path: str) -> None:
        """Record that ``file_id`` lives at ``path`` now; an id recorded there before is
        dropped (its file is gone from that path)."""
        with _full_is_507(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM files WHERE path = ? AND id != ?", (path, file_id))
            self._db.execute(
                "INSERT INTO files (id, path) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET path = excluded.path, pending = NULL",
                (file_id, path),
            )

    def begin_move(self, file_id: str, new_path: str) -> None:
        with _full_is_507():
            self._db.execute("UPDATE files SET pending = ? WHERE id = ?", (new_path, file_id))

    def move(self, file_id: str, new_path: str) -> None:
        """``file_id`` now lives at ``new_path``; the rename in progress, if any, is done."""
        with _full_is_507(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM files WHERE path = ? AND id != ?", (new_path, file_id))
            self._db.execute(
                "UPDATE files SET path = ?, pending = NULL WHERE id = ?", (new_path, file_id)
            )

    def abort_move(self, file_id: str) -> None:
        self._db.execute("UPDATE files SET pending = NULL WHERE id = ?", (file_id,))

    def forget(self, file_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            self._db.execute("DELETE FROM meta WHERE id = ?", (file_id,))

    def get_meta(self, file_id: str, key: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM meta WHERE id = ? AND key = ?", (file_id, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, file_id: str, key: str, value: str) -> None:
        with _full_is_507():
            self._db.execute(
                "INSERT INTO meta (id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (id, key) DO UPDATE SET value = excluded.value",
                (file_id, key, value),
            )

    def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._db.close()
