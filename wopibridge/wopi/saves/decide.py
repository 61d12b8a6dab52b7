"""The one place that decides what happens to a save: where its bytes land, and what the editor
is answered.

A save is *final* when the editor will not send it again after a refusal (an exit save; every
OnlyOffice save, see :mod:`.hints`). A refusal of a final save would lose the edits (Collabora
stops the document) or turn them stale (OnlyOffice keeps them as "forgotten" and saves them,
unlocked, at the end of the next session, over whatever changed meanwhile). So a final save that
cannot land is read to its end and kept first, then answered **200** with the file's unchanged
``LastModifiedTime``: the editor lets go, nothing is replayed, and the user is told at their next
open. Only when the copy cannot be kept (its quota, no room) is it refused, with 413, so that the
editor holds on to it (Collabora: read-only, "save too large"; OnlyOffice: "forgotten").

A save that is not final comes from an editor with a person in front of it who can resolve a
conflict: Collabora's 1010 dialog ("Overwrite" or reload) stays for that.

| case | not final: kept? → answer | final: kept → answer (not kept → answer) |
|---|---|---|
| no lock sent, the file locked or not empty | no → 409 with the lock | no → 409 with the lock |
| timestamp mismatch | no → 409 1010 | yes → 200 (413) |
| lost lock, the editor saw the current file | relock and write | relock and write |
| lost lock otherwise | yes → 409, ``X-WOPI-Lock: ""`` | yes → 200 (413) |
| foreign lock | yes → 409, ``X-WOPI-Lock: <lock>`` | yes → 200 (413) |
| changed in storage during the write | yes → 409 1010 (409 without a timestamp) | yes → 200 (413) |
| storage lock | yes → 423 | yes → 200 (413) |
| disk full or quota | yes → 413 | yes → 200 (413) |
| storage unreachable or other failure | yes → its status (503, …) | yes → 200 (413) |

"The editor saw the current file": the file is unlocked (the lock expired), the editor sends a
lock id and either a timestamp equal to the file's ``LastModifiedTime`` or, as Collabora's
"Overwrite" does, its flags without a timestamp. Nobody else holds the file and the user asked
for this content, so the lock is taken again for the editor's lock id and the save lands; the
lock-mismatch dialog would otherwise come back after every "Overwrite". A request without the
editors' flags (Microsoft's validator, Office) is not rescued: it gets the 409 WOPI asks for.
A request with no lock at all never held the file: nothing of it is at stake, it gets the 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Case(StrEnum):
    """Why a save does not simply land."""

    NO_LOCK_GIVEN = "no lock sent"
    TIMESTAMP_MISMATCH = "timestamp mismatch"
    LOST_LOCK_CURRENT = "lost lock, the editor saw the current file"
    LOST_LOCK = "lost lock"
    FOREIGN_LOCK = "foreign lock"
    CHANGED_DURING_WRITE = "changed in storage during the write"
    STORAGE_LOCK = "storage lock"
    FULL = "disk full or quota"
    OTHER = "storage unreachable or other failure"


class Answer(StrEnum):
    """What the editor is told."""

    WRITE = "write the save"
    KEPT = "200 with the file unchanged"
    DOCUMENT_CHANGED = "409 1010"
    LOCK_MISMATCH = "409 with X-WOPI-Lock"
    STORAGE_ERROR = "the storage's own status"
    TOO_LARGE = "413"


@dataclass(frozen=True, slots=True)
class Verdict:
    """``keep``: read the body to its end and keep it before answering. ``answer``: what the
    editor is told when the copy was kept (or need not be), ``unkept``: when it could not be."""

    keep: bool
    answer: Answer
    unkept: Answer
    relock: bool = False

    @property
    def write(self) -> bool:
        return self.answer is Answer.WRITE


_WRITE = Verdict(keep=False, answer=Answer.WRITE, unkept=Answer.WRITE)
_RELOCK = Verdict(keep=False, answer=Answer.WRITE, unkept=Answer.WRITE, relock=True)
_FINAL = Verdict(keep=True, answer=Answer.KEPT, unkept=Answer.TOO_LARGE)

#: Saves that are not final: a person can still resolve the refusal.
_NO_LOCK = Verdict(keep=False, answer=Answer.LOCK_MISMATCH, unkept=Answer.LOCK_MISMATCH)

LIVE: dict[Case, Verdict] = {
    Case.NO_LOCK_GIVEN: _NO_LOCK,
    Case.TIMESTAMP_MISMATCH: Verdict(False, Answer.DOCUMENT_CHANGED, Answer.DOCUMENT_CHANGED),
    Case.LOST_LOCK_CURRENT: _RELOCK,
    Case.LOST_LOCK: Verdict(True, Answer.LOCK_MISMATCH, Answer.LOCK_MISMATCH),
    Case.FOREIGN_LOCK: Verdict(True, Answer.LOCK_MISMATCH, Answer.LOCK_MISMATCH),
    Case.CHANGED_DURING_WRITE: Verdict(True, Answer.DOCUMENT_CHANGED, Answer.DOCUMENT_CHANGED),
    Case.STORAGE_LOCK: Verdict(True, Answer.STORAGE_ERROR, Answer.STORAGE_ERROR),
    Case.FULL: Verdict(True, Answer.TOO_LARGE, Answer.TOO_LARGE),
    Case.OTHER: Verdict(True, Answer.STORAGE_ERROR, Answer.STORAGE_ERROR),
}

#: Final saves: kept and let go, refused only when they cannot be kept.
FINAL: dict[Case, Verdict] = {
    **{case: _FINAL for case in Case},
    Case.NO_LOCK_GIVEN: _NO_LOCK,
    Case.LOST_LOCK_CURRENT: _RELOCK,
}


def decide(case: Case | None, *, final: bool) -> Verdict:
    """The verdict for a save in ``case`` (``None``: nothing stands in its way)."""
    if case is None:
        return _WRITE
    return (FINAL if final else LIVE)[case]
