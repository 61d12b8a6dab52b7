"""Where a local file id lives: the id map the local storage asks, and its SQLite form.

Every instance serving a folder must turn an id into the same path, so the map lives where all
of them see it: in Redis when the locks are there (:mod:`.redis_idmap`), in the state folder's
SQLite index when locks are in process (then one instance serves the folder). The map is a
routing hint, not the authority: where the filesystem keeps extended attributes, the file's own
id (:mod:`.xattrid`) is checked before an id is routed to a path, so a stale entry can only make
a file not found, never send an id to another file.

Failures raise :class:`~wopibridge.errors.InsufficientStorage` (the map's disk or memory is
full, 507) or :class:`~wopibridge.errors.Unavailable` (503), never a bare exception.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from wopibridge.errors import InsufficientStorage, Unavailable, WopiError
from wopibridge.storage.index import FileIndex

log = logging.getLogger("wopibridge.storage.idmap")

T = TypeVar("T")

META_TTL = 5.0


@dataclass(frozen=True, slots=True)
class Entry:
    """Where an id lives, and where a rename in progress is moving it (``pending``)."""

    path: str | None
    pending: str | None = None


class IdMap(Protocol):
    """``id → path`` (relative to the storage root) shared by the instances serving a folder."""

    async def lookup(self, file_id: str) -> Entry | None: ...

    async def claim(self, path: str, candidate: str) -> str:
        """The id recorded for ``path``, recording ``candidate`` when there is none (atomic:
        two instances claiming one path agree on one id). ``""`` when ``candidate`` already
        names a file elsewhere (a renamed file's old path-based id). For files without ids
        of their own."""

    async def place(self, file_id: str, path: str) -> None:
        """``file_id`` lives at ``path`` (found there, or created there); an id recorded at
        that path before no longer is."""

    async def begin_move(self, file_id: str, new_path: str) -> None:
        """Journal a rename before it happens: until :meth:`finish_move`, a lookup also
        offers ``new_path``, so a crash after the rename leaves the id resolvable."""

    async def finish_move(self, file_id: str, old_path: str, new_path: str) -> None: ...

    async def abort_move(self, file_id: str) -> None: ...

    async def forget(self, file_id: str, path: str) -> None: ...

    async def get_meta(self, file_id: str, key: str) -> str | None: ...

    async def set_meta(self, file_id: str, key: str, value: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


async def journalled_move(
    ids: IdMap,
    file_id: str,
    old_path: str,
    new_path: str,
    move: Callable[[], Awaitable[None]],
    move_back: Callable[[], Awaitable[None]],
) -> None:
    """Rename a file so that its id resolves at every moment, whatever fails.

    The map first records ``new_path`` as pending, then ``move`` moves the file, then the map
    moves the id. A failed move takes the pending name back. When the map cannot be updated
    after the move, ``move_back`` puts the file where the map still has it, and the map's error
    (507 when its storage is full, 503 when it is unreachable) is the answer; if even that
    fails, the pending name still resolves the id. ``move`` raises a ``WopiError`` for its own
    failures; ``move_back``'s failure is only logged.
    """
    await ids.begin_move(file_id, new_path)
    try:
        await move()
    except BaseException:
        with contextlib.suppress(WopiError):
            await ids.abort_move(file_id)
        raise
    try:
        await ids.finish_move(file_id, old_path, new_path)
    except WopiError:
        try:
            await move_back()
        except (WopiError, OSError) as exc:  # the pending name still resolves the id
            log.error("could not move %s back to %s: %s", new_path, old_path, exc)
        else:
            with contextlib.suppress(WopiError):
                await ids.abort_move(file_id)
        raise


class MetaCache:
    """Metadata values remembered for :data:`META_TTL` seconds.

    CheckFileInfo reads the user's info on every call, and asking the map each time was a
    sixth of its cost. Writes through this instance update the memory at once; another
    instance's writes are seen within the TTL.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], tuple[str | None, float]] = {}

    def get(self, file_id: str, key: str) -> tuple[bool, str | None]:
        cached = self._values.get((file_id, key))
        if cached is not None and cached[1] > time.monotonic():
            return True, cached[0]
        return False, None

    def put(self, file_id: str, key: str, value: str | None) -> None:
        if len(self._values) >= 100_000:
            self._values.clear()
        self._values[(file_id, key)] = (value, time.monotonic() + META_TTL)

    def drop(self, file_id: str) -> None:
        self._values = {k: v for k, v in self._values.items() if k[0] != file_id}


class SqliteIdMap:
    """The id map in ``<state_dir>/<storage>-files.sqlite3``, for in-process locks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index = FileIndex(path)
        self._meta = MetaCache()

    def _run(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code == sqlite3.SQLITE_FULL:
                raise InsufficientStorage(
                    "The storage is full: the file index cannot be updated"
                ) from None
            raise Unavailable("The file index failed", detail=f"{self.path}: {exc}") from None

    async def lookup(self, file_id: str) -> Entry | None:
        found = self._run(lambda: self._index.lookup(file_id))
        return None if found is None else Entry(*found)

    async def claim(self, path: str, candidate: str) -> str:
        return self._run(lambda: self._index.id_for(path, candidate))

    async def place(self, file_id: str, path: str) -> None:
        self._run(lambda: self._index.place(file_id, path))

    async def begin_move(self, file_id: str, new_path: str) -> None:
        self._run(lambda: self._index.begin_move(file_id, new_path))

    async def finish_move(self, file_id: str, old_path: str, new_path: str) -> None:
        self._run(lambda: self._index.move(file_id, new_path))

    async def abort_move(self, file_id: str) -> None:
        self._run(lambda: self._index.abort_move(file_id))

    async def forget(self, file_id: str, path: str) -> None:
        self._run(lambda: self._index.forget(file_id))
        self._meta.drop(file_id)

    async def get_meta(self, file_id: str, key: str) -> str | None:
        hit, value = self._meta.get(file_id, key)
        if not hit:
            value = self._run(lambda: self._index.get_meta(file_id, key))
            self._meta.put(file_id, key, value)
        return value

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        self._run(lambda: self._index.set_meta(file_id, key, value))
        self._meta.put(file_id, key, value)

    async def ping(self) -> None:
        self._run(self._index.ping)

    async def close(self) -> None:
        self._index.close()


class MemoryIdMap:
    """The id map in this process, for storages whose ids are their paths (WebDAV) when
    locks are in process too: it only remembers renames, and forgets the oldest past
    :data:`MAX_MEMORY_ENTRIES`."""

    MAX_MEMORY_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._ids: dict[str, str] = {}
        self._meta: dict[tuple[str, str], str] = {}

    def _bound(self) -> None:
        if len(self._entries) > self.MAX_MEMORY_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        if len(self._ids) > self.MAX_MEMORY_ENTRIES:
            self._ids.pop(next(iter(self._ids)))

    async def lookup(self, file_id: str) -> Entry | None:
        return self._entries.get(file_id)

    async def claim(self, path: str, candidate: str) -> str:
        found = self._ids.get(path)
        if found is not None:
            return found
        if candidate in self._entries:
            return ""
        self._ids[path] = candidate
        self._entries[candidate] = Entry(path)
        self._bound()
        return candidate

    async def place(self, file_id: str, path: str) -> None:
        old = self._entries.get(file_id)
        if old is not None and old.path and self._ids.get(old.path) == file_id:
            del self._ids[old.path]
        displaced = self._ids.get(path)
        if displaced is not None and displaced != file_id:
            self._entries.pop(displaced, None)
        self._ids[path] = file_id
        self._entries[file_id] = Entry(path)
        self._bound()

    async def begin_move(self, file_id: str, new_path: str) -> None:
        old = self._entries.get(file_id)
        self._entries[file_id] = Entry(old.path if old else None, new_path)

    async def finish_move(self, file_id: str, old_path: str, new_path: str) -> None:
        await self.place(file_id, new_path)

    async def abort_move(self, file_id: str) -> None:
        old = self._entries.get(file_id)
        if old is not None:
            self._entries[file_id] = Entry(old.path)

    async def forget(self, file_id: str, path: str) -> None:
        self._entries.pop(file_id, None)
        if self._ids.get(path) == file_id:
            del self._ids[path]
        self._meta = {k: v for k, v in self._meta.items() if k[0] != file_id}

    async def get_meta(self, file_id: str, key: str) -> str | None:
        return self._meta.get((file_id, key))

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        self._meta[(file_id, key)] = value

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
