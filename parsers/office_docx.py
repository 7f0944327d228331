"""Word documents (.docx, .docm) with python-docx, chunked by headings (DOCX has no pages).

In document order, section by section (a section is the text under one heading):

* ``text``: the section's paragraphs (list items as ``- item``), split with
  :func:`~mmrag.parsers.chunking.split_spans`, each chunk starting with its heading path. Metadata like HTML's:
  ``section`` ("H1 > H2"), ``headings`` (the list), ``heading``, plus ``location`` (the path joined with
  `` › ``) and ``location_kind="heading"``.
* ``table``: each table of two or more rows and columns (a one-row or one-column table is layout, read as text)
  as Markdown + CSV (first row = header), with its caption (a ``Caption`` paragraph or
  one starting "Table") or else the paragraph right above it as context.
* ``image``: each embedded picture, with its alt text and the paragraph around it as context.
* headers and footers: one ``text`` element for the distinct header/footer text of the whole document
  (``metadata["header_footer"] = True``), never repeated into every chunk.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._office import DOCX, open_package, require
from mmrag.parsers._report import warn
from mmrag.parsers._tables import table_element
from mmrag.parsers.chunking import split_spans
from mmrag.parsers.images import image_element
from mmrag.parsers.options import ParseOptions

__all__ = ["DocxParser"]

_HEADING = re.compile(r"(?:heading|überschrift|titre|título|kop)\s*(\d)", re.IGNORECASE)
_CAPTION = re.compile(r"^(?:table|tabelle|tableau|tabla)\s+\d", re.IGNORECASE)
_R_EMBED = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"


def _level(paragraph: Any) -> int | None:
    """Heading level of a paragraph (``Title`` is 0), from its style or its outline level; None for body text."""
    name = paragraph.style.name if paragraph.style is not None else ""
    if name == "Title":
        return 0
    match = _HEADING.match(name or "")
    if match:
        return int(match.group(1))
    outline = paragraph._p.xpath("./w:pPr/w:outlineLvl/@w:val")
    return int(outline[0]) + 1 if outline and str(outline[0]).isdigit() and int(outline[0]) < 9 else None


class DocxParser:
    """Parses Word documents into heading-scoped text chunks, tables and images (see the module docstring)."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        """Elements of ``blob`` in document order. Raises :class:`ParseError` at once if it cannot be opened."""
        open_package(blob, DOCX, self.options).close()
        docx = require("docx", "python-docx", "reading Word documents")
        try:
            document = docx.Document(io.BytesIO(blob.data))
        except Exception as e:  # KeyError for a missing part, XMLSyntaxError, PackageNotFoundError...
            raise ParseError(blob.source, f"cannot open the document ({type(e).__name__}: {e}): the file is damaged; "
                                          "save it again from Word or LibreOffice") from e
        return _Walk(document, blob.source, self.options).run()


class _Walk:
    def __init__(self, document: Any, source: str, options: ParseOptions) -> None:
        self.document, self.source, self.options = document, source, options
        self.path: list[tuple[int, str]] = []
        self.blocks: list[str] = []
        self.pending: list[Element] = []
        self.last_paragraph = ""
        self.last_is_caption = False
        self.seen_images: set[str] = set()

    def run(self) -> Iterator[Element]:
        from docx.table import Table

        yield from self._header_footer()
        for block in self.document.iter_inner_content():
            if isinstance(block, Table):
                self._table(block)
                continue
            text = block.text.strip()
            level = _level(block) if text else None
            if level is not None:
                yield from self._flush()
                self.path = [p for p in self.path if p[0] < level] + [(level, " ".join(text.split()))]
                continue
            self._images(block, text)
            if text:
                style = (block.style.name if block.style is not None else "") or ""
                is_list = style.startswith("List") or bool(block._p.xpath("./w:pPr/w:numPr"))
                self.blocks.append(f"- {text}" if is_list else text)
                self.last_paragraph = text
                self.last_is_caption = style == "Caption" or bool(_CAPTION.match(text))
        yield from self._flush()

    def _meta(self) -> dict[str, Any]:
        headings = [h for _, h in self.path]
        return {"section": " > ".join(headings), "headings": headings, "heading": headings[-1] if headings else "",
                "location_kind": "heading", "location": " › ".join(headings)}

    def _flush(self) -> Iterator[Element]:
        prefix = " > ".join(h for _, h in self.path)
        if len(prefix) > self.options.chunk_size // 2:
            prefix = prefix[: self.options.chunk_size // 2 - 1].rstrip() + "…"
        if self.blocks:
            body = "\n\n".join(self.blocks)
            budget = self.options.chunk_size - (len(prefix) + 2 if prefix else 0)
            meta = self._meta()
            for start, end in split_spans(body, budget, min(self.options.chunk_overlap, budget - 1)):
                chunk = body[start:end]
                yield Element(kind="text", source=self.source, text=f"{prefix}\n\n{chunk}" if prefix else chunk,
                              mime_type="text/plain", metadata=meta)
        self.blocks = []
        yield from self.pending
        self.pending = []

    def _table(self, table: Any) -> None:
        try:
            grid = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
        except Exception as e:  # python-docx refuses some malformed spans
            warn(self.source, f"skipped a table: cannot read its cells ({type(e).__name__}: {e})")
            return
        grid = [row for row in grid if any(row)]
        if not grid:
            return
        width = max(len(r) for r in grid)
        if len(grid) == 1 or width == 1:  # a one-row or one-column table is layout (a box, a banner): its text
            self.blocks.append("\n".join(" ".join(c for c in r if c) for r in grid))
            return
        grid = [r + [""] * (width - len(r)) for r in grid]
        caption = ""
        if self.blocks and self.last_is_caption:
            caption = self.last_paragraph
        context = [c for c in dict.fromkeys([caption, " > ".join(h for _, h in self.path),
                                             "" if caption else self.last_paragraph]) if c]
        meta = self._meta()
        if caption:
            meta["caption"] = caption
        self.pending.append(table_element(self.source, grid[0], grid[1:], context="\n".join(context), metadata=meta,
                                          location=meta["location"]))

    def _images(self, paragraph: Any, text: str) -> None:
        for drawing in paragraph._p.xpath(".//w:drawing"):
            blips = drawing.xpath(".//a:blip")
            rid = blips[0].get(_R_EMBED) if blips else None
            if not rid or rid in self.seen_images:
                continue
            self.seen_images.add(rid)
            doc_pr = drawing.xpath(".//wp:docPr")
            alt = (doc_pr[0].get("descr") or doc_pr[0].get("title") or "").strip() if doc_pr else ""
            try:
                data = paragraph.part.related_parts[rid].blob
            except (KeyError, AttributeError):
                warn(self.source, f"skipped image {rid}: a linked picture, not embedded in the document")
                continue
            context = "\n".join(t for t in (alt, text or self.last_paragraph, " > ".join(h for _, h in self.path)) if t)
            meta = {**self._meta(), **({"alt": alt} if alt else {})}
            element = image_element(data, self.source, self.options, text=context, metadata=meta, label=rid)
            if element is not None:
                self.pending.append(element)

    def _header_footer(self) -> Iterator[Element]:
        seen: dict[str, None] = {}
        for section in self.document.sections:
            for part in (section.header, section.footer, section.first_page_header, section.first_page_footer):
                try:
                    if part.is_linked_to_previous:
                        continue
                    text = "\n".join(p.text.strip() for p in part.paragraphs if p.text.strip())
                except Exception:  # a section whose header part is missing: nothing to read there
                    continue
                if text:
                    seen.setdefault(text)
        if seen:
            yield Element(kind="text", source=self.source, text="Headers and footers:\n\n" + "\n\n".join(seen),
                          mime_type="text/plain", metadata={"header_footer": True, "location_kind": "heading",
                                                            "location": "headers and footers"})
