"""Stand-ins for the test documents the plan names but Microsoft does not publish.

``TestCases.xml`` refers to resources such as ``WordSimpleDocument`` (files in the validator's
own build, not in its repository). The tests only need distinct, valid documents of the right
type: these are small Office Open XML packages built here, deterministically (fixed zip
timestamps), so the same resource always has the same bytes and content comparisons work.
``ZeroByteFile`` is empty, as its name says.
"""

from __future__ import annotations

import io
import zipfile
from functools import cache

_CONTENT_TYPES = {
    "docx": (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    "xlsx": (
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ),
}

_WORD_BODY = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body>{paragraphs}</w:body></w:document>"
)
_XLSX_BODY = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    "<sheets/></workbook>"
)

#: Paragraph texts of each Word stand-in: blank, one paragraph, several with a table-ish body.
_WORD_TEXT = {
    "WordBlankDocument": [],
    "WordSimpleDocument": ["A simple document for the WOPI conformance runner."],
    "WordComplexDocument": [
        f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 8 for i in range(1, 41)
    ],
}


def _package(kind: str, main_xml: str) -> bytes:
    part, content_type = _CONTENT_TYPES[kind]
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{part}" ContentType="{content_type}"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/officeDocument" Target="{part}"/></Relationships>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("[Content_Types].xml", types), ("_rels/.rels", rels), (part, main_xml)):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


@cache
def document(resource_id: str) -> bytes:
    """The bytes of a plan resource; ``KeyError`` for a resource without a stand-in."""
    if resource_id in ("ZeroByteFile", "WordZeroByteDocument", "ZeroByteOfficeDocument"):
        return b""
    if resource_id in _WORD_TEXT:
        paragraphs = "".join(
            f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in _WORD_TEXT[resource_id]
        )
        return _package("docx", _WORD_BODY.format(paragraphs=paragraphs))
    if resource_id == "ExcelBlankWorkbook":
        return _package("xlsx", _XLSX_BODY)
    raise KeyError(resource_id)
