"""Excel workbooks (.xlsx, .xlsm) with openpyxl in read-only streaming mode.

Per visible worksheet, rows stream in and are grouped into blocks of consecutive non-empty rows (a blank row
ends a block), so a sheet with notes above its data and a second table below yields each on its own:

* a block of two or more rows and columns is a ``table``: its header is the first of its first ten rows that fills
  the most columns (notes written above the data become context), repeated in every part
  when the block is longer than a few chunks (:mod:`mmrag.parsers._tables`). Context: ``Sheet "NAME"``.
* any other block (a title, a note, a single column of remarks) is a ``text`` element.

Every element's ``metadata["location"]`` is the sheet and cell range (``mtcars!A1:K33``), with
``location_kind="sheet"``, ``sheet`` and ``range``. Formulas are read as their cached values (what Excel
showed when the file was saved; a formula never calculated, as some libraries write them, reads as empty).
Hidden and very hidden sheets are skipped and reported in one warning; chart sheets hold no cells and are
skipped too. Macros in an ``.xlsm`` are never loaded (see :mod:`mmrag.parsers._office`).
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._office import XLSX, open_package, require
from mmrag.parsers._report import warn
from mmrag.parsers._tables import TableRows, cell_text, part_chars
from mmrag.parsers.options import ParseOptions

__all__ = ["XlsxParser", "cell_range", "column_letter"]


def column_letter(index: int) -> str:
    """``1 → A``, ``27 → AA`` (1-based)."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_range(sheet: str, first_row: int, last_row: int, first_col: int, last_col: int) -> str:
    """``Sheet!A1:D9``; a sheet name with spaces or punctuation is quoted as Excel writes it (``'Q1 sales'!A1:B2``)."""
    name = sheet if sheet.replace("_", "").isalnum() else "'" + sheet.replace("'", "''") + "'"
    return f"{name}!{column_letter(first_col)}{first_row}:{column_letter(last_col)}{last_row}"


