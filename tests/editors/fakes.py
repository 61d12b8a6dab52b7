"""Fake WOPI editors: Collabora Online, OnlyOffice and Microsoft Office for the web.

None of these editors can run here, so each is a **fake** that sends what the real client
sends, read from its source: Collabora in :mod:`.fake_collabora` (CollaboraOnline/online
``wsd/wopi/WopiStorage.cpp``, ``wsd/DocumentBroker.cpp``, ``wsd/Storage.cpp``), OnlyOffice in
:mod:`.fake_onlyoffice` (ONLYOFFICE/server ``DocService/sources/wopiClient.js``,
``canvasservice.js``, ``DocsCoServer.js``, ``Common/config/default.json``), and Microsoft's
below (its WOPI documentation and validator). This module gathers them.
"""

from __future__ import annotations

from .fake_collabora import CollaboraServer, FakeCollabora
from .fake_onlyoffice import FakeOnlyOffice, OnlyOfficeServer
from .fakebase import Answer, ProofSigner, WopiEditorFake, wopisrc_of

__all__ = [
    "Answer",
    "CollaboraServer",
    "FakeCollabora",
    "FakeMicrosoft",
    "FakeOnlyOffice",
    "OnlyOfficeServer",
    "ProofSigner",
    "WopiEditorFake",
    "wopisrc_of",
]


class FakeMicrosoft(WopiEditorFake):
    """A fake Microsoft Office for the web, replaying WOPI validator-style flows: JSON-looking
    lock ids, UnlockAndRelock, GetLock, RefreshLock."""

    lock_id = '{"S":"ms-lock-1","F":0,"E":2,"M":"Word"}'
    new_lock_id = '{"S":"ms-lock-2","F":0,"E":2,"M":"Word"}'
