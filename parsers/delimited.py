"""CSV and TSV files: one table per file, split by rows like a large sheet, header row repeated in every part.

The encoding is sniffed (a BOM, else UTF-8, else charset-normalizer when installed, else Windows-1252) and so is
the delimiter (comma, semicolon, tab or pipe; a ``.tsv`` defaults to tab). The first row is the header. Each
part's ``metadata["location"]`` is its line range (``rows 2-81``, header on line 1) with
``location_kind="rows"``. A file with NUL bytes is not text and is refused.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._report import warn
from mmrag.parsers._tables import TableRows, part_chars
from mmrag.parsers.options import ParseOptions

__all__ = ["DelimitedParser", "decode_text", "sniff_delimiter"]

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_MAX_FIELD = 1024 * 1024  # one cell at most 1 MiB (csv's own default is 128 KiB and fails the whole file)


def decode_text(blob: Blob) -> tuple[str, str]:
    """``(text, encoding)`` of a text file; raises :class:`ParseError` for binary content."""
    data = blob.data
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    if b"\x00" in data[:65536]:
        raise ParseError(blob.source, "not a text file: it holds NUL bytes (binary content under a text name?)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:1024 * 1024]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace"), best.encoding
    except ImportError:
        pass
    return data.decode("cp1252", errors="replace"), "cp1252"


def sniff_delimiter(sample: str, default: str) -> str:
    """The delimiter of ``sample`` among comma, semicolon, tab and pipe; ``default`` when it cannot be told."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


class DelimitedParser:
    """Parses CSV and TSV files into table elements (see the module docstring)."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        text, encoding = decode_text(blob)
        if not text.strip():
            raise ParseError(blob.source, "the file holds no rows")
        default = "\t" if blob.mime_type == "text/tab-separated-values" else ","
        # Comment lines above the header ("# Data source: ...") are context, not rows.
        lines = text[:65536].splitlines()
        skip = 0
        while skip < len(lines) and lines[skip].lstrip().startswith("#"):
            skip += 1
        notes = " ".join(line.lstrip("# ").strip() for line in lines[:skip])
        if skip:
            text = text.split("\n", skip)[-1] if text.count("\n") >= skip else ""
        delimiter = sniff_delimiter("\n".join(lines[skip : skip + 50]), default)
        return self._elements(text, delimiter, encoding, blob.source, notes, skip)

    def _elements(self, text: str, delimiter: str, encoding: str, source: str, notes: str = "",
                  skipped: int = 0) -> Iterator[Element]:
        limit = csv.field_size_limit()
        csv.field_size_limit(_MAX_FIELD)
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            header: list[str] | None = None
            lines: list[int] = []
            name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))
            meta = {"location_kind": "rows", "delimiter": name, "encoding": encoding}
            table: TableRows | None = None
            width = 0

            def locate(first: int, last: int) -> str:
                return f"rows {lines[first]}-{lines[last]}"

            try:
                for row in reader:
                    cells = [" ".join(c.split()) for c in row]
                    if not any(cells):
                        continue
                    if header is None:
                        header, width = cells, len(cells)
                        table = TableRows(source, header, context=notes, metadata=meta, locate=locate,
                                          limit=part_chars(self.options.chunk_size))
                        continue
                    assert table is not None
                    lines.append(reader.line_num + skipped)
                    cells = (cells + [""] * width)[:width] if len(cells) != width else cells
                    part = table.add(cells)
                    if part is not None:
                        yield part
            except csv.Error as e:
                warn(source, f"stopped reading at line {reader.line_num}: {e}")
            if table is None:
                raise ParseError(source, "the file holds no rows")
            if not lines:
                lines.append(1)
            yield from table.finish()
        finally:
            csv.field_size_limit(limit)
