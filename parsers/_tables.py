"""Table elements from rows, shared by the sheet-like formats (XLSX, CSV/TSV) and the Office tables.

A table longer than ``part_chars`` of Markdown becomes several table elements of whole rows, each with the
header row repeated, so every part stands on its own in an index and in an answer. Each part says where it
sits (``metadata["location"]``: ``Sales!A1:D40``, ``rows 2-41``, ``slide 3``) and which part it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from mmrag.elements import Element
from mmrag.parsers._html_tables import table_csv, table_markdown

__all__ = ["TableRows", "cell_text", "part_chars", "rows_to_elements", "table_element"]

Locate = Callable[[int, int], str]
"""``(first, last)`` body-row indexes (0-based, inclusive) → the location of those rows, header included."""


def part_chars(chunk_size: int) -> int:
    """Largest Markdown of one table part: a few text chunks' worth, at least 2,000 characters."""
    return max(2000, 3 * chunk_size)


def cell_text(value: object) -> str:
    """A cell value as people read it: ``21`` not ``21.0``, dates without a midnight time, TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())


def table_element(source: str, header: Sequence[str], rows: Sequence[Sequence[str]], *, context: str,
                  metadata: Mapping[str, Any], location: str, page: int | None = None) -> Element:
    """One table element: ``context`` then the Markdown table; ``csv``, ``rows``, ``columns``, ``header`` and
    ``location`` in its metadata."""
    head = list(header)
    body = [list(r) for r in rows]
    markdown = table_markdown(head, body)
    meta = {**metadata, "csv": table_csv(head, body), "rows": len(body), "columns": len(head), "header": head,
            "location": location}
    return Element(kind="table", source=source, text=f"{context}\n\n{markdown}" if context else markdown,
                   page=page, mime_type="text/markdown", metadata=meta)


class TableRows:
    """Collects the body rows of one table and cuts them into parts of at most ``limit`` characters.

    Feed rows with :meth:`add` (each may return a finished part) and call :meth:`finish` at the end; the parts
    come out as elements while the rows stream in, so a sheet of a million rows never sits in memory.
    """

    def __init__(self, source: str, header: Sequence[str], *, context: str, metadata: Mapping[str, Any],
                 locate: Locate, limit: int, page: int | None = None) -> None:
        self.source, self.header, self.context, self.metadata = source, list(header), context, dict(metadata)
        self.locate, self.limit, self.page = locate, limit, page
        self.base = len(table_markdown(self.header, [])) + len(context)
        self.rows: list[list[str]] = []
        self.size = self.base
        self.first = 0  # body-row index of self.rows[0]
        self.parts: list[Element] = []

    def add(self, row: Sequence[str]) -> Element | None:
        cells = list(row)
        width = sum(len(c) + 3 for c in cells) + 2
        out = None
        if self.rows and self.size + width > self.limit:
            out = self._cut()
        self.rows.append(cells)
        self.size += width
        return out

    def _cut(self) -> Element:
        last = self.first + len(self.rows) - 1
        part = len(self.parts) + 1
        meta = {**self.metadata, "part": part, "first_row": self.first + 1, "last_row": last + 1}
        element = table_element(self.source, self.header, self.rows, context=self.context, metadata=meta,
                                location=self.locate(self.first, last), page=self.page)
        self.parts.append(element)
        self.first = last + 1
        self.rows = []
        self.size = self.base
        return element

    def finish(self) -> Iterator[Element]:
        """The last part: the rows left since the last cut (a table without body rows is one part too)."""
        if self.rows or not self.parts:
            yield self._cut()


def rows_to_elements(source: str, header: Sequence[str], rows: Iterable[Sequence[str]], **kwargs: Any
                     ) -> Iterator[Element]:
    """All parts of a table given whole (see :class:`TableRows` for the keyword arguments)."""
    collector = TableRows(source, header, **kwargs)
    for row in rows:
        part = collector.add(row)
        if part is not None:
            yield part
    yield from collector.finish()
