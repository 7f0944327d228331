# mypy: disable-error-code="no-untyped-call"
"""Text layer of one PDF page: blocks rebuilt from positioned words, reading order, captions, garbled text.

One PyMuPDF text page per PDF page feeds everything here (and, with ``TEXT_COLLECT_VECTORS``, also tells where
vector graphics are), so a text-only page costs about one ``page.get_text()``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pymupdf

from mmrag.elements import BBox, Element
from mmrag.parsers.chunking import tail_text

__all__ = [
    "CONTEXT_KEY",
    "Rect",
    "TextBlock",
    "area",
    "caption_near",
    "carry_page_context",
    "clip_box",
    "garbled_share",
    "intersection_area",
    "is_garbled",
    "mend_ligatures",
    "read_page",
    "reading_order",
    "union",
]

Rect = tuple[float, float, float, float]

# No ligature preservation: "ﬁ" comes out as "fi", which is what people type into a search box.
TEXT_FLAGS = (
    pymupdf.TEXT_PRESERVE_WHITESPACE
    | pymupdf.TEXT_MEDIABOX_CLIP
    | getattr(pymupdf, "TEXT_CID_FOR_UNKNOWN_UNICODE", 128)
    | getattr(pymupdf, "TEXT_COLLECT_VECTORS", 1024)
)
_VECTOR_BLOCK = 3

_NUMBER = re.compile(r"^[-+<>=~±(]?[$€£]?\d[\d.,:/%-]*\)?$")
CAPTION_RE = re.compile(r"^\s*(?P<kind>figure|fig\.|table|tab\.|chart|exhibit|plate|illustration)\s*[A-Z]?\d+", re.I)


@dataclass(slots=True)
class TextBlock:
    """A block of text: visual lines (words joined by spaces) and its bounding box."""

    text: str
    bbox: Rect
    rows: int  # visual lines
    gapped_rows: int  # visual lines made of >= 3 separate runs (columns of a text table)
    gapped_numbers: float = 0.0  # share of numeric words in those lines


def union(rects: Iterable[Rect]) -> Rect:
    rs = list(rects)
    return (min(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs), max(r[3] for r in rs))


def intersection_area(a: Rect, b: Rect) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def area(r: Rect) -> float:
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def clip_box(r: Rect, page: Rect) -> BBox:
    """``r`` clipped to the page, so every bbox an element carries lies on its page."""
    x0, y0 = min(max(r[0], page[0]), page[2]), min(max(r[1], page[1]), page[3])
    return (x0, y0, max(x0, min(r[2], page[2])), max(y0, min(r[3], page[3])))


def read_page(page: pymupdf.Page) -> tuple[list[TextBlock], list[Rect]]:
    """Text blocks (in content order) and the bounding boxes of vector graphics of ``page``."""
    tp = page.get_textpage(flags=TEXT_FLAGS)
    vectors: list[Rect] = [(b[0], b[1], b[2], b[3]) for b in tp.extractBLOCKS() if b[6] == _VECTOR_BLOCK]
    # (x0, y0, x1, y1, word, block_no, line_no, word_no), in content order
    words = tp.extractWORDS()
    if any(font[2] == "Type3" for font in page.get_fonts()):  # TeX bitmap fonts: ligatures as control codes
        words = mend_ligatures(words, tp.extractText())
    blocks: list[TextBlock] = []
    lines: dict[tuple[int, int], list[Any]] = {}  # (block_no, line_no) -> [x0, y0, x1, y1, words]
    current = None
    last: list[Any] | None = None  # the line holding the last word read
    last_box: Sequence[Any] = ()  # and that word
    for w in words:
        key = (w[5], w[6])
        if w[5] != current:
            current = w[5]
            if last is not None and _continues(last, last_box, w):
                # MuPDF closes a text block at every vector graphic it collects, even an underline drawn
                # mid-line; the next block then starts where the text left off, on the same baseline.
                _extend(last, w, glue=w[0] - last_box[2] <= _GLUE * (last_box[3] - last_box[1]))
                lines[key] = last
                last_box = w
                continue
            if lines:
                blocks.append(_block(lines.values()))
            lines = {}
        line = lines.get(key)
        if line is None:
            line = lines[key] = [w[0], w[1], w[2], w[3], [w[4]]]
        else:
            _extend(line, w, glue=False)
        last, last_box = line, w
    if lines:
        blocks.append(_block(lines.values()))
    return blocks, vectors


# TeX's T1 (Cork) encoding puts the ligatures at 0x1B-0x1F; Type3 fonts made by dvips keep those codes, and MuPDF
# reads them as spaces: "uni\x1ced" becomes the words "uni" and "ed", "\x1ductuation" the word "uctuation".
_LIGATURES = {"\x1b": "ff", "\x1c": "fi", "\x1d": "fl", "\x1e": "ffi", "\x1f": "ffl"}
_LIGATURE_RUN = re.compile(r"([^\s\x1b-\x1f]*)([\x1b-\x1f])([^\s\x1b-\x1f]*)")


def mend_ligatures(words: Sequence[Any], text: str) -> list[Any]:
    """``words`` (MuPDF word tuples, content order) with T1-encoded ligatures put back: "uni" + "ed" → "unified",
    "uctuation" → "fluctuation". ``text`` is the same text page's plain text, where the codes are still visible;
    each ligature is matched to the next words (in order) that hold its neighbours, and skipped when none do."""
    out = list(words)
    start = 0
    for left, code, right in _LIGATURE_RUN.findall(text):
        ligature = _LIGATURES[code]
        for j in range(start, len(out)):
            w = out[j]
            if left and right:
                nxt = out[j + 1] if j + 1 < len(out) else None
                if w[4] != left or nxt is None or nxt[4] != right or tuple(nxt[5:7]) != tuple(w[5:7]):
                    continue
                out[j : j + 2] = [(w[0], min(w[1], nxt[1]), nxt[2], max(w[3], nxt[3]), left + ligature + right,
                                   *w[5:])]
            elif w[4] == (right or left):
                out[j] = (*w[:4], ligature + right if right else left + ligature, *w[5:])
            else:
                continue
            start = j + 1
            break
    return out


# A block that starts on the baseline of the previous block's last word, at most this many line heights to its
# right, continues it (a column gutter is wider); at most _GLUE line heights away, the two are one word.
_CONTINUE = 0.6
_GLUE = 0.12


def _continues(line: Sequence[Any], prev: Sequence[Any], word: Sequence[Any]) -> bool:
    """Whether ``word``, the first of a new block, continues ``line``, whose last word is ``prev``."""
    h: float = prev[3] - prev[1]
    if h <= 0:
        return False
    gap: float = word[0] - prev[2]
    same_band: bool = abs(word[1] - prev[1]) <= 0.15 * h and abs(word[3] - prev[3]) <= 0.15 * h
    # Words of rotated text are taller than wide and stack side by side: their joined "line" would be narrow.
    wide: bool = max(line[2], word[2]) - line[0] >= 2 * h
    return same_band and wide and -0.25 * h <= gap <= _CONTINUE * h


def _extend(line: list[Any], w: Sequence[Any], *, glue: bool) -> None:
    line[0] = min(line[0], w[0])
    line[1] = min(line[1], w[1])
    line[2] = max(line[2], w[2])
    line[3] = max(line[3], w[3])
    if glue:
        line[4][-1] += w[4]
    else:
        line[4].append(w[4])


def _block(lines: Iterable[list[Any]]) -> TextBlock:
    # MuPDF breaks a visual line into several "lines" at wide gaps (table columns, "key   value" pairs);
    # put runs that share a baseline back on one row so "C4 14 7 28" stays together.
    runs = sorted({id(r): r for r in lines}.values(), key=lambda r: (r[1] + r[3]) / 2)
    rows: list[list[list[Any]]] = []
    for run in runs:
        if rows:
            last = rows[-1][0]
            mid = (run[1] + run[3]) / 2
            if last[1] <= mid <= last[3] and (last[1] + last[3]) / 2 >= run[1]:
                rows[-1].append(run)
                continue
        rows.append([run])
    texts = []
    gapped = tokens = numbers = 0
    for row in rows:
        row.sort(key=lambda r: r[0])
        texts.append(" ".join(" ".join(r[4]) for r in row))
        if len(row) >= 3:
            gapped += 1
            for r in row:
                tokens += len(r[4])
                numbers += sum(1 for w in r[4] if _NUMBER.match(w))
    bbox = union((r[0], r[1], r[2], r[3]) for r in runs)
    return TextBlock("\n".join(texts), bbox, len(rows), gapped, numbers / tokens if tokens else 0.0)


def reading_order(blocks: Sequence[TextBlock], page_width: float) -> list[TextBlock]:
    """Blocks in reading order: column by column between blocks that span columns.

    Gutters are vertical bands that no narrow block crosses. A block crossing a gutter (a title, a wide
    paragraph) closes the current band; inside a band blocks go column by column, top to bottom.
    """
    if len(blocks) < 2:
        return list(blocks)
    narrow = [b for b in blocks if b.bbox[2] - b.bbox[0] < 0.45 * page_width]
    spans = sorted((b.bbox[0], b.bbox[2]) for b in narrow)
    gutters: list[tuple[float, float]] = []
    if spans:
        end = spans[0][1]
        for x0, x1 in spans[1:]:
            if x0 - end >= 10:
                gutters.append((end, x0))
            end = max(end, x1)
    if not gutters:
        return sorted(blocks, key=lambda b: (round(b.bbox[1]), b.bbox[0]))

    def column(b: TextBlock) -> int | None:
        x0, x1 = b.bbox[0], b.bbox[2]
        col = 0
        for g0, g1 in gutters:
            if x0 < g0 + 1 and x1 > g1 - 1:
                return None  # crosses a gutter
            if x0 >= g1 - 1:
                col += 1
        return col

    out: list[TextBlock] = []
    band: list[tuple[int, TextBlock]] = []
    for b in sorted(blocks, key=lambda b: (b.bbox[1], b.bbox[0])):
        col = column(b)
        if col is None:
            out.extend(x for _, x in sorted(band, key=lambda cb: (cb[0], cb[1].bbox[1])))
            band = []
            out.append(b)
        else:
            band.append((col, b))
    out.extend(x for _, x in sorted(band, key=lambda cb: (cb[0], cb[1].bbox[1])))
    return out


def garbled_share(text: str) -> float:
    """Share of visible characters that are symbols, private-use or replacement characters."""
    n = odd = 0
    for ch in text:
        if ch.isspace():
            continue
        n += 1
        if ch == "\ufffd" or unicodedata.category(ch) in ("So", "Co", "Cn", "Cc"):
            odd += 1
    return odd / n if n else 0.0


def is_garbled(text: str) -> bool:
    """A text layer of symbol glyphs (fonts without a usable ToUnicode map), such as "✶✵✵✵" for "1000"."""
    visible = sum(1 for ch in text if not ch.isspace())
    return visible >= 20 and garbled_share(text) >= 0.25


def _flat(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def caption_near(
    region: Rect,
    blocks: Sequence[TextBlock],
    *,
    kinds: tuple[str, ...],
    prefer_below: bool,
    reach: float = 90.0,
    fallback: bool = True,
    limit: int = 400,
) -> str:
    """The caption of ``region`` ("Figure 3: ..."), else (with ``fallback``) the nearest short text next to it.

    Args:
        region: the figure, image or table on the page.
        blocks: text blocks of the page.
        kinds: caption words that count (``figure``, ``table``...), lower case without the dot.
        prefer_below: figures are captioned below, tables usually above.
        reach: how far (points) from the region a caption may start.
        fallback: use the nearest text block when no caption is found.
        limit: longest text returned.
    """
    best: tuple[float, str] | None = None
    captions = 0
    only = ""
    for b in blocks:
        m = CAPTION_RE.match(b.text)
        if not m or m.group("kind").lower().rstrip(".") not in kinds:
            continue
        captions += 1
        only = b.text
        if min(b.bbox[2], region[2]) - max(b.bbox[0], region[0]) <= 0:
            continue  # not in the same column
        below = b.bbox[1] - region[3]
        above = region[1] - b.bbox[3]
        if -5 <= below <= reach:
            dist = max(below, 0.0) - (1000 if prefer_below else 0)
        elif -5 <= above <= reach:
            dist = max(above, 0.0) - (0 if prefer_below else 1000)
        elif intersection_area(b.bbox, region) > 0:
            dist = 500.0  # caption drawn inside the region
        else:
            continue
        if best is None or dist < best[0]:
            best = (dist, b.text)
    if best is not None:
        return _flat(best[1], limit)
    if captions == 1:
        return _flat(only, limit)  # the one caption of the page (a grid of panels under one "Figure 2")
    if not fallback:
        return ""
    near: tuple[float, str] | None = None
    for b in blocks:
        if min(b.bbox[2], region[2]) - max(b.bbox[0], region[0]) <= 0 or intersection_area(b.bbox, region) > 0:
            continue
        gap = max(b.bbox[1] - region[3], region[1] - b.bbox[3])
        if 0 <= gap <= 36 and (near is None or gap < near[0]):
            near = (gap, b.text)
    return _flat(near[1], 200) if near else ""


CONTEXT_KEY = "context"
"""Metadata key of the text that runs into a page's first chunk from the end of the page before."""


def carry_page_context(elements: Sequence[Element], previous: str, limit: int) -> tuple[list[Element], str]:
    """A sentence cut by a page break, carried to the page that goes on with it.

    The first text chunk of a page gets the last sentence(s) of the previous page's text, at most ``limit``
    characters, as ``metadata["context"]``: the index then sees "The data is available in the strucchange
    package: it can be loaded ... by" together with the ``data("USIncExp")`` that opens the next page, and the
    table rows at the top of a page together with the header the page before ended with. The element's own text
    (what is quoted and cited, with its page and box) does not change. Garbled chunks give and take nothing.

    Args:
        elements: one page's elements, in the order the parser yields them.
        previous: the end of the previous page's text ("" for the first page).
        limit: most characters carried (the chunk overlap).

    Returns:
        The elements (the first text chunk replaced when it gets a context) and this page's end for the next page.
    """
    texts = [i for i, e in enumerate(elements) if e.kind == "text" and not e.metadata.get("garbled")]
    out = list(elements)
    if not texts:
        return out, ""
    first = out[texts[0]]
    context = tail_text(previous, limit)
    if context:
        out[texts[0]] = replace(first, metadata={**first.metadata, CONTEXT_KEY: context})
    return out, tail_text(out[texts[-1]].text, limit)
