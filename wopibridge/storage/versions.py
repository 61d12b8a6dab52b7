"""Version history: the contract a storage implements to keep, list and restore the previous
contents of its files, and the rule that decides which previous contents are worth keeping.

A storage that keeps versions declares ``Capabilities.versions`` and implements
:class:`Versioned` beside :class:`~wopibridge.storage.base.Storage`.

Which saves keep the content they replace (``docs/versions.md``):

- a save without editor flags (a plain WOPI client, a bridged editor): always;
- the first save of an editing session (the content before the session): always;
- a save replacing the content of an *autosave* of the same session (same WOPI lock) made
  less than ``versions.autosave_window`` seconds after the run of coalesced autosaves began:
  not kept, the autosaves coalesce; every other save keeps it. So an exit save, a save the
  user asked for and each window's first autosave stay as versions once the next save lands.

The WOPI save path says what a save is by :func:`noting`, a context variable read by the
storage's write: that keeps the storage Protocol's write signature unchanged for every caller
that does not care (conflict copies, templates, bridged editors).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from wopibridge.storage.base import FileContent, FileStat, canonical_time

#: Kinds of save, from the editor's flags: ``auto`` (IsAutosave), ``exit`` (IsExitSave),
#: ``user`` (flags sent, neither of those), ``plain`` (no flags at all), ``restore``.
KINDS = ("auto", "exit", "user", "plain", "restore")


@dataclass(frozen=True, slots=True)
class SaveNote:
    """What one save was: who made it, what kind, in which session, and since when the run
    of autosaves it belongs to has been coalescing (``since``, seconds since the epoch)."""

    author: str = ""
    kind: str = "plain"
    session: str = ""
    at: float = 0.0
    since: float = 0.0

    def encode(self) -> bytes:
        return json.dumps(
            {
                "by": self.author,
                "kind": self.kind,
                "s": self.session,
                "at": self.at,
                "since": self.since,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> SaveNote | None:
        """The note read back; ``None`` for none or a damaged one (then the save is kept)."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(
                author=str(data.get("by", "")),
                kind=str(data.get("kind", "plain")),
                session=str(data.get("s", "")),
                at=float(data.get("at", 0.0)),
                since=float(data.get("since", 0.0)),
            )
        except (ValueError, TypeError, AttributeError):
            return None


def session_of(lock_id: str) -> str:
    """A short digest of the WOPI lock naming an editing session (never the lock itself)."""
    return hashlib.sha256(lock_id.encode()).hexdigest()[:16] if lock_id else ""


def kind_of(autosave: bool | None, exit_save: bool | None, modified_by_user: bool | None) -> str:
    """The kind of a save from the editor's flags (``None``: the flag was not sent)."""
    if autosave is None and exit_save is None and modified_by_user is None:
        return "plain"
    if exit_save:
        return "exit"
    if autosave:
        return "auto"
    return "user"


_NOTE: contextvars.ContextVar[SaveNote | None] = contextvars.ContextVar("save_note", default=None)


@contextlib.contextmanager
def noting(note: SaveNote) -> Iterator[None]:
    """Tell the storage what the saves inside the block are (see the module docstring)."""
    token = _NOTE.set(note)
    try:
        yield
    finally:
        _NOTE.reset(token)


def current_note(now: float | None = None) -> SaveNote:
    """The note of the save in progress; a plain save when the caller said nothing."""
    note = _NOTE.get()
    stamp = time.time() if now is None else now
    if note is None:
        return SaveNote(at=stamp, since=stamp)
    return SaveNote(note.author, note.kind, note.session, stamp, stamp)


def decide(previous: SaveNote | None, new: SaveNote, window: float) -> tuple[bool, SaveNote]:
    """Whether the save ``new`` keeps the content it replaces (written by ``previous``), and
    the note to store with the new content (its ``since`` carries a coalescing run on)."""
    coalesce = (
        previous is not None
        and previous.kind == "auto"
        and new.kind in ("auto", "exit", "user")
        and bool(new.session)
        and previous.session == new.session
        and new.at - previous.since < window
    )
    if coalesce:
        assert previous is not None
        return False, SaveNote(new.author, new.kind, new.session, new.at, previous.since)
    return True, new


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One kept previous content of a file."""

    version_id: str
    size: int
    mtime_ns: int
    author: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.version_id,
            "size": self.size,
            "last_modified": canonical_time(self.mtime_ns),
            "author": self.author,
        }


@dataclass(frozen=True, slots=True)
class VersionLimits:
    """How many, how old and how many bytes of versions one file keeps (0: no limit)."""

    max_count: int = 50
    max_age: int = 90 * 86400
    max_bytes: int = 1024**3
    autosave_window: int = 3600


class VersionEvents(Protocol):
    """Where a storage reports versions kept and dropped (the app's metrics)."""

    def kept(self) -> None: ...

    def dropped(self, reason: str, count: int) -> None: ...


class NoEvents:
    """Reports to nobody (tests, tools)."""

    def kept(self) -> None:
        return None

    def dropped(self, reason: str, count: int) -> None:
        return None


@runtime_checkable
class Versioned(Protocol):
    """The version calls of a storage declaring ``Capabilities.versions``."""

    async def list_versions(self, file_id: str) -> list[VersionInfo]:
        """The kept previous contents, newest first (``NotFound`` for an unknown file)."""

    async def open_version(self, file_id: str, version_id: str) -> FileContent:
        """The bytes of one version (``NotFound`` when it is not, or no longer, kept)."""

    async def restore_version(
        self, file_id: str, version_id: str, *, expected_version: str | None = None
    ) -> FileStat:
        """Make the version's content current, keeping the replaced content as the newest
        version (nothing is lost by a restore); ``VersionConflict`` when ``expected_version``
        no longer holds."""
