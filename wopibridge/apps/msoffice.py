"""Microsoft 365 / Office Online Server: the reference WOPI client.

Microsoft signs every request, so ``proof_keys = "require"`` is the setting to use with it in
production. ``ClosePostMessage`` makes its close button post ``UI_Close`` to the host page.
Its *Version History* opens CheckFileInfo's ``FileVersionUrl`` (the host's versions page,
:mod:`wopibridge.opening.history`), which the WOPI layer sets for the apps that open it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wopibridge.apps.office import OfficeApp
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat


class MsOfficeApp(OfficeApp):
    kind = "msoffice"
    draws_watermark = False
    #: *Version History* opens ``FileVersionUrl`` in a new tab (the host's versions page).
    opens_version_url = True

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        info: dict[str, Any] = {
            "BreadcrumbBrandName": "wopibridge",
            "ClosePostMessage": True,
        }
        if token.secure:
            # Microsoft's own names: no download or opening in a desktop app, no copying or
            # printing in the client, nothing of the document kept in the browser's cache
            info["RestrictedWebViewOnly"] = True
            info["ProtectInClient"] = True
            info["DisableBrowserCachingOfUserContent"] = True
        return info
