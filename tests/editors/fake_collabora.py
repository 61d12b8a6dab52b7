"""A **fake** Collabora Online (coolwsd), following CollaboraOnline/online as of 2025/2026.

One :class:`CollaboraServer` holds the loaded documents (``DocumentBroker``), one per WOPISrc;
each :class:`FakeCollabora` is one view of one of them (``ClientSession``). What each part
follows:

- lock id: ``"cool-lock"`` + 8 hex characters, made once per document and shared by all its
  views (``LockContext::initSupportsLocks``, ``wsd/Storage.cpp``). LOCK is sent after
  CheckFileInfo and GetFile, for an editable view only; a failed LOCK turns that view
  read-only and shows ``X-WOPI-LockFailureReason`` (``WopiStorage::updateLockState``). The
  lock is refreshed by sending LOCK again every ``storage.wopi.locking.refresh`` = 900 s
  (``LockContext::needsRefresh``) and released by UNLOCK when the document unloads.
- every request: the token in the query **and** ``Authorization: Bearer``
  (``Authorization::authorizeRequest``), ``X-COOL-WOPI-ServerId``
  (``WopiStorage::initHttpRequest``), proof headers (``GetProofHeaders``).
- PutFile (``WopiStorage::uploadLocalFileToStorageAsync``): ``X-WOPI-Lock``,
  ``X-COOL-WOPI-IsModifiedByUser``, ``-IsAutosave``, ``-IsExitSave`` and, unless the save is
  forced (the conflict dialog's "Overwrite") or the last upload left the timestamp unknown,
  ``X-COOL-WOPI-Timestamp``. No ``X-LOOL-*``: ``storage.wopi.is_legacy_server`` is false by
  default. RenameFile goes through the same upload (the document is its body, with the lock);
  PutRelativeFile does too, with ``X-WOPI-Size`` and ``X-WOPI-SuggestedTarget`` and no lock.
- answers (``WopiStorage::handleUploadToStorageResponse`` then
  ``DocumentBroker::handleUploadToStorageResponse``): 200 → ``LastModifiedTime`` becomes the
  next timestamp (for Save As and Rename too), ``Name``/``Url`` read; 413 → every view
  read-only, "savetoolarge"; 401/403/404 → the view's token is dropped; 409 with
  ``COOLStatusCode`` 1010 → "document changed", any other 409 → "conflict", both the same
  dialog while a view is there, and with none left (an exit save) the document stops and the
  edits are gone; anything else fails the upload, retried (after a fresh CheckFileInfo) and
  given up after :data:`MAX_UPLOAD_FAILURES` at unload. After a rename every view reloads.
- autosave: after ``per_document.idlesave_duration_secs`` = 30 s idle, or every
  ``per_document.autosave_duration_secs`` = 300 s (``DocumentBroker::autoSave``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp

from .fakebase import Answer, ProofSigner, WopiEditorFake

REFRESH_SECONDS = 900
IDLE_SAVE_SECONDS = 30
AUTOSAVE_SECONDS = 300
MAX_UPLOAD_FAILURES = 5


class Upload(StrEnum):
    """``StorageBase::UploadResult::Result``."""

    OK = "ok"
    DOC_CHANGED = "doc changed"
    CONFLICT = "conflict"
    TOO_LARGE = "too large"
    UNAUTHORIZED = "unauthorized"
    FAILED = "failed"


def upload_result(answer: Answer) -> Upload:
    """``WopiStorage::handleUploadToStorageResponse``: an answer as Collabora reads it."""
    if answer.status == 200:
        return Upload.OK
    if answer.status == 413:
        return Upload.TOO_LARGE
    if answer.status in (401, 403, 404):
        return Upload.UNAUTHORIZED
    if answer.status == 409:
        try:
            body = answer.json()
        except ValueError:
            return Upload.CONFLICT
        if 1010 in (body.get("COOLStatusCode"), body.get("LOOLStatusCode")):
            return Upload.DOC_CHANGED
        return Upload.CONFLICT
    return Upload.FAILED


@dataclass
class CollaboraDocument:
    """One loaded document (``DocumentBroker`` with its ``WopiStorage`` and ``LockContext``)."""

    wopisrc: str
    lock_id: str = field(default_factory=lambda: "cool-lock" + secrets.token_hex(4))
    locked: bool = False
    #: ``FileInfo::_modifiedTime``; "" when unknown (then no timestamp is sent)
    last_modified: str = ""
    content: bytes = b""
    modified: bool = False
    read_only: bool = False
    #: the conflict dialog is showing
    conflict: bool = False
    upload_failures: int = 0
    #: what the views were told (``error: cmd=storage kind=…``)
    messages: list[str] = field(default_factory=list)
    views: list[FakeCollabora] = field(default_factory=list)
    #: why the document stopped, and what was lost with it
    stopped: str = ""
    lost: bytes | None = None


class CollaboraServer:
    """A fake coolwsd: its documents by WOPISrc, its process id (``X-COOL-WOPI-ServerId``)."""

    def __init__(self) -> None:
        self.server_id = secrets.token_hex(4)
        self.documents: dict[str, CollaboraDocument] = {}

    def view(
        self,
        http: aiohttp.ClientSession,
        app_url: str,
        token: str,
        signer: ProofSigner | None,
    ) -> FakeCollabora:
        return FakeCollabora(http, app_url, token, signer, server=self)

    def crash_documents(self) -> None:
        """The documents' processes crash: no UNLOCK is sent, and the next load of a document
        makes a new ``DocumentBroker`` with a new lock id, on the same server."""
        self.documents.clear()

    def crash(self) -> None:
        """The whole server dies; it comes back with a new process id (``X-COOL-WOPI-ServerId``)."""
        self.crash_documents()
        self.server_id = secrets.token_hex(4)


class FakeCollabora(WopiEditorFake):
    """One view of a document on a fake Collabora (``ClientSession``); see the module."""

    bearer = True

    def __init__(
        self,
        http: aiohttp.ClientSession,
        app_url: str,
        token: str,
        signer: ProofSigner | None,
        *,
        server: CollaboraServer | None = None,
    ) -> None:
        super().__init__(http, app_url, token, signer)
        self.server = server or CollaboraServer()
        self.editable = False
        self.lock_failure_reason = ""
        self.token_dropped = False
        self.info: dict[str, Any] = {}
        self.last_answer: Answer | None = None
        self.reloaded_from = ""

    def extra_headers(self) -> dict[str, str]:
        return {"X-COOL-WOPI-ServerId": self.server.server_id}

    @property
    def doc(self) -> CollaboraDocument:
        doc = self.server.documents.get(self.wopisrc)
        if doc is None:
            doc = self.server.documents[self.wopisrc] = CollaboraDocument(self.wopisrc)
        return doc

    @property
    def lock_id(self) -> str:
        return self.doc.lock_id

    @property
    def last_modified(self) -> str:
        return self.doc.last_modified

    @last_modified.setter
    def last_modified(self, value: str) -> None:
        self.doc.last_modified = value

    # -- load ----------------------------------------------------------------------------

    async def open(self) -> dict[str, Any]:
        """``DocumentBroker::load``: CheckFileInfo, GetFile (first view), then LOCK."""
        doc = self.doc
        info = self.info = await self.check_file_info()
        first = not doc.views
        doc.views.append(self)
        if first:
            doc.last_modified = info.get("LastModifiedTime", "")
            doc.content = await self.get_file()
        self.editable = bool(info.get("UserCanWrite"))
        if self.editable and info.get("SupportsLocks") and not doc.locked:
            answer = await self.override("LOCK", **{"X-WOPI-Lock": doc.lock_id})
            if answer.status == 200:
                doc.locked = True
            else:
                self.editable = False
                self.lock_failure_reason = answer.headers.get("X-WOPI-LockFailureReason", "")
        return info

    async def refresh(self) -> Answer:
        """The lock refresh every 900 s: LOCK again with the same id
        (``DocumentBroker::refreshLock``)."""
        return await self.override("LOCK", **{"X-WOPI-Lock": self.lock_id})

    # -- edit and save ---------------------------------------------------------------------

    def edit(self, content: bytes) -> None:
        assert self.editable and not self.doc.read_only, "this view is read-only"
        self.doc.content = content
        self.doc.modified = True

    async def save(
        self,
        data: bytes | None = None,
        *,
        overwrite: bool = False,
        exit_save: bool = False,
        autosave: bool = True,
    ) -> Answer:
        """One upload of the document (``WopiStorage::uploadLocalFileToStorageAsync``) and what
        Collabora makes of its answer (``DocumentBroker::handleUploadToStorageResponse``)."""
        doc = self.doc
        if data is not None:
            doc.content, doc.modified = data, True
        headers = {
            "X-WOPI-Lock": doc.lock_id,
            "X-COOL-WOPI-IsModifiedByUser": "true" if doc.modified else "false",
            "X-COOL-WOPI-IsAutosave": "true" if autosave else "false",
            "X-COOL-WOPI-IsExitSave": "true" if exit_save else "false",
        }
        if exit_save:
            headers["Connection"] = "close"
        if not overwrite and doc.last_modified:
            headers["X-COOL-WOPI-Timestamp"] = doc.last_modified
        answer = self.last_answer = await self.put_file(doc.content, **headers)
        self._after_upload(answer, exit_save=exit_save)
        return answer

    async def overwrite(self) -> Answer:
        """The conflict dialog's "Overwrite": the same document, forced (no timestamp)."""
        assert self.doc.conflict, "no conflict dialog is showing"
        self.doc.conflict = False
        return await self.save(overwrite=True, autosave=False)

    def _after_upload(self, answer: Answer, *, exit_save: bool) -> Upload:
        doc = self.doc
        result = upload_result(answer)
        if result is Upload.OK:
            doc.last_modified = answer.json().get("LastModifiedTime", "")
            doc.modified = False
            doc.upload_failures = 0
        elif result is Upload.TOO_LARGE:
            doc.read_only = True
            doc.messages.append("error: cmd=storage kind=savetoolarge")
        elif result is Upload.UNAUTHORIZED:
            self.token_dropped = True
            doc.messages.append("error: cmd=storage kind=saveunauthorized")
        elif result is Upload.FAILED:
            doc.upload_failures += 1
            doc.messages.append("error: cmd=storage kind=savefailed")
        else:
            live = [view for view in doc.views if not (exit_save and view is self)]
            if live:
                doc.conflict = True
                doc.messages.append("error: cmd=storage kind=documentconflict")
            else:  # no client can resolve it: the document stops, the edits with it
                doc.stopped, doc.lost = "conflict", doc.content
        return result

    async def rename(self, name: str) -> Answer:
        """RenameFile through the upload path: the document is the body, with the lock; after
        it, every view reloads from the ``Url`` it answered."""
        doc = self.doc
        headers = {
            "X-WOPI-Lock": doc.lock_id,
            "X-WOPI-RequestedName": name.encode("utf-7").decode("ascii"),
            "Content-Type": "application/octet-stream",
        }
        answer = await self.override_with_body("RENAME_FILE", doc.content, headers)
        if answer.status == 200:
            body = answer.json()
            doc.last_modified = body.get("LastModifiedTime", "")
            for view in doc.views:  # every view closes and loads the renamed document again
                reload = await view.call("GET", url=body["Url"])
                view.reloaded_from = body["Url"]
                view.info = reload.json() if reload.status == 200 else {}
        return answer

    async def override_with_body(
        self, override: str, data: bytes, headers: dict[str, str]
    ) -> Answer:
        return await self.call("POST", "", {"X-WOPI-Override": override, **headers}, data)

    async def save_as(self, name: str, data: bytes) -> Answer:
        """PutRelativeFile: no lock, ``X-WOPI-Size``, the name in UTF-7; its 200 answer's
        ``LastModifiedTime`` becomes this document's next timestamp."""
        headers = {
            "X-WOPI-Size": str(len(data)),
            "X-WOPI-SuggestedTarget": name.encode("utf-7").decode("ascii"),
            "Content-Type": "application/octet-stream",
        }
        answer = await self.override_with_body("PUT_RELATIVE", data, headers)
        if answer.status == 200:
            self.doc.last_modified = answer.json().get("LastModifiedTime", "")
        return answer

    # -- unload --------------------------------------------------------------------------

    async def close(self) -> Answer | None:
        """The view leaves. The last one unloads the document
        (``DocumentBroker::autoSaveAndStop``): an exit save when it is modified (retried after
        a fresh CheckFileInfo, given up after :data:`MAX_UPLOAD_FAILURES`), then UNLOCK.
        Returns the UNLOCK answer."""
        doc = self.doc
        if self in doc.views:
            doc.views.remove(self)
        if doc.views:
            return None
        while doc.modified and not doc.stopped and not doc.read_only:
            result = upload_result(await self.save(exit_save=True, autosave=False))
            if result is not Upload.FAILED:
                break
            if doc.upload_failures >= MAX_UPLOAD_FAILURES:
                doc.stopped, doc.lost = "upload failed", doc.content
                break
            await self.call("GET")  # a fresh CheckFileInfo before the retry
        answer = None
        if doc.locked and not self.token_dropped:
            answer = await self.override("UNLOCK", **{"X-WOPI-Lock": doc.lock_id})
            doc.locked = False
        self.server.documents.pop(self.wopisrc, None)
        return answer
