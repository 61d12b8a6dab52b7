"""OnlyOffice Document Server: ``Word``/``Excel``/``PowerPoint`` discovery apps with
``<name=PLACEHOLDER&>`` URLs, X-LOOL headers, lock id = docId, RefreshLock every 10 minutes.

OnlyOffice caches documents by ``Version``/``LastModifiedTime`` (the foundation changes both on
every write) and treats ``Size == 0`` as a new file, which it fills through the ``editnew``
action chosen for 0-byte files.
"""

from __future__ import annotations

from wopibridge.apps.office import OfficeApp


class OnlyOfficeApp(OfficeApp):
    """Everything OnlyOffice reads is common to the office apps (``FileNameMaxLength`` comes
    from the WOPI layer, which enforces it)."""

    kind = "onlyoffice"
