"""A **fake** ONLYOFFICE Document Server (DocService), following ONLYOFFICE/server.

One :class:`OnlyOfficeServer` holds its cache of documents by docId (the task results and the
"forgotten" store); each :class:`FakeOnlyOffice` is one editor's session. What each part follows:

- lock id: the docId, i.e. the file id at the end of WOPISrc, the same on every open
  (``wopiClient.createDocId``; ``preOpen``: a deterministic lock id "to fix issues with
  forgotten openings").
- order: CheckFileInfo, then LOCK while the editor is prepared (``prepareDocumentForEditing``
  → ``preOpen`` → ``lock``), then GetFile with ``X-WOPI-MaxExpectedSize`` =
  ``FileConverter.converter.maxDownloadBytes`` = 104857600 (``wopiUtils.getWopiFileUrl``). A
  failed LOCK opens the document in view mode instead (``retryInViewMode``).
- refresh: REFRESH_LOCK every ``wopi.refreshLockInterval`` = 10 min (``default.json``).
- every request (``wopiUtils.fillStandardHeaders``): ``X-WOPI-TimeStamp`` always;
  ``X-WOPI-Proof``/``X-WOPI-ProofOld`` only when ``wopi.privateKey`` **and**
  ``wopi.privateKeyOld`` are both set (both empty by default); ``X-WOPI-ClientVersion``,
  ``-CorrelationId``, ``-SessionId``; no ``Authorization`` header (it is commented out).
  ``X-WOPI-SessionContext`` on CheckFileInfo only, when given. The discovery document lists a
  ``<proof-key>`` only when both public keys are set (``wopiClient.discovery``).
- save (``wopiClient.putFile``, ``canvasservice.processWopiPutFile``): once, when the last
  editor left (``savetimeoutdelay`` 5 s) or on a forced save; ``X-WOPI-Lock``,
  ``X-WOPI-Editors``, ``X-LOOL-WOPI-IsModifiedByUser``/``-IsAutosave``/``-IsExitSave`` and
  ``X-LOOL-WOPI-Timestamp`` when a LastModifiedTime is known (the open's CheckFileInfo, then
  each 2xx answer's ``LastModifiedTime``). Any other answer: the result goes into the
  "forgotten" store and the file is unlocked (``DocsCoServer``). The next open of a document
  whose cache was kept (``checkAndInvalidateCache`` drops it only when an unlock was recorded
  and the file's Version or LastModifiedTime changed) warns "File not assembled"
  (``endAuth``) and saves that copy when the session ends (``closeDocument``), with the
  timestamp the cache holds.
- rename (``wopiClient.renameFile``): RENAME_FILE with the lock and ``X-WOPI-RequestedName`` in
  UTF-7, no body; it reads ``Name`` (an empty body means the requested name).
- Save As and conversions (``putRelativeFile``): PUT_RELATIVE, ``X-WOPI-SuggestedTarget`` in
  UTF-7, ``X-WOPI-FileConversion`` when converting, no lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from .fakebase import Answer, ProofSigner, WopiEditorFake, ticks_now

MAX_DOWNLOAD_BYTES = 104857600
REFRESH_SECONDS = 600
CLIENT_VERSION = "9.0.0.0"


@dataclass
class CachedDocument:
    """What the Document Server keeps of a docId between sessions."""

    lock_id: str
    #: the LastModifiedTime its saves send (commonInfo, then the modified markers)
    timestamp: str
    version: str
    content: bytes = b""
    modified: bool = False
    forgotten: bytes | None = None
    #: an UNLOCK went through after a failed save (the cache may then be dropped)
    unlock_marker: bool = False


class OnlyOfficeServer:
    """A fake Document Server: its keys and its cache by docId.

    ``private_key``/``private_key_old``: ``wopi.privateKey``/``wopi.privateKeyOld``; requests
    are signed only when both are set."""

    def __init__(
        self, private_key: ProofSigner | None = None, private_key_old: ProofSigner | None = None
    ) -> None:
        self.signer: ProofSigner | None = None
        if private_key is not None and private_key_old is not None:
            self.signer = private_key
            self.signer.old = private_key_old if private_key_old is not private_key else None
        self.cache: dict[str, CachedDocument] = {}

    def editor(
        self, http: aiohttp.ClientSession, app_url: str, token: str, **kwargs: Any
    ) -> FakeOnlyOffice:
        return FakeOnlyOffice(http, app_url, token, self.signer, server=self, **kwargs)


class FakeOnlyOffice(WopiEditorFake):
    """One editor's session on a fake OnlyOffice Document Server; see the module."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        app_url: str,
        token: str,
        signer: ProofSigner | None,
        *,
        server: OnlyOfficeServer | None = None,
        session_context: str = "",
    ) -> None:
        super().__init__(http, app_url, token, signer)
        # a fake made with a signer stands for a server that has both private keys set
        self.server = server or OnlyOfficeServer(signer, signer)
        self.session_context = session_context
        self.session_id = uuid.uuid4().hex
        self.editable = False
        self.not_assembled = False
        self.info: dict[str, Any] = {}

    def extra_headers(self) -> dict[str, str]:
        return {
            "X-WOPI-ClientVersion": CLIENT_VERSION,
            "X-WOPI-CorrelationId": str(uuid.uuid4()),
            "X-WOPI-SessionId": self.session_id,
            "X-WOPI-TimeStamp": str(ticks_now()),
        }

    @property
    def lock_id(self) -> str:
        return self.wopisrc.rstrip("/").rsplit("/", 1)[-1]

    @property
    def cached(self) -> CachedDocument:
        return self.server.cache[self.lock_id]

    # -- open ----------------------------------------------------------------------------

    async def open(self) -> dict[str, Any]:
        """``wopiClient.checkFileInfo``, ``checkAndInvalidateCache``, ``preOpen`` (LOCK), then
        GetFile (``wopiUtils.getWopiFileUrl``) or the forgotten copy (``endAuth``)."""
        headers = {"X-WOPI-SessionContext": self.session_context} if self.session_context else {}
        answer = await self.call("GET", "", headers)
        assert answer.status == 200, answer
        info = self.info = answer.json()
        cached = self.server.cache.get(self.lock_id)
        changed = cached is not None and (
            cached.version != info.get("Version") or cached.timestamp != info["LastModifiedTime"]
        )
        if cached is not None and cached.unlock_marker and changed:
            cached = None  # checkAndInvalidateCache: the cache is dropped, opened afresh
        if cached is None:
            cached = CachedDocument(self.lock_id, info["LastModifiedTime"], info.get("Version", ""))
            self.server.cache[self.lock_id] = cached
        wants_edit = bool(info.get("UserCanWrite") or info.get("SupportsUpdate"))
        if wants_edit and info.get("SupportsLocks"):
            lock = await self.override("LOCK", **{"X-WOPI-Lock": self.lock_id})
            self.editable = lock.status == 200
        else:
            self.editable = wants_edit
        if cached.forgotten is not None:
            self.not_assembled = True  # "File not assembled": the forgotten copy is loaded
            cached.content, cached.modified = cached.forgotten, True
        else:
            cached.content = await self.get_file(
                **{"X-WOPI-MaxExpectedSize": str(MAX_DOWNLOAD_BYTES)}
            )
        return info

    async def refresh(self) -> Answer:
        """REFRESH_LOCK, every ``wopi.refreshLockInterval`` (``wopiClient.lock``)."""
        return await self.override("REFRESH_LOCK", **{"X-WOPI-Lock": self.lock_id})

    # -- edit and save ---------------------------------------------------------------------

    def edit(self, content: bytes) -> None:
        assert self.editable, "opened in view mode"
        self.cached.content, self.cached.modified = content, True

    async def save(self, data: bytes | None = None, *, exit_save: bool = False) -> Answer:
        """``processWopiPutFile``: one PutFile; anything but 2xx is "forgotten", then UNLOCK."""
        cached = self.server.cache.setdefault(self.lock_id, CachedDocument(self.lock_id, "", ""))
        if data is not None:
            cached.content, cached.modified = data, True
        headers = {
            "X-WOPI-Lock": cached.lock_id,
            "X-WOPI-Editors": self.info.get("UserId", "") or "uid-1",
            "X-LOOL-WOPI-IsModifiedByUser": "true",
            "X-LOOL-WOPI-IsAutosave": "false",
            "X-LOOL-WOPI-IsExitSave": "true" if exit_save else "false",
        }
        if cached.timestamp:
            headers["X-LOOL-WOPI-Timestamp"] = cached.timestamp
        answer = await self.put_file(cached.content, **headers)
        if 200 <= answer.status < 300:
            stamp = answer.json().get("LastModifiedTime") if answer.body else None
            if stamp:
                cached.timestamp = stamp
            cached.modified, cached.forgotten = False, None
            if exit_save:
                self.server.cache.pop(self.lock_id, None)
        else:
            cached.forgotten = cached.content
            unlock = await self.override("UNLOCK", **{"X-WOPI-Lock": cached.lock_id})
            cached.unlock_marker = unlock.status == 200
        return answer

    async def close(self) -> Answer:
        """The last editor leaves (``DocsCoServer.closeDocument``): the save (when there are
        changes or a forgotten copy), then UNLOCK. Returns the UNLOCK answer."""
        cached = self.server.cache.get(self.lock_id)
        if cached is not None and (cached.modified or cached.forgotten is not None):
            await self.save(exit_save=True)
        return await self.override("UNLOCK", **{"X-WOPI-Lock": self.lock_id})

    async def rename(self, name: str) -> Answer:
        """``wopiClient.renameFile``: the lock, the name in UTF-7, no body."""
        requested = name.encode("utf-7").decode("ascii")
        return await self.override(
            "RENAME_FILE", **{"X-WOPI-Lock": self.lock_id, "X-WOPI-RequestedName": requested}
        )

    async def save_as(self, target: str, data: bytes, *, conversion: bool = False) -> Answer:
        """``wopiClient.putRelativeFile``: no lock, the target in UTF-7."""
        headers = {"X-WOPI-SuggestedTarget": target.encode("utf-7").decode("ascii")}
        if conversion:
            headers["X-WOPI-FileConversion"] = "true"
        return await self.call("POST", "", {"X-WOPI-Override": "PUT_RELATIVE", **headers}, data)
