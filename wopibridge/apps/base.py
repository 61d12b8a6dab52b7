"""The editor-app interface: what wopibridge needs to know about one editor.

Office editors (Collabora, OnlyOffice, Microsoft) speak WOPI themselves; bridged apps (CodiMD,
Etherpad) are served by wopibridge's bridge. Both answer the same open request, so the open
endpoints (``/wopi/iop/openinapp`` and ``/wopi/open``) only talk to this interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..storage.base import FileStat
from ..tokens import AccessToken, Mode


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """Everything an app needs to build its editor URL for one file and one user."""

    wopi_src: str
    stat: FileStat
    token: AccessToken
    access_token: str
    mode: Mode
    lang: str = ""


@runtime_checkable
class EditorApp(Protocol):
    name: str
    bridged: bool

    def handles(self, extension: str) -> bool:
        """Whether this app opens files with this extension (``.odt``, lower case)."""

    async def editor_url(self, request: OpenRequest) -> str:
        """The URL the access token is form-POSTed to (with ``WOPISrc`` in it)."""

    def file_info(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        """Extra CheckFileInfo properties this editor reads."""
