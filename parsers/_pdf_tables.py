# mypy: disable-error-code="no-untyped-call"
"""Tables on a PDF page: when to look (``find_tables`` is 100-300x the cost of the text), and what to keep.

Cell text is rebuilt from positioned words: ``Table.extract()`` glues words of Word-made PDFs together and
scrambles digits set in separate runs (tabula's "21.0" comes back as "210\\n.").

A table whose ruled body starts with data ("C1 17 17 12") often has its header set as a plain line just above the
rules ("compressor North Centre South", R's printed tables): that line, when its words fall into the table's
columns, becomes the header instead of the first data row.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymupdf

from mmrag.parsers._pdf_text import CAPTION_RE, Rect, TextBlock, caption_near

__all__ = ["FoundTable", "find_page_tables", "may_hold_tables", "rules"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FoundTable:
    bbox: Rect
    header: list[str]
    rows: list[list[str]]  # body rows, without the header
    context: str

    @property
    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        out = [line(self.header), "|" + "---|" * len(self.header)]
        out.extend(line(r) for r in self.rows)
        return "\n".join(out)

    @property
    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buf.getvalue()

    def text(self) -> str:
        return f"{self.context}\n\n{self.markdown}" if self.context else self.markdown

    def metadata(self) -> dict[str, Any]:
        return {"csv": self.csv, "rows": len(self.rows), "columns": len(self.header), "header": list(self.header)}


def rules(vectors: Sequence[Rect]) -> tuple[int, int]:
    """(horizontal, vertical) ruling lines among vector bounding boxes."""
    h = v = 0
    for x0, y0, x1, y1 in vectors:
        w, ht = x1 - x0, y1 - y0
        if ht <= 2 and w >= 20:
            h += 1
        elif w <= 2 and ht >= 8:
            v += 1
    return h, v


def may_hold_tables(vectors: Sequence[Rect], blocks: Sequence[TextBlock]) -> bool:
    """Cheap test of whether ``find_tables`` can find anything: a grid or rules, a caption, or text in columns."""
    h, v = rules(vectors)
    if h >= 3 or (h >= 2 and v >= 2):
        return True
    if any(b.gapped_rows >= 3 and b.gapped_numbers >= 0.4 for b in blocks):
        return True  # numbers typeset in columns without lines: three or more rows split into >= 3 runs
    return any(CAPTION_RE.match(b.text) and b.text.lstrip()[:3].lower() == "tab" for b in blocks)


def _find(page: pymupdf.Page, **kwargs: Any) -> list[Any]:
    try:
        found = page.find_tables(**kwargs)
    except TypeError:  # an older PyMuPDF without use_layout
        kwargs.pop("use_layout", None)
        found = page.find_tables(**kwargs)
    return list(found.tables) if found is not None else []


def find_page_tables(page: pymupdf.Page, vectors: Sequence[Rect], blocks: Sequence[TextBlock]) -> list[FoundTable]:
    """Tables of ``page`` that look real (>= 2 rows, >= 2 columns, mostly filled cells)."""
    sides = _open_sides(vectors)
    tables = _find(page, add_lines=sides or None)
    h, v = rules(vectors)
    if not tables and h >= 2 and v == 0:
        # booktabs: horizontal rules only, which the "lines" strategy cannot split into cells; read the
        # text between the rules by its alignment instead
        for x0, y0, x1, y1 in _rule_groups(vectors):
            clip = pymupdf.Rect(x0 - 2, y0 - 2, x1 + 2, y1 + 2)
            tables += _find(page, clip=clip, strategy="text", use_layout=False)
    if not tables:
        return []
    words = page.get_text("words")
    out = []
    for table in tables:
        if _chart_like(tuple(table.bbox), vectors):
            continue
        found = _build(table, words, blocks)
        if found is not None:
            out.append(found)
    return out


def _open_sides(vectors: Sequence[Rect]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Vertical lines closing tables whose horizontal rules run past the outermost vertical ones.

    Without them the "lines" strategy drops the first and last columns of tables drawn without side borders
    (the row names and the Species column of tabula's iris table).
    """
    lines = []
    for x0, y0, x1, y1 in _rule_groups(vectors):
        lines += [((x0, y0), (x0, y1)), ((x1, y0), (x1, y1))]
    return lines


def _rule_groups(vectors: Sequence[Rect]) -> list[Rect]:
    """Boxes spanned by two or more horizontal rules of the same length and position (one table each)."""
    groups: dict[tuple[int, int], list[Rect]] = {}
    for r in vectors:
        if r[3] - r[1] <= 2 and r[2] - r[0] >= 20:
            groups.setdefault((round(r[0] / 2), round(r[2] / 2)), []).append(r)
    return [
        (min(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs), max(r[3] for r in rs))
        for rs in groups.values()
        if len(rs) >= 2
    ]


def _chart_like(bbox: Rect, vectors: Sequence[Rect]) -> bool:
    """Filled shapes narrower than the table inside it (bars, mosaic tiles): a chart with gridlines, not a table."""
    inside = [v for v in vectors if v[0] >= bbox[0] - 1 and v[2] <= bbox[2] + 1 and v[1] >= bbox[1] - 1
              and v[3] <= bbox[3] + 1]
    shapes = [v for v in inside if min(v[2] - v[0], v[3] - v[1]) > 2 and v[2] - v[0] < 0.9 * (bbox[2] - bbox[0])]
    return len(shapes) >= 4 and len(shapes) >= 0.3 * len(inside)


