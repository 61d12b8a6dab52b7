"""The editor-app interface: what wopibridge needs to know about one editor.

Office editors (Collabora, OnlyOffice, Microsoft) speak WOPI themselves; bridged apps (CodiMD,
Etherpad) are served by wopibridge's bridge. Both answer the same open request, so the open
endpoints (``/wopi/iop/openinapp`` and ``/wopi/open``) only talk to this interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from wopibridge.security.tokens import AccessToken, Mode
from wopibridge.storage.base import FileStat


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """Everything an app needs to build its editor URL for one file and one user."""

    wopi_src: str
    stat: FileStat
    token: AccessToken
    access_token: str
    mode: Mode
    lang: str = ""
    #: The discovery action family wanted: ``view``, ``edit``, ``editnew`` or ``embedview``;
    #: empty means "from ``mode``" (``editnew`` for a 0-byte file opened for editing).
    action: str = ""

    @property
    def wanted_action(self) -> str:
        if self.action:
            return self.action
        if self.mode == "edit":
            return "editnew" if self.stat.size == 0 else "edit"
        return "view"


@runtime_checkable
class EditorApp(Protocol):
    name: str
    #: Served by wopibridge's bridge (CodiMD, Etherpad) rather than speaking WOPI itself.
    bridged: bool
    #: Fills an empty new file from CheckFileInfo's ``TemplateSource`` (Collabora); other
    #: apps get new files created with the template's content.
    reads_template_source: bool
    #: Opens CheckFileInfo's ``FileVersionUrl`` (Microsoft: its *Version History* opens the
    #: page in a new tab); other editors ask the host page by PostMessage instead, so their
    #: CheckFileInfo never pays for minting the link.
    opens_version_url: bool

    @property
    def load_timeout(self) -> int:
        """Seconds the host page waits for the editor's PostMessage handshake before it says
        the editor does not answer; 0 for editors that speak no PostMessage (the page is shown
        as soon as the frame has loaded)."""

    @property
    def lock_files(self) -> bool:
        """Whether a WOPI lock by this app writes a desktop (LibreOffice) lock file beside ODF
        files, so desktop users see who is editing. Read once at start."""

    def handles(self, extension: str) -> bool:
        """Whether this app opens files with this extension (``.odt``, lower case).

        Raises :class:`~wopibridge.errors.Unavailable` when the app cannot tell right now
        (its discovery was never reached), so a caller choosing an app can say why."""

    def can_edit(self, extension: str) -> bool:
        """Whether files with this extension can be edited, not only viewed."""

    def lists_action(self, extension: str, action: str) -> bool:
        """Whether the editor's discovery, as last loaded, has this very action (``editnew``,
        ``embedview``) for the extension; ``False`` when it was never loaded. No network."""

    async def editor_url(self, request: OpenRequest) -> str:
        """The URL the access token is form-POSTed to (with ``WOPISrc`` in it)."""

    def file_info(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        """Extra CheckFileInfo properties this editor reads."""
