"""HTML tables: telling data tables from layout tables, and turning data tables into a grid, markdown and CSV."""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import Tag

__all__ = ["BLOCK_TAGS", "is_layout_table", "table_grid", "table_markdown", "table_csv", "text_of"]

BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul",
})
_SKIP_TEXT = frozenset({"script", "style", "noscript", "template", "svg", "head", "title"})
_MAX_SPAN = 100  # colspan/rowspan beyond this are clamped: a bogus colspan=100000 must not allocate a huge grid
_WS = re.compile(r"\s+")


def text_of(tag: Tag) -> str:
    """Visible text of ``tag`` with whitespace collapsed, a space between blocks and at ``<br>``."""
    from bs4.element import Comment, NavigableString
    from bs4.element import Tag as BsTag

    parts: list[str] = []
    for node in tag.descendants:
        if isinstance(node, NavigableString):
            if isinstance(node, Comment) or type(node).__name__ in ("Doctype", "Declaration", "ProcessingInstruction"):
                continue
            if any(getattr(p, "name", None) in _SKIP_TEXT for p in node.parents):
                continue
            parts.append(str(node))
        elif isinstance(node, BsTag) and (node.name in BLOCK_TAGS or node.name == "br"):
            parts.append(" ")
    return _WS.sub(" ", "".join(parts)).strip()


def _own_rows(table: Tag) -> list[Tag]:
    """The ``<tr>`` of this table, not of tables nested in its cells."""
    return [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]


def _cells(tr: Tag) -> list[Tag]:
    return tr.find_all(["td", "th"], recursive=False)


def _span(cell: Tag, name: str) -> int:
    try:
        return max(1, min(int(str(cell.get(name, "1")).strip() or "1"), _MAX_SPAN))
    except ValueError:
        return 1


def is_layout_table(table: Tag) -> bool:
    """True for tables used for page layout rather than data; their content is read as ordinary text.

    Layout: ``role=presentation``; a single cell; a table holding other tables or headings; a table whose cells
    hold nothing but images and links (navigation bars, icon rows); one row or one column without any
    ``<th>`` or ``<caption>``.
    """
    if str(table.get("role", "")).lower() in ("presentation", "none"):
        return True
    rows = _own_rows(table)
    cells = [c for tr in rows for c in _cells(tr)]
    if len(cells) <= 1:
        return True
    if any(t.find_parent("table") is table for t in table.find_all("table")):
        return True
    if table.find(["h1", "h2", "h3", "h4", "h5", "h6"]) is not None:
        return True
    has_text = False
    for cell in cells:
        text = text_of(cell)
        link_text = " ".join(text_of(a) for a in cell.find_all("a"))
        if text and len(_WS.sub("", text)) > len(_WS.sub("", link_text)):
            has_text = True
            break
    if not has_text:
        return True
    columns = max(sum(_span(c, "colspan") for c in _cells(tr)) for tr in rows)
    has_header = table.find("th") is not None or table.find("caption") is not None
    return (len(rows) < 2 or columns < 2) and not has_header


def _fill_rowspans(row: list[str], col: int, pending: dict[int, tuple[int, str]]) -> int:
    """Copy cells spanning down from rows above into ``row`` from ``col`` on; return the next free column."""
    while col in pending:
        left, text = pending[col]
        row.append(text)
        if left <= 1:
            del pending[col]
        else:
            pending[col] = (left - 1, text)
        col += 1
    return col


def table_grid(table: Tag) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of a data table; spans are repeated into every cell they cover, rows padded.

    The header is the ``<thead>`` (its rows merged per column), else the first row when it is all ``<th>``,
    else simply the first row.
    """
    grid: list[list[str]] = []
    is_head: list[bool] = []
    pending: dict[int, tuple[int, str]] = {}  # column -> (rows still covered, text) from rowspans above
    for tr in _own_rows(table):
        row: list[str] = []
        col = 0
        cells = _cells(tr)
        for cell in cells:
            col = _fill_rowspans(row, col, pending)
            text = text_of(cell)
            colspan, rowspan = _span(cell, "colspan"), _span(cell, "rowspan")
            for _ in range(colspan):
                row.append(text)
                if rowspan > 1:
                    pending[col] = (rowspan - 1, text)
                col += 1
        _fill_rowspans(row, col, pending)
        if not row:
            continue
        grid.append(row)
        in_thead = tr.find_parent("thead") is not None and tr.find_parent("table") is table
        is_head.append(in_thead or (bool(cells) and all(c.name == "th" for c in cells)))
    if not grid:
        return [], []
    width = max(len(r) for r in grid)
    grid = [r + [""] * (width - len(r)) for r in grid]
    heads = 0
    if any(tr.find_parent("thead") is not None for tr in _own_rows(table)):
        while heads < len(grid) and is_head[heads]:
            heads += 1
    if heads == 0:
        heads = 1
    header = [" ".join(dict.fromkeys(v for v in col if v)) for col in zip(*grid[:heads], strict=True)]
    return header, grid[heads:]


def _md_cell(text: str) -> str:
    return _WS.sub(" ", text).strip().replace("\\", "\\\\").replace("|", "\\|")


def table_markdown(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-style markdown table (pipes escaped, whitespace collapsed)."""
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table_csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
