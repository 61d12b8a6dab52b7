"""Microsoft 365 / Office Online Server: the reference WOPI client.

Microsoft signs every request, so ``proof_keys = "require"`` is the setting to use with it in
production. ``ClosePostMessage`` makes its close button post ``UI_Close`` to the host page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..storage.base import FileStat
from ..tokens import AccessToken
from .office import OfficeApp


class MsOfficeApp(OfficeApp):
    kind = "msoffice"

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {
            "BreadcrumbBrandName": "wopibridge",
            "ClosePostMessage": True,
        }
