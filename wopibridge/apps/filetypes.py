"""File types: extensions and the MIME types Collabora names its discovery apps by.

The table covers the office formats, so lookups do not depend on the platform's ``mimetypes``
database (which lacks most of them on minimal systems); anything else falls back to it.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping

#: MIME types of the office formats, so Collabora's MIME-named apps are found even where the
#: platform's ``mimetypes`` table does not know the extension.
OFFICE_MIME_TYPES: Mapping[str, str] = {
    "odt": "application/vnd.oasis.opendocument.text",
    "ott": "application/vnd.oasis.opendocument.text-template",
    "fodt": "application/vnd.oasis.opendocument.text-flat-xml",
    "odm": "application/vnd.oasis.opendocument.text-master",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "ots": "application/vnd.oasis.opendocument.spreadsheet-template",
    "fods": "application/vnd.oasis.opendocument.spreadsheet-flat-xml",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "otp": "application/vnd.oasis.opendocument.presentation-template",
    "fodp": "application/vnd.oasis.opendocument.presentation-flat-xml",
    "odg": "application/vnd.oasis.opendocument.graphics",
    "otg": "application/vnd.oasis.opendocument.graphics-template",
    "fodg": "application/vnd.oasis.opendocument.graphics-flat-xml",
    "odc": "application/vnd.oasis.opendocument.chart",
    "odf": "application/vnd.oasis.opendocument.formula",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "docm": "application/vnd.ms-word.document.macroEnabled.12",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    "xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    "xlsb": "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "potx": "application/vnd.openxmlformats-officedocument.presentationml.template",
    "ppsx": "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
    "pptm": "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
    "pdf": "application/pdf",
    "rtf": "text/rtf",
    "txt": "text/plain",
    "csv": "text/csv",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
}


def normalize_ext(extension: str) -> str:
    """``.ODT``, ``odt`` and ``.odt`` all become ``odt``."""
    return extension.strip().lstrip(".").lower()


def mime_type_of(extension: str) -> str:
    ext = normalize_ext(extension)
    known = OFFICE_MIME_TYPES.get(ext)
    if known:
        return known
    guessed, _ = mimetypes.guess_type(f"file.{ext}", strict=False)
    return guessed or ""
