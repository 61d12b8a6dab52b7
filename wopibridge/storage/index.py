"""The local storage's file-id index: stable ids for paths, and small per-file metadata.

A save replaces the file (new inode) and a rename changes its path, yet the WOPISrc must stay
valid across both, so ids cannot come from the filesystem. They are random, kept in SQLite in the
state folder, and moved along with renames. SQLite in WAL mode answers a primary-key lookup in
microseconds, so lookups run inline on the event loop rather than paying a thread hop.
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
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS meta (
    id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (id, key)
);
"""


META_TTL = 5.0


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
        self._meta: dict[tuple[str, str], tuple[str | None, float]] = {}

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
                return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + secrets.randbelow(50) / 1000)

    def path_of(self, file_id: str) -> str | None:
        """The path of an id, always from the database, never from memory: another instance
        sharing the index may have renamed the file and put a new one at its old path, and a
        remembered path would then send this id's reads and writes to that other file."""
        row = self._db.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None else str(row[0])

    def id_for(self, path: str) -> str:
        """The id of ``path``, assigning one on first sight (safe against concurrent callers)."""
        row = self._db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row is not None:
            return str(row[0])
        with _full_is_507():
            self._db.execute(
                "INSERT OR IGNORE INTO files (id, path) VALUES (?, ?)", (new_id(), path)
            )
        row = self._db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        return str(row[0])

    def move(self, file_id: str, new_path: str) -> None:
        with _full_is_507(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM files WHERE path = ? AND id != ?", (new_path, file_id))
            self._db.execute("UPDATE files SET path = ? WHERE id = ?", (new_path, file_id))

    def forget(self, file_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            self._db.execute("DELETE FROM meta WHERE id = ?", (file_id,))
        self._meta = {k: v for k, v in self._meta.items() if k[0] != file_id}

    def get_meta(self, file_id: str, key: str) -> str | None:
        """A metadata value, from memory for up to :data:`META_TTL` seconds.

        CheckFileInfo reads the user's info on every call and a SQLite query was a sixth of
        its cost. Writes through this index update the memory at once; another instance
        sharing the index is seen within the TTL.
        """
        now = time.monotonic()
        cached = self._meta.get((file_id, key))
        if cached is not None and cached[1] > now:
            return cached[0]
        row = self._db.execute(
            "SELECT value FROM meta WHERE id = ? AND key = ?", (file_id, key)
        ).fetchone()
        value = None if row is None else str(row[0])
        if len(self._meta) >= 100_000:
            self._meta.clear()
        self._meta[(file_id, key)] = (value, now + META_TTL)
        return value

    def set_meta(self, file_id: str, key: str, value: str) -> None:
        with _full_is_507():
            self._db.execute(
                "INSERT INTO meta (id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (id, key) DO UPDATE SET value = excluded.value",
                (file_id, key, value),
            )
        self._meta[(file_id, key)] = (value, time.monotonic() + META_TTL)

    def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._db.close()
