"""OnlyOffice Document Server: ``Word``/``Excel``/``PowerPoint`` discovery apps with
``<name=PLACEHOLDER&>`` URLs, X-LOOL headers, lock id = docId, RefreshLock every 10 minutes.

OnlyOffice caches documents by ``Version``/``LastModifiedTime`` (the foundation changes both on
every write) and treats ``Size == 0`` as a new file, which it fills through the ``editnew``
action chosen for 0-byte files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..storage.base import FileStat
from ..tokens import AccessToken
from .office import OfficeApp


class OnlyOfficeApp(OfficeApp):
    kind = "onlyoffice"

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {"FileNameMaxLength": 250}
