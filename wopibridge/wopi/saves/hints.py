"""What an editor tells the host alongside a PutFile, in either header family.

Current Collabora sends ``X-COOL-WOPI-*`` (and ``X-LOOL-WOPI-*`` too only when the site sets
its legacy-server option: ``WopiStorage::uploadLocalFileToStorageAsync``); OnlyOffice sends
``X-LOOL-WOPI-*`` (``wopiClient.js`` ``putFile``). Both families are read everywhere (X-COOL wins
when both are present). The timestamp drives the "document changed in storage" protocol
(status 1010): it is compared **as a string** with the canonical ``LastModifiedTime``.

:attr:`SaveHints.final` says whether the editor will send this save again if it is refused. An
exit save will not be: Collabora has no client left to show the conflict dialog to
(``DocumentBroker::handleUploadToStorageResponse`` stops the document). No OnlyOffice save
will be: any answer but 2xx moves the edits into its "forgotten" store and unlocks the file. It
is recognised by ``X-WOPI-Editors`` together with the ``X-LOOL-WOPI-`` flags: Office for the web
sends ``X-WOPI-Editors`` too (it is a WOPI header) but never the ``X-LOOL`` family, and Office
handles a refused save itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wopibridge.errors import Conflict
from wopibridge.storage.versions import SaveNote, kind_of, session_of

FAMILIES = ("X-COOL-WOPI-", "X-LOOL-WOPI-")

#: The body Collabora (COOLStatusCode) and its older releases (LOOLStatusCode) read.
DOCUMENT_CHANGED_BODY = {"COOLStatusCode": 1010, "LOOLStatusCode": 1010}


class DocumentChanged(Conflict):
    """The stored file is not the one the editor last saw: 409 with status code 1010."""

    def __init__(self) -> None:
        super().__init__(
            "The document was changed in storage since the editor loaded it",
            body=DOCUMENT_CHANGED_BODY,
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for family in FAMILIES:
        value = headers.get(family + name)
        if value is not None:
            return value
    return None


def _flag(headers: Mapping[str, str], name: str) -> bool | None:
    value = _header(headers, name)
    return None if value is None else value.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class SaveHints:
    """The editor's notes on one save; ``None`` where it said nothing."""

    timestamp: str | None = None
    modified_by_user: bool | None = None
    autosave: bool | None = None
    exit_save: bool | None = None
    #: OnlyOffice (``X-WOPI-Editors`` and ``X-LOOL-WOPI-IsExitSave``): no save is sent twice
    one_shot_editor: bool = False

    @property
    def final(self) -> bool:
        """The editor will not send this save again if it is refused."""
        return bool(self.exit_save) or self.one_shot_editor

    @property
    def speaks_timestamps(self) -> bool:
        """The save comes from an editor of the 1010 protocol (it sent the family's flags)."""
        return self.timestamp is not None or self.modified_by_user is not None

    def note(self, author: str, lock_id: str) -> SaveNote:
        """What this save is for the storage's version rule (``docs/versions.md``): its
        author, its kind from the flags, its editing session (the WOPI lock)."""
        kind = kind_of(self.autosave, self.exit_save, self.modified_by_user)
        return SaveNote(author, kind, session_of(lock_id))

    def timestamp_matches(self, last_modified: str) -> bool | None:
        """Whether the editor's timestamp is, character for character, the stored file's
        ``LastModifiedTime``; ``None`` when it sent none (Collabora's "Overwrite")."""
        if self.timestamp is None:
            return None
        return self.timestamp == last_modified


def read_save_hints(headers: Mapping[str, str]) -> SaveHints:
    return SaveHints(
        timestamp=_header(headers, "Timestamp"),
        modified_by_user=_flag(headers, "IsModifiedByUser"),
        autosave=_flag(headers, "IsAutosave"),
        exit_save=_flag(headers, "IsExitSave"),
        one_shot_editor="X-WOPI-Editors" in headers and "X-LOOL-WOPI-IsExitSave" in headers,
    )
