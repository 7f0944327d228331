"""A ruled table whose header is a plain line above the rules (as R prints tables): the line is the header."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from mmrag.elements import Blob, Element
from mmrag.parsers._pdf_tables import find_page_tables
from mmrag.parsers._pdf_text import read_page
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.pdf import PdfParser

COLUMNS = [(100, 170), (170, 230), (230, 290), (290, 350)]


def _pdf(first: list[str]) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Piston ring failures by leg and compressor are counted below.", fontsize=11)
    rows = [first, ["C2", "11", "9", "13"], ["C3", "11", "8", "19"], ["C4", "14", "7", "28"]]
    top, height = 130, 16
    for r in range(len(rows) + 1):
        page.draw_line((COLUMNS[0][0], top + r * height), (COLUMNS[-1][1], top + r * height))
    for x in [c[0] for c in COLUMNS] + [COLUMNS[-1][1]]:
        page.draw_line((x, top), (x, top + len(rows) * height))
    for r, row in enumerate(rows):
        for (x0, _), cell in zip(COLUMNS, row, strict=True):
            page.insert_text((x0 + 4, top + r * height + 12), cell, fontsize=10)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def _table(data: bytes) -> Element:
    options = ParseOptions(find_tables="always")
    [table] = [e for e in PdfParser(options).parse(Blob(data, "/d/rings.pdf", "application/pdf")) if e.kind == "table"]
    return table


def test_the_line_above_a_table_that_starts_with_data_is_its_header(data_dir: Path) -> None:
    # vcd's pistonrings table, printed by R: "leg / compressor North Centre South" above the ruled body "C1 17 17 12"
    with pymupdf.open(data_dir / "pdf" / "vcd-residual-shadings.pdf") as doc:
        page = doc[3]
        blocks, vectors = read_page(page)
        [table] = find_page_tables(page, vectors, blocks)
    assert table.header == ["compressor", "North", "Centre", "South"]
    assert table.rows[0] == ["C1", "17", "17", "12"] and len(table.rows) == 4  # C1 is data, not the header
    assert table.bbox[1] < 136  # the box now covers the header line


def test_a_table_with_its_own_header_row_keeps_it() -> None:
    table = _table(_pdf(["compressor", "North", "Centre", "South"]))  # a header row inside the rules
    assert table.metadata["header"] == ["compressor", "North", "Centre", "South"] and table.metadata["rows"] == 3
    plain = _table(_pdf(["C1", "17", "17", "12"]))  # no line above: the first row stays what it was
    assert plain.metadata["header"] == ["C1", "17", "17", "12"]
