"""Cited-region outlines cover the text they cite: the union of the element's words (a table's cells) with a margin,
not a parser bbox that cuts lines at its edge or misses a table's header (issue 25, item 8)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pymupdf
import pytest

from mmrag.elements import Element
from mmrag.parsers import parse_sources
from mmrag.render._media import OUTLINE_MARGIN_PT, outline_box, page_region


def _elements(pdf: Path, kind: str) -> list[Element]:
    [result] = parse_sources([str(pdf)])
    return [e for e in result.elements if e.kind == kind and e.bbox is not None and e.page is not None]


def _words(pdf: Path, page: int) -> list[tuple[float, ...]]:
    with pymupdf.open(pdf) as doc:
        return doc[page - 1].get_text("words")


def _inside(word: tuple[float, ...], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= word[0] and box[1] <= word[1] and word[2] <= box[2] and word[3] <= box[3]


def test_lines_cut_by_the_bbox_are_outlined_whole(data_dir: Path) -> None:
    pdf = data_dir / "pdf" / "strucchange-intro.pdf"
    chunk = max((e for e in _elements(pdf, "text") if e.page == 1), key=lambda e: len(e.text))
    assert chunk.bbox is not None and chunk.page is not None
    x0, y0, x1, y1 = chunk.bbox
    cut = dataclasses.replace(chunk, bbox=(x0, y0, x0 + (x1 - x0) / 2, y1))  # a bbox that cuts every line
    words = _words(pdf, chunk.page)
    box = outline_box(words, cut)
    touched = [w for w in words if w[2] > x0 and w[0] < x0 + (x1 - x0) / 2 and w[3] > y0 and w[1] < y1]
    assert touched and all(_inside(w, box) for w in touched), "a word the bbox touches is cut by the outline"
    assert box[2] >= x1 - 1, "the lines' words beyond the cut are not outlined"
    # Whole lines of the element, not the page: the outline stays in the element's column and rows.
    assert box[1] >= y0 - OUTLINE_MARGIN_PT - 1 and box[3] <= y1 + OUTLINE_MARGIN_PT + 1


def test_a_tables_header_row_is_inside_its_outline(data_dir: Path) -> None:
    pdf = data_dir / "pdf" / "tabula-data.pdf"
    table = _elements(pdf, "table")[0]
    assert table.bbox is not None and table.page is not None
    words = _words(pdf, table.page)
    header = [w for w in words if _inside(w, table.bbox) and w[1] < table.bbox[1] + 12 and w[4] in ("mpg", "cyl")]
    assert header, "the test needs the table's header words"
    below = max(w[3] for w in header) + 0.5
    cut = dataclasses.replace(table, bbox=(table.bbox[0], below, table.bbox[2], table.bbox[3]))  # header missed
    box = outline_box(words, cut)
    assert all(_inside(w, box) for w in header)


def test_the_evidence_picture_outlines_the_grown_box(data_dir: Path) -> None:
    pdf = data_dir / "pdf" / "strucchange-intro.pdf"
    chunk = max((e for e in _elements(pdf, "text") if e.page == 1), key=lambda e: len(e.text))
    assert chunk.bbox is not None
    x0, y0, x1, y1 = chunk.bbox
    cut = dataclasses.replace(chunk, bbox=(x0, y0, x0 + (x1 - x0) / 2, y1))
    whole, halved = page_region(chunk), page_region(cut)
    assert whole is not None and halved is not None
    # The picture is cropped around the outline: the grown box, about as wide as the whole chunk's.
    assert halved.width == pytest.approx(whole.width, rel=0.1)
