"""PowerPoint decks (.pptx, .pptm) with python-pptx: one unit per slide, ``page`` = the slide number.

Per slide, shapes in reading order (top to bottom, left to right, groups opened):

* ``text``: ``Slide N: TITLE`` then the body text of every text shape, then the speaker notes under a
  ``Speaker notes:`` label (``metadata["notes"]`` holds them alone); split like any text when long.
* ``table``: each table shape, as Markdown + CSV (first row = header).
* charts, from the data stored with them (:mod:`mmrag.parsers._pptx_charts`): a ``table`` element of
  categories × series, and a ``text`` element describing it (each series' values, highest and lowest), so a
  question such as "which quarter had the highest revenue?" is answerable offline, without a vision model.
* ``image``: each picture, with its alt text and the slide's title as context.
* with ``pages_as_images``, a ``page`` element per slide rendered by LibreOffice (``soffice``) when it is
  installed; without it, one warning says so and the rest is parsed as usual.

Every element carries ``metadata["location"] = "slide N"`` and ``location_kind = "slide"``.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._office import PPTX, open_package, require
from mmrag.parsers._pptx_charts import read_chart
from mmrag.parsers._report import warn
from mmrag.parsers._tables import rows_to_elements, table_element
from mmrag.parsers.chunking import split_spans
from mmrag.parsers.images import image_element
from mmrag.parsers.options import ParseOptions

__all__ = ["PptxParser"]

logger = logging.getLogger(__name__)


def _place(number: int) -> dict[str, Any]:
    return {"location_kind": "slide", "location": f"slide {number}", "slide": number}


def _shapes(shapes: Any) -> Iterator[Any]:
    """Shapes in reading order, the members of groups in place of the group."""
    ordered = sorted(shapes, key=lambda s: ((s.top or 0) // 91440, s.left or 0))  # rows of 0.1 inch
    for shape in ordered:
        if shape.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _grid(table: Any) -> list[list[str]]:
    return [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]


class PptxParser:
    """Parses PowerPoint decks into slide text, tables, chart data and pictures (see the module docstring)."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        """Elements of ``blob``, slide by slide. Raises :class:`ParseError` at once if it cannot be opened."""
        open_package(blob, PPTX, self.options).close()
        pptx = require("pptx", "python-pptx", "reading PowerPoint decks")
        try:
            deck = pptx.Presentation(io.BytesIO(blob.data))
        except Exception as e:  # KeyError for a missing part, XMLSyntaxError, PackageNotFoundError...
            raise ParseError(blob.source, f"cannot open the deck ({type(e).__name__}: {e}): the file is damaged; "
                                          "save it again from PowerPoint or LibreOffice") from e
        return self._elements(deck, blob)

    def _elements(self, deck: Any, blob: Blob) -> Iterator[Element]:
        seen: set[str] = set()  # two identical charts on one slide are one element
        texts: dict[int, str] = {}  # slide number -> its text, the context of its render
        for number, slide in enumerate(deck.slides, 1):
            try:
                elements = list(self._slide(slide, number, blob.source))
            except Exception as e:  # one broken slide must not cost the rest of the deck
                warn(blob.source, f"slide {number} could not be parsed and was skipped ({type(e).__name__}: {e})")
                continue
            for element in elements:
                if element.kind == "text" and not element.metadata.get("chart") and number not in texts:
                    texts[number] = " ".join(element.text.split())[:2000]
                if element.id not in seen:
                    seen.add(element.id)
                    yield element
        if self.options.pages_as_images:
            yield from self._renders(blob, texts)

    def _slide(self, slide: Any, number: int, source: str) -> Iterator[Element]:
        place = _place(number)
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        head = f"Slide {number}: {title}" if title else f"Slide {number}"
        body: list[str] = []
        later: list[Element] = []
        for shape in _shapes(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_chart", False):
                later.extend(self._chart(shape, head, number, place, source))
            elif getattr(shape, "has_table", False):
                grid = _grid(shape.table)
                if grid and any(any(r) for r in grid):
                    later.append(table_element(source, grid[0], grid[1:], context=head, metadata=place,
                                               location=place["location"], page=number))
            elif hasattr(shape, "image"):
                later.extend(self._picture(shape, title, number, place, source))
            elif getattr(shape, "has_text_frame", False):
                text = "\n".join(p for p in (" ".join(par.text.split()) for par in shape.text_frame.paragraphs) if p)
                if text:
                    body.append(text)
        notes = ""
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
        text = "\n\n".join(body)
        if notes:
            text += ("\n\n" if text else "") + f"Speaker notes: {notes}"
        if text or title:
            meta = {**place, "title": title, **({"notes": notes} if notes else {})}
            budget = max(200, self.options.chunk_size - len(head) - 2)
            spans = split_spans(text, budget, min(self.options.chunk_overlap, budget - 1)) if text else [(0, 0)]
            for start, end in spans:
                yield Element(kind="text", source=source, text=f"{head}\n\n{text[start:end]}".strip(), page=number,
                              mime_type="text/plain", metadata=meta)
        yield from later

    def _chart(self, shape: Any, head: str, number: int, place: dict[str, Any], source: str) -> Iterator[Element]:
        data = read_chart(shape.chart._chartSpace)
        if data is None:
            return
        meta = {**place, "chart_type": data.chart_type, **({"caption": data.title} if data.title else {})}
        described = f"{head}\n\nChart: {data.description()}"
        yield Element(kind="text", source=source, text=described, page=number, mime_type="text/plain",
                      metadata={**meta, "chart": True})
        context = f"{head}\nChart: {data.title}" if data.title else f"{head}\nChart ({data.chart_type})"
        yield from rows_to_elements(source, data.header, data.rows, context=context, metadata={**meta, "chart": True},
                                    locate=lambda _first, _last: place["location"], limit=4 * self.options.chunk_size,
                                    page=number)

    def _picture(self, shape: Any, title: str, number: int, place: dict[str, Any], source: str) -> Iterator[Element]:
        try:
            data = shape.image.blob
        except Exception as e:  # a linked (not embedded) picture, a missing part
            warn(source, f"skipped picture on slide {number}: cannot read it ({type(e).__name__}: {e})")
            return
        alt = ""
        c_nv_pr = shape._element.xpath("./*[1]/p:cNvPr")
        if c_nv_pr:
            alt = (c_nv_pr[0].get("descr") or c_nv_pr[0].get("title") or "").strip()
        text = "\n".join(t for t in (alt, f"Slide {number}: {title}" if title else "") if t)
        element = image_element(data, source, self.options, text=text, page=number,
                                metadata={**place, **({"alt": alt} if alt else {})}, label=f"{shape.name!r}")
        if element is not None:
            yield element

    def _renders(self, blob: Blob, texts: dict[int, str]) -> Iterator[Element]:
        soffice = shutil.which("soffice") or shutil.which("libreoffice")
        if soffice is None:
            warn(blob.source, "slides not rendered as images (pages_as_images): LibreOffice is not installed "
                              "(apt-get install libreoffice-impress, then soffice must be on PATH)")
            return
        import pymupdf

        with tempfile.TemporaryDirectory(prefix="mmrag-slides-") as tmp:
            deck = Path(tmp) / "deck.pptx"
            deck.write_bytes(blob.data)
            try:
                subprocess.run([soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp}/profile",
                                "--convert-to", "pdf", "--outdir", tmp, str(deck)], check=True, timeout=180,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                pdf = pymupdf.open(Path(tmp) / "deck.pdf")  # type: ignore[no-untyped-call]
            except (subprocess.SubprocessError, OSError, RuntimeError) as e:
                warn(blob.source, f"slides not rendered as images: LibreOffice failed ({type(e).__name__}: {e})")
                return
            with pdf:
                for index in range(pdf.page_count):
                    png = pdf.load_page(index).get_pixmap(dpi=self.options.render_dpi).tobytes("png")  # type: ignore[no-untyped-call]
                    element = image_element(png, blob.source, self.options, text=texts.get(index + 1, ""),
                                            page=index + 1,
                                            metadata={**_place(index + 1), "dpi": self.options.render_dpi})
                    if element is not None:
                        yield replace(element, kind="page")
