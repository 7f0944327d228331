# mypy: disable-error-code="no-untyped-call"
"""PDF parsing with PyMuPDF: text chunks, tables, embedded images, vector charts and page renders.

Per page, in this order:

* ``text`` chunks of the page's blocks in reading order (columns are not interleaved), split with
  :func:`~mmrag.parsers.chunking.split_spans`; ``bbox`` is the union of the blocks a chunk covers. On a page
  whose text layer is garbled (symbol glyphs instead of letters) they carry ``metadata["garbled"] = True``. A
  page's first chunk carries the end of the page before as ``metadata["context"]`` (a sentence cut by the page
  break; indexed with the chunk, not part of its text).
* ``table`` elements: caption or heading, then the table as Markdown; metadata ``csv``, ``rows`` (body rows),
  ``columns`` and ``header``. With ``find_tables="auto"`` only pages with rules, a table caption or text in
  columns are searched, because ``find_tables`` costs 100-300 times the text extraction.
* ``image`` elements for embedded raster images (metadata ``xref``, ``width``, ``height``), once per document,
  without logos repeated across pages; and for vector charts rendered to PNG (metadata ``figure="vector"``).
  ``text`` is the caption ("Figure 3: ...") or else nearby text.
* a ``page`` element (PNG render) when ``pages_as_images`` is set, and always for a page without a text layer
  or with a garbled one: metadata ``needs_ocr=True`` and ``ocr_reason``.

A page that fails is skipped with a warning; a document that cannot be opened raises :class:`ParseError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pymupdf

from mmrag.elements import BBox, Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._pdf_figures import DocImages, raster_images, render_dpi, vector_figures, vector_regions
from mmrag.parsers._pdf_tables import find_page_tables, may_hold_tables
from mmrag.parsers._pdf_text import (
    Rect,
    TextBlock,
    area,
    carry_page_context,
    clip_box,
    intersection_area,
    is_garbled,
    read_page,
    reading_order,
    union,
)
from mmrag.parsers._report import warn
from mmrag.parsers.chunking import split_spans
from mmrag.parsers.images import image_element
from mmrag.parsers.options import ParseOptions

__all__ = ["PdfParser", "open_pdf"]

logger = logging.getLogger(__name__)

_PAGE_MARKER = re.compile(r"\s*(?:page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(?:\s*(?:/|of)\s*\d{1,4})?\s*", re.IGNORECASE)
_DAMAGED = "the file is damaged or truncated: download or export it again"


def open_pdf(blob: Blob) -> pymupdf.Document:
    """Open ``blob`` as a PDF or raise :class:`ParseError` saying why not and what to do."""
    data = blob.data
    if not data:
        raise ParseError(blob.source, "the file is empty (0 bytes)")
    if b"%PDF-" not in data[:1024]:
        head = data[:512].lstrip().lower()
        what = "HTML (an error or login page saved as .pdf?)" if head.startswith((b"<!doctype", b"<html", b"<")) else (
            "something else")
        raise ParseError(blob.source, f"not a PDF: there is no %PDF header, the content looks like {what}")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # FileDataError, RuntimeError: MuPDF's reasons vary by damage
        raise ParseError(blob.source, f"cannot open the PDF ({e}): {_DAMAGED}") from e
    if doc.needs_pass:
        doc.close()
        raise ParseError(blob.source, "the PDF is encrypted: remove the password (e.g. qpdf --decrypt "
                                      "--password=PASSWORD in.pdf out.pdf) and try again")
    if doc.page_count == 0:
        doc.close()
        raise ParseError(blob.source, f"the PDF has no readable pages: {_DAMAGED}")
    if doc.is_repaired:
        warn(blob.source, "the PDF is damaged and was repaired on opening: some content may be missing")
    return doc


class PdfParser:
    """Parses PDFs into text, table, image and page elements (see the module docstring)."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        """Elements of ``blob``, page by page. Raises :class:`ParseError` at once if it cannot be opened."""
        doc = open_pdf(blob)
        return self._elements(doc, blob.source)

    def _elements(self, doc: pymupdf.Document, source: str) -> Iterator[Element]:
        try:
            state = DocImages.scan(doc, self.options.max_image_pixels)
            for bomb in state.inline_bombs:
                warn(source, f"skipped an inline image on page {bomb.page}: image of {bomb.width}x{bomb.height} pixels "
                             f"is over the {self.options.max_image_pixels:,}-pixel limit (a possible decompression "
                             "bomb; raise MMRAG_MAX_IMAGE_PIXELS to allow it)")
            failed = emitted = 0
            tail = ""  # the end of the previous page's text: context for this page's first chunk
            for pno in range(doc.page_count):
                try:
                    elements = list(self._page(doc.load_page(pno), state, source))
                    elements, tail = carry_page_context(elements, tail, self.options.chunk_overlap)
                except Exception as e:  # one broken page must not cost the rest of the document
                    failed += 1
                    tail = ""
                    warn(source, f"page {pno + 1} could not be parsed and was skipped ({type(e).__name__}: {e})")
                    continue
                emitted += len(elements)
                yield from elements
            if failed == doc.page_count:
                raise ParseError(source, f"none of the {failed} pages could be parsed: {_DAMAGED}")
            if emitted == 0 and doc.is_repaired:
                raise ParseError(source, f"nothing could be read from its {doc.page_count} pages: {_DAMAGED}")
        finally:
            doc.close()

    def _page(self, page: pymupdf.Page, state: DocImages, source: str) -> Iterator[Element]:
        options = self.options
        number = page.number + 1
        page_rect: Rect = tuple(page.rect)  # type: ignore[assignment]
        blocks, vectors = read_page(page)
        blocks = [b for b in blocks if b.text.strip()]
        garbled = bool(blocks) and is_garbled("\n".join(b.text for b in blocks))
        ocr_reason: str | None = None
        if garbled:
            ocr_reason = "garbled text layer"
        elif not blocks and (vectors or page.get_images()):
            ocr_reason = "no text layer"

        tables = []
        if blocks and not garbled and (
            options.find_tables == "always" or (options.find_tables == "auto" and may_hold_tables(vectors, blocks))
        ):
            tables = find_page_tables(page, vectors, blocks)
        table_boxes = [t.bbox for t in tables]

        regions = vector_regions(vectors, blocks, page_rect, avoid=table_boxes) if len(vectors) >= 4 else []
        # A table's cells are the table's; a chart's tick labels and legend are the chart's (its ``text_layer``).
        prose = [b for b in blocks if not _inside(b.bbox, table_boxes) and (garbled or not _inside(b.bbox, regions))]
        ordered = reading_order(prose, page_rect[2] - page_rect[0])
        yield from self._chunks(ordered, page_rect, number, source, garbled)

        for t in tables:
            yield Element(kind="table", source=source, text=t.text(), page=number, bbox=clip_box(t.bbox, page_rect),
                          mime_type="text/markdown", metadata=t.metadata())

        try:
            yield from raster_images(page, blocks, state, options, source, skip_page_scans=ocr_reason is not None,
                                     covered=regions)
            # labels of a garbled page are garbage too: its figures come without context
            yield from vector_figures(page, regions, [] if garbled else blocks, options, source)
        except Exception as e:  # an image MuPDF refuses costs the page its pictures, never its text
            warn(source, f"pictures of page {number} skipped: MuPDF cannot read them ({type(e).__name__}: {e})")

        if options.pages_as_images or ocr_reason:
            yield from self._render(page, page_rect, ordered, source, ocr_reason)

    def _chunks(self, blocks: Sequence[TextBlock], page_rect: Rect, number: int, source: str,
                garbled: bool) -> Iterator[Element]:
        # A page number ("3", "Page 3 of 9") alone at the top or bottom of a page is noise in every index.
        blocks = [b for i, b in enumerate(blocks)
                  if not (i in (0, len(blocks) - 1) and _PAGE_MARKER.fullmatch(b.text))]
        if not blocks:
            return
        parts: list[str] = []
        offsets: list[tuple[int, int, Rect]] = []
        pos = 0
        for b in blocks:
            if parts:
                parts.append("\n\n")
                pos += 2
            parts.append(b.text)
            offsets.append((pos, pos + len(b.text), b.bbox))
            pos += len(b.text)
        text = "".join(parts)
        metadata = {"garbled": True} if garbled else {}
        for start, end in split_spans(text, self.options.chunk_size, self.options.chunk_overlap):
            covered = [bb for s, e, bb in offsets if s < end and e > start]
            bbox: BBox | None = clip_box(union(covered), page_rect) if covered else None
            yield Element(kind="text", source=source, text=text[start:end], page=number, bbox=bbox,
                          mime_type="text/plain", metadata=metadata)

    def _render(self, page: pymupdf.Page, page_rect: Rect, blocks: Sequence[TextBlock], source: str,
                ocr_reason: str | None) -> Iterator[Element]:
        dpi = render_dpi(page_rect, self.options)
        png = page.get_pixmap(dpi=dpi).tobytes("png")
        metadata: dict[str, object] = {"dpi": dpi}
        text = ""
        if ocr_reason:
            metadata.update(needs_ocr=True, ocr_reason=ocr_reason)
        else:
            text = " ".join(" ".join(b.text.split()) for b in blocks)[:2000]
        element = image_element(png, source, self.options, text=text, page=page.number + 1,
                                bbox=clip_box(page_rect, page_rect), metadata=metadata)
        if element is not None:
            yield replace(element, kind="page")


def _inside(box: Rect, regions: Sequence[Rect]) -> bool:
    """Mostly (>= 60%) inside one of ``regions``."""
    a = area(box)
    return a > 0 and any(intersection_area(box, r) >= 0.6 * a for r in regions)
