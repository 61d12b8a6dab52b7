"""What the bridge engine needs from an editor that does not speak WOPI.

A bridged app is an :class:`~wopibridge.apps.base.EditorApp` (so the open endpoints can offer
it) whose ``editor_url`` points back at wopibridge's ``/wopi/bridge/open``; the bridge then
talks to the editor through the methods below. Every method gets the one HTTP client session
the bridge owns. Editor failures raise :mod:`wopibridge.errors` exceptions: ``Unavailable``
when the editor cannot be reached or refuses the API key, ``PayloadTooLarge`` when it says the
document is too large.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aiohttp import ClientSession

from wopibridge.apps.base import EditorApp
from wopibridge.apps.bridgedconfig import BridgeAppConfig


@dataclass(slots=True)
class Loaded:
    """Where the editor keeps a loaded document, and what it needs to give it back.

    ``ref`` is the editor's own id (pad id, note id); ``meta`` holds small strings the editor
    client needs again at save time (e.g. whether the file ended with a newline).
    """

    ref: str
    meta: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class BridgedEditor(EditorApp, Protocol):
    config: BridgeAppConfig

    def handles(self, extension: str) -> bool:
        """Whether the app opens files with this extension (``.md``, lower case)."""

    async def load(self, http: ClientSession, docid: str, filename: str, content: bytes) -> Loaded:
        """Put ``content`` into the editor's document for ``docid`` (create or reset it)."""

    async def fetch(self, http: ClientSession, loaded: Loaded, filename: str) -> bytes:
        """The document's current content, as the bytes to store in the file."""

    async def revision(self, http: ClientSession, loaded: Loaded) -> str:
        """A value that changes whenever the document's content changes."""

    async def live_users(self, http: ClientSession, loaded: Loaded) -> int | None:
        """How many browsers are connected to the document now; ``None`` when unknown."""

    def edit_url(self, loaded: Loaded, user_name: str) -> str:
        """Where the browser edits the document."""

    async def view_url(
        self,
        http: ClientSession,
        docid: str,
        filename: str,
        content: bytes,
        live: Loaded | None,
        user_name: str,
    ) -> str:
        """Where the browser reads the document; ``live`` is the edited copy when one is open."""

    def info(self) -> Mapping[str, str]:
        """A short description for logs."""
