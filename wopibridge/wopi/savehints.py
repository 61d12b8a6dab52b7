"""What an editor tells wopibridge alongside a PutFile, in either header family.

Collabora sends ``X-COOL-WOPI-*``, older Collabora and OnlyOffice send ``X-LOOL-WOPI-*``; both
families are accepted everywhere (X-COOL wins when both are present). The timestamp drives the
"document changed in storage" protocol (status 1010): it is compared **as a string** with the
canonical ``LastModifiedTime`` of the stored file, and a mismatch writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wopibridge.errors import Conflict

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

    def check_timestamp(self, last_modified: str) -> None:
        """Raise :class:`DocumentChanged` when the editor's timestamp is not, character for
        character, the stored file's canonical ``LastModifiedTime``. No header, no check: that
        is how Collabora's "Overwrite" answer arrives."""
        if self.timestamp is not None and self.timestamp != last_modified:
            raise DocumentChanged()


def read_save_hints(headers: Mapping[str, str]) -> SaveHints:
    return SaveHints(
        timestamp=_header(headers, "Timestamp"),
        modified_by_user=_flag(headers, "IsModifiedByUser"),
        autosave=_flag(headers, "IsAutosave"),
        exit_save=_flag(headers, "IsExitSave"),
    )
