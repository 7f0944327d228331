"""The offline captioner of the local profile: OCR text for images and pages, factual summaries for tables.

The local profile has no vision model, so :class:`LocalCaptioner` never describes what a picture shows. An
image's caption is the text OCR found in it ("Text in the image (OCR): ..."), or a plain statement of its size
and that no text was found (or that OCR is off). A scanned page (``needs_ocr``) also gets the OCR text as
``metadata["ocr_text"]`` so that it becomes searchable. A table's summary is built from its header, its counts
and the caption above it, and states nothing that is not in the table. Everything is deterministic.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from mmrag.elements import TABLE_RULE, Element
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY
from mmrag.providers.local.ocr import OcrEngine, OcrResult

__all__ = ["CAPTION_MAX_CHARS", "CAPTION_TEXT_PREFIXES", "LocalCaptioner", "OCR_CAPTION_PREFIX",
           "TEXT_LAYER_CAPTION_PREFIX", "summarize_table"]

logger = logging.getLogger(__name__)

CAPTION_MAX_CHARS = 2000
"""OCR text in a caption is cut to this many characters (``ocr_text`` keeps all of it)."""
OCR_CAPTION_PREFIX = "Text in the image (OCR): "
"""What an image caption says before the words OCR read in the image."""
TEXT_LAYER_CAPTION_PREFIX = "Text in the figure (PDF text layer): "
"""What a vector figure's caption says before the words of the PDF text layer inside the figure."""
CAPTION_TEXT_PREFIXES = (OCR_CAPTION_PREFIX, TEXT_LAYER_CAPTION_PREFIX)
"""The prefixes after which a local caption holds the element's own words (other local captions are statements)."""

_MAX_COLUMN_NAMES = 20
_MAX_CONTEXT_CHARS = 300
_WS = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+−]?[\d.,]+%?")


class LocalCaptioner:
    """Captions images and pages with OCR text and summarises tables, offline (implements ``Captioner``).

    Args:
        ocr: the OCR engine (:func:`mmrag.providers.local.ocr.make_ocr_engine`), or None when OCR is off or unavailable.
        max_workers: images read at once (onnxruntime releases the GIL, so threads run in parallel).
    """

    def __init__(self, ocr: OcrEngine | None, *, max_workers: int = 2) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.ocr = ocr
        self.max_workers = max_workers

    def caption(self, elements: Sequence[Element]) -> list[Element]:
        """Captioned copies of ``elements`` in the same order; ids, text and other kinds are unchanged.

        Image and page elements with ``data`` get ``metadata["caption"]`` and ``metadata["caption_model"]``
        (``local:ocr-<engine>`` or ``local:none``); pages with ``needs_ocr`` also ``metadata["ocr_text"]``.
        Tables get ``metadata["summary"]`` and ``caption_model="local:table-summary"``. An image that cannot be
        read comes back unchanged, with a warning logged.
        """
        out = list(elements)
        todo = [i for i, el in enumerate(out) if el.kind in ("image", "page") and el.data is not None]
        for i in [i for i in todo if _text_layer_covers(out[i])]:
            out[i] = _text_layer_caption(out[i])
        todo = [i for i in todo if not _text_layer_covers(out[i])]
        for i, el in enumerate(out):
            if el.kind == "table":
                out[i] = _merged(el, {SUMMARY_KEY: summarize_table(el), "caption_model": "local:table-summary"})
        results = self._read_all([out[i] for i in todo])
        for i in todo:
            out[i] = self._caption_image(out[i], results)
        return out

    def _read_all(self, elements: Sequence[Element]) -> dict[bytes, OcrResult | Exception]:
        """OCR each distinct image once (a logo repeated on many pages is read once), biggest first.

        Biggest first: the longest reads start early, so the workers finish together instead of one of them
        ending the batch alone on a large page render.
        """
        if self.ocr is None:
            return {}
        distinct = sorted({el.data for el in elements if el.data is not None}, key=len, reverse=True)
        ocr = self.ocr

        def read(data: bytes) -> OcrResult | Exception:
            try:
                return ocr.read(data)
            except Exception as e:  # one unreadable image must not stop the others
                return e

        if len(distinct) > 1 and self.max_workers > 1:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(distinct)),
                                    thread_name_prefix="mmrag-ocr") as pool:
                return dict(zip(distinct, pool.map(read, distinct), strict=True))
        return {data: read(data) for data in distinct}

    def _caption_image(self, el: Element, results: Mapping[bytes, OcrResult | Exception]) -> Element:
        assert el.data is not None
        try:
            width, height = _size(el)
            if self.ocr is None:
                what = "Page render" if el.kind == "page" else "Image"
                caption = f"{what}, {width}×{height} px; OCR is off, no description available offline."
                return _merged(el, {CAPTION_KEY: caption, "caption_model": "local:none"})
            result = results[el.data]
            if isinstance(result, Exception):
                raise result
        except Exception as e:  # one unreadable image must not stop the others
            logger.warning("cannot caption %s %s (%s, page %s): %s", el.kind, el.id[:12], el.source, el.page, e)
            return el
        text = "\n".join(" ".join(line.split()) for line in result.text.splitlines() if line.strip())
        if text:
            caption = OCR_CAPTION_PREFIX + _cut(" ".join(text.split()), CAPTION_MAX_CHARS)
        else:
            what = "Page render" if el.kind == "page" else "Image"
            caption = f"{what}, {width}×{height} px; no text found by OCR."
        extra: dict[str, Any] = {CAPTION_KEY: caption, "caption_model": f"local:ocr-{result.engine}"}
        if el.kind == "page" and el.metadata.get("needs_ocr"):
            extra["ocr_text"] = text
        return _merged(el, extra)


