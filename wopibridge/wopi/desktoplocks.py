"""Desktop office lock files, read and written so web and desktop users do not clobber each
other.

LibreOffice marks an open document with ``.~lock.<name>#`` beside it (CSV: office user name,
system user name, host, time, profile URL, then ``;``); Microsoft Office with an owner file
``~$<name>`` (Word drops the first one or two characters of long names) whose first byte is the
length of the user name that follows. A file with either beside it opens read-only on the web,
with a reason naming the holder.

While a web editor holds a WOPI lock on an ODF file, wopibridge writes a LibreOffice-style lock
file so desktop users get LibreOffice's "document in use" dialog, and removes it on unlock. Its
host field is ``wopibridge``, which is how our own lock files are told apart from desktop ones.

Writing a lock file is a create with fsyncs, several times the cost of the lock itself, so it
runs after the answer: :class:`LockFileWriter` runs, per file, the latest wish. Every wish is
the same one, :func:`follow_wopi_lock`: make the lock files agree with the WOPI lock as the
shared lock store has it when the work runs, so instances of a fleet that lock, rename and
unlock one file in turn agree on the outcome. A lock file appears about a tenth of a second
after its lock is granted. :func:`sweep_stale_lock_files`, run at start and then periodically
by every instance, removes ours that no WOPI lock backs any more (a crash, a lock that
expired, a restart with in-process locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from wopibridge.errors import FileExists, NotFound, WopiError
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.names import MAX_NAME_BYTES

log = logging.getLogger("wopibridge.desktoplocks")

ODF_EXTENSIONS = frozenset(
    [
        ".odt",
        ".ods",
        ".odp",
        ".odg",
        ".odf",
        ".odm",
        ".ott",
        ".ots",
        ".otp",
        ".otg",
        ".fodt",
        ".fods",
        ".fodp",
        ".fodg",
    ]
)
OWN_HOST = "wopibridge"
MAX_LOCK_FILE = 4096


def libreoffice_lock_name(name: str) -> str:
    return f".~lock.{name}#"


def _can_exist(name: str) -> bool:
    """Whether a file may carry this name at all: the lock file of a document named outside
    wopibridge with 248 bytes or more cannot, so there is none to look for or to write."""
    return len(name.encode("utf-8")) <= MAX_NAME_BYTES


def microsoft_owner_names(name: str) -> list[str]:
    """Word replaces the first two characters of stems of 8+ characters (one for 7) with
    ``~$``; Excel and PowerPoint keep the whole name."""
    names = [f"~${name}", f"~${name[1:]}", f"~${name[2:]}"]
    return list(dict.fromkeys(n for n in names if len(n) > 2 and _can_exist(n)))


def parse_own_file_id(data: bytes) -> str | None:
    """The backend id of the document a lock file of ours names (its profile field
    ``wopibridge:<id>``), or ``None`` for any other lock file."""
    fields = data.decode("utf-8", "replace").split(";", 1)[0].split(",")
    if len(fields) < 5 or fields[2].strip() != OWN_HOST:
        return None
    kind, _, file_id = fields[4].strip().partition(":")
    return file_id if kind == OWN_HOST and file_id else None


def parse_libreoffice_lock(data: bytes) -> tuple[str, str]:
    """``(holder name, host)`` from a ``.~lock.*#`` file."""
    text = data.decode("utf-8", "replace").split(";", 1)[0]
    fields = text.split(",")
    while len(fields) < 3:
        fields.append("")
    name = fields[0].strip() or fields[1].strip() or "someone"
    return name, fields[2].strip()


def parse_microsoft_owner(data: bytes) -> str:
    """The user name in a ``~$`` owner file (length-prefixed ANSI, then UTF-16 copy)."""
    if data:
        length = data[0]
        if 0 < length <= 53 and len(data) > length:
            name = data[1 : 1 + length].decode("cp1252", "replace").strip()
            if name:
                return name
        if len(data) >= 58:
            wide_len = data[54]
            wide = data[56 : 56 + 2 * wide_len].decode("utf-16-le", "replace").strip()
            if wide:
                return wide
    return "someone"


def libreoffice_lock_content(user: str, when: datetime, file_id: str) -> bytes:
    safe = user.replace(",", " ").replace(";", " ").strip() or "a web user"
    stamp = when.astimezone(UTC).strftime("%d.%m.%Y %H:%M")
    return f"{safe},{OWN_HOST},{OWN_HOST},{stamp},{OWN_HOST}:{file_id};".encode()