class XlsxParser:
    """Parses Excel workbooks into one or more table (and note) elements per visible sheet."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        """Elements of ``blob``, sheet by sheet. Raises :class:`ParseError` at once if it cannot be opened."""
        open_package(blob, XLSX, self.options).close()
        openpyxl = require("openpyxl", "openpyxl", "reading Excel workbooks")
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(blob.data), read_only=True, data_only=True,
                                              keep_links=False)
        except Exception as e:  # openpyxl raises KeyError, ValueError, InvalidFileException... for damaged files
            raise ParseError(blob.source, f"cannot open the workbook ({type(e).__name__}: {e}): the file is damaged "
                                          "or not really a workbook; save it again from Excel or LibreOffice") from e
        return self._elements(workbook, blob.source)

    def _elements(self, workbook: Any, source: str) -> Iterator[Element]:
        try:
            hidden = [ws.title for ws in workbook.worksheets if ws.sheet_state != "visible"]
            if hidden:
                names = ", ".join(repr(n) for n in hidden)
                warn(source, f"hidden sheets skipped: {names} (unhide them in Excel to have them read)")
            for ws in workbook.worksheets:
                if ws.sheet_state == "visible":
                    yield from self._sheet(ws, source)
        finally:
            workbook.close()

    def _sheet(self, ws: Any, source: str) -> Iterator[Element]:
        ws.reset_dimensions()  # a workbook's stored dimension is often wrong (A1:A1 for a full sheet): read all rows
        block: _Block | None = None
        for number, row in enumerate(ws.iter_rows(values_only=True), 1):
            cells = [cell_text(v) for v in row]
            if not any(cells):
                if block is not None:
                    yield from block.finish()
                    block = None
                continue
            if block is None:
                block = _Block(source, ws.title, number, cells, self.options)
            else:
                yield from block.add(number, cells)
        if block is not None:
            yield from block.finish()


class _Block:
    """One run of non-empty rows of a sheet: a table (header = first row), or a note when it is too thin."""

    def __init__(self, source: str, sheet: str, number: int, first: list[str], options: ParseOptions) -> None:
        self.source, self.sheet, self.options = source, sheet, options
        self.first_number = number
        self.header = first
        # sheet row number of each body row seen (for the parts' ranges): 8 bytes a row, for sheets of millions
        self.numbers = array("l")
        self.table: TableRows | None = None
        self.pending: list[list[str]] = []  # body rows held until the block is known to be a table
        self.cols = _span(first)
        self.table_cols = self.cols  # the columns a streaming table was started with
        self.warned = False

    def add(self, number: int, cells: list[str]) -> Iterator[Element]:
        self.numbers.append(number)
        lo, hi = _span(cells)
        self.cols = (min(self.cols[0], lo), max(self.cols[1], hi))
        if self.table is None:
            self.pending.append(cells)
            # The column span is final only at the block's end; hold a few rows to learn it, then stream.
            if len(self.pending) >= 64:
                yield from self._start()
            return
        if hi > self.table_cols[1] or lo < self.table_cols[0]:
            self.cols = self.table_cols
            if not self.warned:
                self.warned = True
                warn(self.source, f"sheet {self.sheet!r}: row {number} has cells outside the columns of the rows "
                                  f"above it ({column_letter(self.cols[0])}-{column_letter(self.cols[1])}); those "
                                  "cells were not read")
        part = self.table.add(self._trim(cells))
        if part is not None:
            yield _with_range(part)

    def _find_header(self) -> str:
        """Move the header down past notes written above the data ("Lots of people / simply cannot resist writing
        / at the top"): among the first ten rows, the first that fills the most columns (most of the block's) is the
        header. Returns the notes' text ("" when the first row is the header)."""
        rows = [self.header, *self.pending]
        numbers = [self.first_number, *self.numbers[: len(self.pending)]]
        width = self.cols[1] - self.cols[0] + 1
        need = max(2, -(-width * 3 // 5))
        filled = [sum(1 for c in r if c) for r in rows[:10]]
        most = max(filled)
        h = filled.index(most) if most >= need else 0
        if h == 0 or h >= len(rows) - 1:
            return ""
        notes = "\n".join(" ".join(c for c in r if c) for r in rows[:h])
        self.header, self.first_number = rows[h], numbers[h]
        self.pending, self.numbers = rows[h + 1 :], array("l", numbers[h + 1 :]) + self.numbers[len(self.pending) :]
        spans = [_span(r) for r in rows[h:]]
        self.cols = (min(lo for lo, _ in spans), max(hi for _, hi in spans))
        return notes

    def _start(self) -> Iterator[Element]:
        notes = self._find_header()
        self.table_cols = self.cols
        meta = {"location_kind": "sheet", "sheet": self.sheet, "header_row": self.first_number}
        context = f'Sheet "{self.sheet}"' + (f"\n{notes}" if notes else "")
        self.table = TableRows(self.source, self._trim(self.header), context=context, metadata=meta,
                               locate=self._locate, limit=part_chars(self.options.chunk_size))
        pending, self.pending = self.pending, []
        for cells in pending:
            part = self.table.add(self._trim(cells))
            if part is not None:
                yield _with_range(part)

    def _trim(self, cells: Sequence[str]) -> list[str]:
        lo, hi = self.cols
        row = list(cells[lo - 1 : hi])
        return row + [""] * (hi - lo + 1 - len(row))

    def _locate(self, first: int, last: int) -> str:
        start = self.first_number if first == 0 else self.numbers[first]
        return cell_range(self.sheet, start, self.numbers[last] if self.numbers else start, *self.cols)

    def finish(self) -> Iterator[Element]:
        lo, hi = self.cols
        if self.table is None and (not self.numbers or hi == lo):
            yield self._note()
            return
        if self.table is None:
            yield from self._start()
        assert self.table is not None
        for part in self.table.finish():
            yield _with_range(part)

    def _note(self) -> Element:
        rows = [self.header, *self.pending]
        text = "\n".join(" ".join(c for c in r if c) for r in rows)
        last = self.numbers[-1] if self.numbers else self.first_number
        location = cell_range(self.sheet, self.first_number, last, *self.cols)
        meta = {"location_kind": "sheet", "location": location, "sheet": self.sheet,
                "range": location.split("!", 1)[1]}
        return Element(kind="text", source=self.source, text=f'Sheet "{self.sheet}"\n\n{text}',
                       mime_type="text/plain", metadata=meta)


def _with_range(element: Element) -> Element:

    location = str(element.metadata.get("location", ""))
    return replace(element, metadata={**element.metadata, "range": location.rsplit("!", 1)[-1]})


def _span(cells: Sequence[str]) -> tuple[int, int]:
    """1-based first and last non-empty column of a row."""
    filled = [i for i, c in enumerate(cells, 1) if c]
    return (filled[0], filled[-1]) if filled else (1, 1)
