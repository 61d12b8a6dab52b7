"""Collabora Online: MIME-named discovery apps, ``cool.html?`` URLs, X-COOL headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wopibridge.apps.base import OpenRequest
from wopibridge.apps.office import OfficeApp
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat


class CollaboraApp(OfficeApp):
    """Collabora's ``urlsrc`` has no placeholders: the UI language goes in ``lang=`` and
    ``closebutton=1`` makes its close button send ``UI_Close`` to the host page."""

    kind = "collabora"
    reads_template_source = True

    async def editor_url(self, request: OpenRequest) -> str:
        url = await super().editor_url(request)
        lang = request.lang or self.config.lang
        extra = "&closebutton=1"
        if lang:
            extra += f"&lang={lang}"
        return url + extra

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {
            "IsUserLocked": False,
            "EnableInsertRemoteImage": False,
            "DownloadAsPostMessage": False,
            "EnableOwnerTermination": False,
            "UserExtraInfo": {},
        }