async def _read_small(storage: Storage, file_id: str) -> bytes:
    content = await storage.open_read(file_id)
    try:
        if content.local_path is not None:
            path = content.local_path
            return await asyncio.to_thread(lambda: path.read_bytes()[:MAX_LOCK_FILE])
        data = bytearray()
        if content.chunks is not None:
            async for chunk in content.chunks:
                data += chunk
                if len(data) >= MAX_LOCK_FILE:
                    break
        return bytes(data[:MAX_LOCK_FILE])
    finally:
        await content.close()


async def desktop_lock_holder(storage: Storage, backend_id: str, stat: FileStat) -> str | None:
    """A sentence naming who holds the file open in a desktop office, or ``None``."""
    try:
        lock_name = libreoffice_lock_name(stat.name)
        lo = await storage.find_sibling(backend_id, lock_name) if _can_exist(lock_name) else None
        if lo is not None:
            holder, host = parse_libreoffice_lock(await _read_small(storage, lo.file_id))
            if host != OWN_HOST:
                return f"The file is open in LibreOffice by {holder}; it opens read-only"
        for owner in microsoft_owner_names(stat.name):
            found = await storage.find_sibling(backend_id, owner)
            if found is not None:
                holder = parse_microsoft_owner(await _read_small(storage, found.file_id))
                return f"The file is open in Microsoft Office by {holder}; it opens read-only"
    except (NotFound, ValueError):
        return None
    return None


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def write_lock_file(storage: Storage, backend_id: str, stat: FileStat, user: str) -> None:
    """Announce a web editing session to desktop LibreOffice users (ODF files only). An
    existing lock file (ours, or a desktop one) is left alone."""
    if stat.extension.lower() not in ODF_EXTENSIONS or not _can_exist(
        libreoffice_lock_name(stat.name)
    ):
        return
    content = libreoffice_lock_content(user, datetime.now(UTC), stat.file_id)
    try:
        if await storage.find_sibling(backend_id, libreoffice_lock_name(stat.name)):
            return  # a lock refresh, or a desktop user's lock file: nothing to write
        await storage.create(backend_id, libreoffice_lock_name(stat.name), _one(content))
    except FileExists:
        return
    except (WopiError, OSError) as exc:  # the lock file is a courtesy, never a failure
        log.info("could not write the lock file beside %s: %s", stat.file_id, exc)


async def remove_lock_file(storage: Storage, backend_id: str, name: str) -> None:
    """Remove the lock file of ours for document ``backend_id`` beside it under ``name``; a
    desktop client's lock file, or ours for another document, is never touched."""
    if _extension(name) not in ODF_EXTENSIONS or not _can_exist(libreoffice_lock_name(name)):
        return
    try:
        found = await storage.find_sibling(backend_id, libreoffice_lock_name(name))
        if found is None:
            return
        if parse_own_file_id(await _read_small(storage, found.file_id)) == backend_id:
            await storage.delete(found.file_id)
    except NotFound:
        return
    except (WopiError, OSError) as exc:
        log.info("could not remove the lock file beside %s: %s", backend_id, exc)


async def _remove_orphan(storage: Storage, backend_id: str, folder: str, name: str) -> None:
    """Remove our lock file of the deleted document ``backend_id`` once named ``name``."""
    if _extension(name) not in ODF_EXTENSIONS or not _can_exist(libreoffice_lock_name(name)):
        return
    lock_name = libreoffice_lock_name(name)
    try:
        found = await storage.resolve(f"{folder}/{lock_name}" if folder else lock_name)
        if parse_own_file_id(await _read_small(storage, found.file_id)) == backend_id:
            await storage.delete(found.file_id)
    except NotFound:
        return
    except (WopiError, OSError) as exc:
        log.info("could not remove the lock file of %s: %s", backend_id, exc)


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


async def _lock_state(storage: Storage, locks: LockStore, backend_id: str) -> tuple[str, bool]:
    """The document's name now and whether a WOPI lock holds it now (``""``: it is gone)."""
    try:
        stat = await storage.stat(backend_id)
    except NotFound:
        return "", False
    return stat.name, bool(await locks.get(stat.identity))