def _text_layer_covers(el: Element) -> bool:
    """The PDF's text layer already holds the words OCR would read, more exactly: no OCR.

    That is a page render of a page with a real text layer (pages without one, or with a garbled one, carry
    ``needs_ocr`` and are read), and a vector figure whose labels the parser found in the text layer
    (``metadata["text_layer"]``, the words inside the figure's box)."""
    if el.kind == "page":
        return not el.metadata.get("needs_ocr") and bool(el.text.strip())
    layer = el.metadata.get("text_layer")
    return el.kind == "image" and isinstance(layer, str) and bool(layer.strip())


def _text_layer_caption(el: Element) -> Element:
    width, height = _size(el)
    if el.kind == "page":
        caption = f"Page render, {width}×{height} px; text layer: " + _cut(" ".join(el.text.split()),
                                                                            CAPTION_MAX_CHARS)
    else:
        caption = TEXT_LAYER_CAPTION_PREFIX + _cut(" ".join(str(el.metadata["text_layer"]).split()), CAPTION_MAX_CHARS)
    return _merged(el, {CAPTION_KEY: caption, "caption_model": "local:text-layer"})


def summarize_table(el: Element) -> str:
    """A deterministic one-paragraph summary of a table element: size, column names, caption and row labels.

    Uses ``metadata`` ``rows``, ``columns``, ``header`` and ``csv`` when the parser set them, else the Markdown
    in ``text``; the context is the text above the Markdown (a caption or heading).
    """
    meta = el.metadata
    context, table_lines = _split_context(el.text)
    md_rows = [_md_cells(line) for line in table_lines if not TABLE_RULE.fullmatch(line)]
    header = [str(h) for h in meta.get("header") or (md_rows[0] if md_rows else [])]
    rows = _int(meta.get("rows"), max(len(md_rows) - 1, 0))
    columns = _int(meta.get("columns"), len(header))
    body = _csv_body(meta.get("csv")) if meta.get("csv") else md_rows[1:]

    parts = [f"Table ({rows} {_plural(rows, 'row')} × {columns} {_plural(columns, 'column')})"]
    names = [" ".join(h.split()) for h in header if h.strip()]
    if names:
        parts.append(f" with columns: {_listing(names, _MAX_COLUMN_NAMES)}")
    summary = "".join(parts) + "."
    labels = [" ".join(r[0].split()) for r in body if r and r[0].strip()]
    if labels and sum(bool(_NUMBER.fullmatch(x)) for x in labels) < len(labels) / 2:
        first = f"'{' '.join(header[0].split())}'" if header and header[0].strip() else "first"
        summary += f" Rows ({first} column): {_listing(labels, 5)}."
    context = context.strip(" ,;:.-")
    if context:
        context = _cut(context, _MAX_CONTEXT_CHARS)
        summary += f" Context: {context}" + ("" if context.endswith(("…", ".", "?", "!")) else ".")
    return summary


def _merged(el: Element, extra: Mapping[str, Any]) -> Element:
    return replace(el, metadata={**el.metadata, **extra})


def _size(el: Element) -> tuple[int, int]:
    """Width and height from metadata, else from the image header (raises if the bytes are not an image)."""
    width, height = el.metadata.get("width"), el.metadata.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    from PIL import Image

    assert el.data is not None
    with Image.open(io.BytesIO(el.data)) as img:
        return img.size


def _listing(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip() + "…"


def _split_context(text: str) -> tuple[str, list[str]]:
    """(context above the Markdown table, the table's lines)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("|")), len(lines))
    context = "; ".join(_WS.sub(" ", line).strip() for line in lines[:start] if line.strip())
    return context, [line.strip() for line in lines[start:] if line.strip().startswith("|")]


def _md_cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", inner)]


def _csv_body(text: object) -> list[list[str]]:
    if not isinstance(text, str):
        return []
    try:
        return list(csv.reader(io.StringIO(text)))[1:]
    except csv.Error:
        return []


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
