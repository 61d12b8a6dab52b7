"""Microsoft 365 / Office Online Server: the reference WOPI client.

Full proof-key checking is mandatory for Microsoft, so ``proof_keys`` defaults to
``required``. ``ClosePostMessage`` makes its close button post ``UI_Close`` to the host page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..storage.base import FileStat
from ..tokens import AccessToken
from .office import OfficeApp


class MsOfficeApp(OfficeApp):
    kind = "msoffice"
    default_proof = "required"

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {
            "BreadcrumbBrandName": "wopibridge",
            "ClosePostMessage": True,
        }