async def follow_wopi_lock(
    storage: Storage,
    locks: LockStore,
    backend_id: str,
    user: str,
    *,
    writes: bool = True,
    old_names: frozenset[str] = frozenset(),
    last_seen: FileStat | None = None,
) -> frozenset[str]:
    """Make our lock files of a document agree with its WOPI lock as the lock store has it
    now: one beside its current name while it is locked (when ``writes``: its app keeps lock
    files), none beside it otherwise, none beside a name it had (``old_names``).

    The state is read when the work runs, not when it was asked for, and read again after:
    when it changed meanwhile (an Unlock or a Rename on another instance), the work is done
    again for the new state. Whichever instance acts last thus acts on the last state, so
    Lock on one instance, Rename on a second and Unlock on the first leave no lock file.
    A document deleted meanwhile loses ours beside the names it was last seen under
    (``last_seen``, ``old_names``). When the state kept changing under it, the names still to
    clean are returned, for the caller to run it again later; else an empty set.
    """
    seen: set[str] = set()
    for _ in range(4):
        name, locked = await _lock_state(storage, locks, backend_id)
        # a name this run saw before, and may have written beside, is an old name now
        old_names |= seen - {name}
        if not name:
            if last_seen is not None:
                for gone in old_names | seen | {last_seen.name}:
                    await _remove_orphan(storage, backend_id, last_seen.folder, gone)
            return frozenset()
        for old in old_names - {name}:
            await remove_lock_file(storage, backend_id, old)
        if locked and writes:
            stat = await storage.stat(backend_id)
            seen.add(stat.name)
            await write_lock_file(storage, backend_id, stat, user)
        elif not locked:
            await remove_lock_file(storage, backend_id, name)
        if await _lock_state(storage, locks, backend_id) == (name, locked):
            return frozenset()
        seen.add(name)
    return frozenset(old_names | seen)


async def sweep_stale_lock_files(storage: Storage, locks: LockStore) -> int:
    """Remove the lock files of ours on ``storage`` that no WOPI lock backs (the document is
    gone, renamed, or unlocked); desktop clients' lock files are never touched."""
    removed = 0
    for lock_id in await storage.lock_file_ids():
        try:
            file_id = parse_own_file_id(await _read_small(storage, lock_id))
            if file_id is None:
                continue
            lock_stat = await storage.stat(lock_id)
            try:
                document = await storage.stat(file_id)
            except NotFound:
                document = None
            if (
                document is not None
                and libreoffice_lock_name(document.name) == lock_stat.name
                and await locks.get(document.identity)
            ):
                continue
            await storage.delete(lock_id)
            removed += 1
        except (WopiError, OSError) as exc:
            log.info("could not check the lock file %s: %s", lock_id, exc)
    if removed:
        log.info("storage %s: removed %d lock files no WOPI lock backs", storage.name, removed)
    return removed


Job = Callable[[], Awaitable[None]]
DRAIN_SECONDS = 5.0
SETTLE_SECONDS = 0.1


class LockFileWriter:
    """Lock-file work done after the answer, in order per file, latest wish first.

    Each file (keyed by its lock identity) has at most one worker. It waits
    :data:`SETTLE_SECONDS` before doing the latest job submitted, and a job submitted while
    another waits replaces it: a lock released again within that time never touches the
    storage beyond one look, a burst of Lock/Unlock cycles costs one write and one removal at
    most, and the file always ends in the state of the last WOPI lock operation, well within
    a second of it.
    """

    def __init__(self) -> None:
        self._wanted: dict[str, Job] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str, job: Job) -> None:
        self._wanted[key] = job
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._run(key))

    async def _run(self, key: str) -> None:
        try:
            while True:
                await asyncio.sleep(SETTLE_SECONDS)
                job = self._wanted.pop(key, None)
                if job is None:
                    return
                try:
                    await job()
                except Exception:  # a courtesy file never takes the server down
                    log.exception("lock file work on %s failed", key)
        finally:
            self._workers.pop(key, None)

    async def drain(self) -> None:
        """Finish what is queued (at shutdown, for :data:`DRAIN_SECONDS` at most), then
        cancel whatever is still running."""
        pending = set(self._workers.values())
        if pending:
            await asyncio.wait(pending, timeout=DRAIN_SECONDS)
        for task in list(self._workers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
