# mypy: disable-error-code="no-untyped-call"
"""Inline images (``BI <dict> ID <data> EI`` inside a content stream): found and, past the pixel limit, removed.

An inline image is part of the page's drawing instructions, not an object of its own, so the image listing
(``get_page_images``) never shows it; yet reading the page's text decodes it (a 30000 x 30000 inline image cost
860 MB and 12 s). Its dictionary declares ``/W`` (``/Width``) and ``/H`` (``/Height``) as plain integers (the
format allows no indirect values there), so the size is read from the stream's bytes without decoding anything,
and a bomb is cut out of the in-memory copy of the document before any page is read. The content streams of the
pages and of the form XObjects they draw (reusable drawings, nested ones too) are scanned; a form no page draws is
never read.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pymupdf

__all__ = ["InlineBomb", "defuse_inline_images"]

logger = logging.getLogger(__name__)

_BI = re.compile(rb"(?<![^\s\[\]()<>{}/%])BI(?=[\s/])")
_ID = re.compile(rb"(?<=\s)ID(?=\s)")
_EI = re.compile(rb"(?<=\s)EI(?=[\s]|$)")
_WIDTH = re.compile(rb"/(?:W|Width)\s+(\d{1,12})\b")
_HEIGHT = re.compile(rb"/(?:H|Height)\s+(\d{1,12})\b")


@dataclass(frozen=True)
class InlineBomb:
    """An inline image that was removed: the page that draws it (1-based) and its size."""

    page: int
    width: int
    height: int


def _cut(data: bytes, max_pixels: int) -> tuple[bytes, list[tuple[int, int]]]:
    """``data`` without its inline images over ``max_pixels``, and the sizes of those removed."""
    if b"BI" not in data:
        return data, []
    out: list[bytes] = []
    found: list[tuple[int, int]] = []
    pos = kept = 0
    while (start := _BI.search(data, pos)) is not None:
        head = _ID.search(data, start.end())
        if head is None:
            break
        end = _EI.search(data, head.end())
        stop = end.end() if end is not None else len(data)
        info = data[start.end():head.start()]
        width, height = _WIDTH.search(info), _HEIGHT.search(info)
        if width and height and int(width[1]) * int(height[1]) > max_pixels:
            found.append((int(width[1]), int(height[1])))
            out.append(data[kept:start.start()])
            out.append(b" ")  # the whole BI ... EI: the q / cm / Q around it stay and draw nothing
            kept = stop
        pos = stop
    if not found:
        return data, []
    out.append(data[kept:])
    return b"".join(out), found


def defuse_inline_images(doc: pymupdf.Document, max_pixels: int) -> list[InlineBomb]:
    """Remove, in ``doc`` (in memory), every inline image over ``max_pixels``; returns what was removed."""
    streams: dict[int, int] = {}  # content stream xref -> page number
    for pno in range(doc.page_count):
        try:
            page = doc.load_page(pno)
            for xref in page.get_contents():
                streams.setdefault(xref, pno + 1)
            for xref, *_ in doc.get_page_xobjects(pno):  # forms, nested ones included (with their invoker)
                streams.setdefault(xref, pno + 1)
        except Exception:  # a broken page is reported when it is parsed
            continue
    removed: list[InlineBomb] = []
    for xref, pno in streams.items():
        try:
            data = doc.xref_stream(xref)
            if not data:
                continue
            cleaned, found = _cut(data, max_pixels)
            if found:
                doc.update_stream(xref, cleaned)
                removed.extend(InlineBomb(pno, w, h) for w, h in found)
        except Exception:
            logger.debug("could not scan content stream xref %d for inline images", xref, exc_info=True)
    return removed
