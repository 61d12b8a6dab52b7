"""Regenerate the built-in blank templates in ``wopibridge/wopi/blankfiles/``.

Each blank is written by the maintained library for its format, never by hand:
python-docx (.docx), openpyxl (.xlsx), python-pptx (.pptx), odfpy (.odt .ods .odp); .md and
.txt are one newline. Run from the repository root with those packages installed:

    python tools/make_blanks.py

The tests open every blank with the same libraries' readers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import docx
import openpyxl
import pptx
from odf.draw import Page
from odf.opendocument import (
    OpenDocumentPresentation,
    OpenDocumentSpreadsheet,
    OpenDocumentText,
)
from odf.style import MasterPage, PageLayout, PageLayoutProperties
from odf.table import Table, TableCell, TableColumn, TableRow
from odf.text import P

OUT = Path(__file__).resolve().parents[1] / "wopibridge" / "wopi" / "blankfiles"


def odt(path: Path) -> None:
    doc = OpenDocumentText()
    doc.text.addElement(P(text=""))
    doc.save(str(path))


def ods(path: Path) -> None:
    doc = OpenDocumentSpreadsheet()
    table = Table(name="Sheet1")
    table.addElement(TableColumn())
    row = TableRow()
    row.addElement(TableCell())
    table.addElement(row)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))


def odp(path: Path) -> None:
    doc = OpenDocumentPresentation()
    layout = PageLayout(name="Slide")
    layout.addElement(
        PageLayoutProperties(pagewidth="28cm", pageheight="15.75cm", printorientation="landscape")
    )
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    doc.presentation.addElement(Page(name="Slide1", masterpagename=master))
    doc.save(str(path))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    docx.Document().save(str(OUT / "blank.docx"))
    openpyxl.Workbook().save(str(OUT / "blank.xlsx"))
    pptx.Presentation().save(str(OUT / "blank.pptx"))
    odt(OUT / "blank.odt")
    ods(OUT / "blank.ods")
    odp(OUT / "blank.odp")
    for ext in ("md", "txt"):
        (OUT / f"blank.{ext}").write_bytes(b"\n")
    for path in sorted(OUT.glob("blank.*")):
        print(f"{path.name}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