def _cell_texts(cells: Sequence[Any], words: Sequence[Any]) -> list[str | None]:
    """Text of each cell from the words whose centre lies in it (None for merged-away cells)."""
    boxes = [c for c in cells if c is not None]
    if not boxes:
        return [None] * len(cells)
    y0, y1 = min(c[1] for c in boxes), max(c[3] for c in boxes)
    bins: list[list[Any]] = [[] for _ in cells]
    for w in words:
        cy = (w[1] + w[3]) / 2
        if not y0 <= cy <= y1:
            continue
        cx = (w[0] + w[2]) / 2
        for i, c in enumerate(cells):
            if c is not None and c[0] <= cx <= c[2] and c[1] <= cy <= c[3]:
                bins[i].append(w)
                break
    out: list[str | None] = []
    for c, ws in zip(cells, bins, strict=True):
        if c is None:
            out.append(None)
            continue
        ws.sort(key=lambda w: (round((w[1] + w[3]) / 2 / 3), w[0]))
        out.append(" ".join(w[4] for w in ws))
    return out


def _build(table: Any, words: Sequence[Any], blocks: Sequence[TextBlock]) -> FoundTable | None:
    try:
        raw = table.extract()
        grid = [_cell_texts(row.cells, words) for row in table.rows]
        header_obj = table.header
        external = bool(getattr(header_obj, "external", False))
        head_cells = _cell_texts(header_obj.cells, words) if external else None
    except Exception as e:  # PyMuPDF's table code is heuristic and young: one odd table must not sink the page
        logger.debug("table at %s skipped: %s", getattr(table, "bbox", None), e)
        return None
    rows: list[list[str]] = []
    for r, row in enumerate(grid):
        cells = []
        for c, text in enumerate(row):
            if text is None:
                cells.append("")
            elif text:
                cells.append(text)
            else:
                # no word centred in the cell: keep what PyMuPDF found, whitespace-normalised
                fallback = raw[r][c] if r < len(raw) and c < len(raw[r]) else None
                cells.append(" ".join((fallback or "").split()))
        rows.append(cells)
    top = float(table.bbox[1])
    if head_cells is not None:
        rows.insert(0, [t or "" for t in head_cells])
    elif rows and (above := _header_line_above(table, rows[0], words)) is not None:
        header, top = above
        rows.insert(0, header)
    rows = _drop_empty(rows)
    if len(rows) < 2 or len(rows[0]) < 2:
        return None
    n_cells = len(rows) * len(rows[0])
    filled = sum(1 for row in rows for c in row if c)
    if filled < 0.5 * n_cells:
        return None
    bbox: Rect = (float(table.bbox[0]), top, float(table.bbox[2]), float(table.bbox[3]))
    context = caption_near(bbox, blocks, kinds=("table", "tab"), prefer_below=False, reach=60, fallback=False)
    if not context:
        context = _heading_above(bbox, blocks)
    return FoundTable(bbox=bbox, header=rows[0], rows=rows[1:], context=context)


_NUMERIC = re.compile(r"^[-+<>=~±(]?[$€£]?\d[\d.,:/%-]*\)?$")
_HEADER_GAP = 20.0  # most points between a header line and the table's top
_HEADER_REACH = 100.0  # a first column's label may start this far left of the table


def _header_line_above(table: Any, first: list[str], words: Sequence[Any]) -> tuple[list[str], float] | None:
    """The line right above ``table`` as its header, when the table starts with data and every word of that line
    falls into one of its columns (the first column's label may stand further left); with the line's top."""
    if len(first) < 2 or not any(_NUMERIC.match(c.strip()) for c in first[1:]):
        return None  # the first row is not data: it may well be the header already
    cells = table.rows[0].cells
    if any(c is None for c in cells) or len(cells) != len(first):
        return None
    x0, top, x1 = float(table.bbox[0]), float(table.bbox[1]), float(table.bbox[2])
    near = [w for w in words if top - _HEADER_GAP <= w[3] <= top + 1 and w[2] > x0 - _HEADER_REACH and w[0] < x1]
    if not near:
        return None
    line_y = max((w[1] + w[3]) / 2 for w in near)  # the line closest to the table
    line = sorted((w for w in near if abs((w[1] + w[3]) / 2 - line_y) <= 3), key=lambda w: w[0])
    if len(line) > 3 * len(cells) or any((w[0] + w[2]) / 2 > x1 + 2 for w in line):
        return None
    columns: list[list[str]] = [[] for _ in cells]
    for w in line:
        centre = (w[0] + w[2]) / 2
        col = min(range(len(cells)), key=lambda i: 0.0 if cells[i][0] <= centre <= cells[i][2]
                  else min(abs(centre - cells[i][0]), abs(centre - cells[i][2])))
        if centre < x0:
            col = 0
        columns[col].append(str(w[4]))
    if not all(columns):
        return None
    return [" ".join(c) for c in columns], min(float(w[1]) for w in line)


def _drop_empty(rows: list[list[str]]) -> list[list[str]]:
    rows = [r for r in rows if any(r)]
    if not rows:
        return rows
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    keep = [i for i in range(width) if any(r[i] for r in rows)]
    return [[r[i] for i in keep] for r in rows]


def _heading_above(bbox: Rect, blocks: Sequence[TextBlock]) -> str:
    """A short line right above the table (a heading or a lead-in sentence), if any."""
    best: tuple[float, str] | None = None
    for b in blocks:
        gap = bbox[1] - b.bbox[3]
        overlap = min(b.bbox[2], bbox[2]) - max(b.bbox[0], bbox[0])
        if 0 <= gap <= 30 and overlap > 0 and (best is None or gap < best[0]):
            best = (gap, b.text.strip().splitlines()[-1] if b.text.strip() else "")
    return best[1][:200] if best and len(best[1]) <= 200 else ""
