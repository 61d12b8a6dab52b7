"""OnlyOffice Document Server: ``Word``/``Excel``/``PowerPoint`` discovery apps with
``<name=PLACEHOLDER&>`` URLs, X-LOOL headers, lock id = docId, RefreshLock every 10 minutes.

OnlyOffice caches documents by ``Version``/``LastModifiedTime`` (the foundation changes both on
every write) and treats ``Size == 0`` as a new file, which it fills through the ``editnew``
action chosen for 0-byte files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wopibridge.apps.office import OfficeApp
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat


class OnlyOfficeApp(OfficeApp):
    """Almost everything OnlyOffice reads is common to the office apps (``FileNameMaxLength``
    comes from the WOPI layer, which enforces it). In secure view it reads ``DisablePrint``,
    ``HidePrintOption`` and ``CopyPasteRestrictions`` from the host's answer and review
    rights from ``UserCanReview``; it draws no WOPI watermark."""

    kind = "onlyoffice"
    draws_watermark = False

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {"UserCanReview": False} if token.secure else {}
