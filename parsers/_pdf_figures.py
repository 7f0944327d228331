# mypy: disable-error-code="no-untyped-call"
"""Pictures on a PDF page: embedded raster images, and vector charts rendered to PNG.

PyMuPDF cannot hand out a vector chart as an image, so regions dense in vector graphics (found from the
vector boxes of the text page, no extra pass over the page) are rendered with ``get_pixmap(clip=...)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pymupdf

from mmrag.elements import Element
from mmrag.parsers._pdf_inline import InlineBomb, defuse_inline_images
from mmrag.parsers._pdf_text import CAPTION_RE, Rect, TextBlock, area, caption_near, clip_box, intersection_area, union
from mmrag.parsers._report import warn
from mmrag.parsers.images import image_element
from mmrag.parsers.options import ParseOptions

__all__ = ["DocImages", "raster_images", "render_dpi", "vector_figures", "vector_regions"]

logger = logging.getLogger(__name__)

_PASS_THROUGH = {"png", "jpeg", "jpg", "gif", "webp", "bmp", "tiff", "tif"}
_FIGURE_WORDS = ("figure", "fig", "chart", "exhibit", "plate", "illustration")


def render_dpi(rect: Rect, options: ParseOptions) -> int:
    """``render_dpi``, lowered when needed so that a render stays under ``max_image_pixels``."""
    inches = area(rect) / (72 * 72)
    if inches <= 0:
        return int(options.render_dpi)
    return max(18, min(int(options.render_dpi), int(math.sqrt(options.max_image_pixels / inches))))


@dataclass(slots=True)
class DocImages:
    """Per-document state: how many pages use each image, and what has been emitted already."""

    pages_of: dict[int, int]
    page_count: int
    seen_xrefs: set[int] = field(default_factory=set)
    seen_hashes: set[str] = field(default_factory=set)
    bombs: dict[int, tuple[int, int]] = field(default_factory=dict)
    inline_bombs: tuple[InlineBomb, ...] = ()

    @classmethod
    def scan(cls, doc: pymupdf.Document, max_pixels: int | None = None) -> DocImages:
        """Count the pages of every image and, with ``max_pixels``, defuse decompression bombs.

        An image whose declared width x height (read from the image listing, or for a soft mask from its
        dictionary, references followed; nothing decoded) passes ``max_pixels`` is replaced, in this in-memory
        copy of the document only, by a 1x1 grey pixel, and an inline image that passes it is cut out of its
        content stream (:mod:`mmrag.parsers._pdf_inline`): listing
        where images sit (``get_image_info``) and rendering a page decode every image on it, and one 30000 x
        30000 image would cost gigabytes and tens of seconds before it could be refused.
        """
        pages_of: dict[int, int] = {}
        bombs: dict[int, tuple[int, int]] = {}
        for pno in range(doc.page_count):
            try:
                listing = doc.get_page_images(pno, full=True)
            except Exception:  # a broken page is reported when it is parsed
                continue
            for xref, smask, width, height, *_ in listing:
                pages_of[xref] = pages_of.get(xref, 0) + 1
                if max_pixels is None or xref in bombs:
                    continue
                sizes = [(int(width), int(height))]
                if smask:
                    sizes.append(_declared_size(doc, smask))
                worst = max(sizes, key=lambda wh: wh[0] * wh[1])
                if worst[0] * worst[1] > max_pixels:
                    bombs[xref] = worst
                    for target in (xref, smask) if smask else (xref,):
                        _defuse(doc, target)
        inline = tuple(defuse_inline_images(doc, max_pixels)) if max_pixels is not None else ()
        return cls(pages_of=pages_of, page_count=doc.page_count, bombs=bombs, inline_bombs=inline)

    def is_repeated(self, xref: int) -> bool:
        """Used on >= 3 pages, or on most pages of a longer document: a logo, a letterhead, a background."""
        n = self.pages_of.get(xref, 0)
        return n >= 3 or (self.page_count >= 4 and n > self.page_count / 2)


def _declared_size(doc: pymupdf.Document, xref: int) -> tuple[int, int]:
    """``/Width`` and ``/Height`` of image ``xref``, following indirect values (``/Width 12 0 R``)."""
    return _declared(doc, xref, "Width"), _declared(doc, xref, "Height")


def _declared(doc: pymupdf.Document, xref: int, key: str) -> int:
    try:
        kind, value = doc.xref_get_key(xref, key)
        for _ in range(8):  # a chain of references, bounded: a loop of them is not a number
            if kind != "xref":
                break
            value = doc.xref_object(int(value.split()[0]), compressed=True).strip()
            kind = "xref" if value.endswith(" R") else "int"
        return int(float(value))
    except (ValueError, RuntimeError, IndexError):
        return 0


def _defuse(doc: pymupdf.Document, xref: int) -> None:
    """Make image ``xref`` a 1x1 grey pixel (in memory), so nothing ever decodes the original."""
    try:
        doc.update_stream(xref, b"\x80", compress=False)
        for key, value in (("Filter", "null"), ("DecodeParms", "null"), ("Width", "1"), ("Height", "1"),
                           ("ColorSpace", "/DeviceGray"), ("BitsPerComponent", "8"), ("SMask", "null"),
                           ("Decode", "null"), ("Mask", "null")):
            doc.xref_set_key(xref, key, value)
    except Exception:  # the image then stays out of raster_images anyway; a render may still decode it
        logger.debug("could not defuse image xref %d", xref, exc_info=True)


def _image_bytes(doc: pymupdf.Document, xref: int, smask: int) -> bytes | None:
    """Encoded bytes of image ``xref`` (alpha applied when it has a soft mask), or None to render instead."""
    if smask:
        try:
            pix = pymupdf.Pixmap(pymupdf.Pixmap(doc, xref), pymupdf.Pixmap(doc, smask))
        except Exception:
            return None  # mask of another size or colour space: render the placement instead
        return bytes(pix.tobytes("png"))
    info = doc.extract_image(xref)
    if not info or not info.get("image"):
        return None
    ext = str(info.get("ext", "")).lower()
    if ext in _PASS_THROUGH and not (ext in ("jpeg", "jpg") and info.get("colorspace", 3) == 4):
        return bytes(info["image"])
    # JPX, JBIG2, CMYK JPEG...: decode with MuPDF and re-encode as PNG
    pix = pymupdf.Pixmap(doc, xref)
    if pix.colorspace is not None and pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    return bytes(pix.tobytes("png"))


def raster_images(
    page: pymupdf.Page,
    blocks: Sequence[TextBlock],
    state: DocImages,
    options: ParseOptions,
    source: str,
    *,
    skip_page_scans: bool,
    covered: Sequence[Rect] = (),
) -> Iterator[Element]:
    """One ``image`` element per embedded raster image shown on ``page`` (first sighting only).

    Images inside a ``covered`` region (a vector figure rendered whole) are left to that render. Several
    images stacked over the whole page (scans split into background and foreground layers) become one
    render of the page.
    """
    images = page.get_images(full=True)
    if not images:
        return
    for xref, *_ in images:
        if xref in state.bombs and xref not in state.seen_xrefs:
            state.seen_xrefs.add(xref)
            width, height = state.bombs[xref]
            warn(source, f"skipped image xref {xref} on page {page.number + 1}: image of {width}x{height} pixels "
                         f"is over the {options.max_image_pixels:,}-pixel limit (a possible decompression bomb; "
                         "raise MMRAG_MAX_IMAGE_PIXELS to allow it)")
    doc = page.parent
    page_rect: Rect = tuple(page.rect)  # type: ignore[assignment]
    page_area = area(page_rect)
    placements: dict[int, list[Rect]] = {}
    for info in page.get_image_info(xrefs=True):
        xref = info.get("xref", 0)
        r = clip_box(tuple(info["bbox"]), page_rect)
        if xref and area(r) > 0:
            placements.setdefault(xref, []).append(r)
    layers = [img[0] for img in images if img[0] in placements and img[0] not in state.seen_xrefs
              and area(max(placements[img[0]], key=area)) >= 0.8 * page_area]
    if len(layers) >= 2:
        state.seen_xrefs.update(layers)
        if not skip_page_scans:
            data = page.get_pixmap(dpi=render_dpi(page_rect, options)).tobytes("png")
            element = image_element(data, source, options, page=page.number + 1, bbox=clip_box(page_rect, page_rect),
                                    metadata={"xref": layers[0], "layers": len(layers)})
            if element is not None and element.content_hash not in state.seen_hashes:
                state.seen_hashes.add(element.content_hash)
                yield element
    for xref, smask, width, height, *_ in images:
        if xref in state.seen_xrefs or xref not in placements:
            continue  # emitted already, or not drawn on this page (an unused resource, a mask)
        if min(width, height) < options.min_image_px:
            state.seen_xrefs.add(xref)
            continue  # image_element would skip it too: spare the decoding
        rect = max(placements[xref], key=area)
        if state.is_repeated(xref) and area(rect) < 0.1 * page_area:
            state.seen_xrefs.add(xref)
            logger.debug("%s: image xref %d repeats on %d pages: skipped as a logo", source, xref,
                         state.pages_of.get(xref, 0))
            continue
        if skip_page_scans and area(rect) >= 0.8 * page_area:
            continue  # the scan of a page that is rendered whole anyway
        if any(intersection_area(rect, r) >= 0.8 * area(rect) for r in covered):
            continue  # part of a vector figure, rendered with its axes and legend
        state.seen_xrefs.add(xref)
        try:
            data = _image_bytes(doc, xref, smask)
            if data is None:
                data = page.get_pixmap(clip=pymupdf.Rect(rect), dpi=render_dpi(rect, options)).tobytes("png")
        except Exception as e:  # MuPDF refuses this image: lose the image, not the page
            warn(source, f"skipped image xref {xref} on page {page.number + 1}: MuPDF cannot decode it "
                         f"({type(e).__name__}: {e})")
            continue
        context = ""
        if area(rect) < 0.8 * page_area:
            context = caption_near(rect, blocks, kinds=_FIGURE_WORDS, prefer_below=True)
        element = image_element(data, source, options, text=context, page=page.number + 1, bbox=rect,
                                metadata={"xref": xref, "width": width, "height": height})
        if element is None or element.content_hash in state.seen_hashes:
            continue
        state.seen_hashes.add(element.content_hash)
        yield element


def vector_regions(vectors: Sequence[Rect], blocks: Sequence[TextBlock], page_rect: Rect,
                   avoid: Sequence[Rect] = ()) -> list[Rect]:
    """Regions of ``page_rect`` that hold a vector chart or diagram, in top-to-bottom order.

    Vector boxes within 6 pt of each other are clustered, and clusters less than 36 pt apart joined unless a
    caption lies between them. A region is kept when it is at least 10% of the page wide and high, has >= 4
    vector items, is neither a table (``avoid``, or thin rules with text between them) nor mostly text (an
    equation), and is then grown by the short labels around it (axis ticks and titles).
    """
    pw, ph = page_rect[2] - page_rect[0], page_rect[3] - page_rect[1]
    page_area = pw * ph
    items = [v for v in vectors if area(v) < 0.85 * page_area]
    if len(items) < 4:
        return []
    clusters = _merge_panels(_cluster(items, 6.0), blocks)
    out: list[Rect] = []
    for members in clusters:
        if len(members) < 4:
            continue
        box = union(members)
        if box[2] - box[0] < 0.1 * pw or box[3] - box[1] < 0.1 * ph:
            continue
        if any(intersection_area(box, t) > 0.5 * min(area(box), area(t)) for t in avoid):
            continue
        thin = all(min(m[2] - m[0], m[3] - m[1]) <= 2 for m in members)
        text_cover = sum(intersection_area(b.bbox, box) for b in blocks) / max(area(box), 1.0)
        if text_cover > (0.2 if thin else 0.45):
            continue  # rules with text between them (a table, a framed box) or an equation's bars and glyphs
        out.append(_grow(box, blocks, page_rect))
    return sorted(out, key=lambda r: (r[1], r[0]))


def _cluster(rects: Sequence[Rect], tol: float) -> list[list[Rect]]:
    """Connected groups of rectangles that come within ``tol`` of each other."""
    order = sorted(range(len(rects)), key=lambda i: rects[i][1])
    groups: list[list[Rect]] = []
    boxes: list[list[float]] = []
    for i in order:
        r = rects[i]
        hits = [g for g, b in enumerate(boxes)
                if r[0] - tol <= b[2] and b[0] <= r[2] + tol and r[1] - tol <= b[3] and b[1] <= r[3] + tol]
        if not hits:
            groups.append([r])
            boxes.append(list(r))
            continue
        first = hits[0]
        for g in reversed(hits[1:]):
            groups[first].extend(groups.pop(g))
            b = boxes.pop(g)
            boxes[first] = [min(boxes[first][0], b[0]), min(boxes[first][1], b[1]),
                            max(boxes[first][2], b[2]), max(boxes[first][3], b[3])]
        groups[first].append(r)
        b = boxes[first]
        boxes[first] = [min(b[0], r[0]), min(b[1], r[1]), max(b[2], r[2]), max(b[3], r[3])]
    # merging two groups can make a group's box reach a third one: repeat until stable
    merged = True
    while merged and len(groups) > 1:
        merged = False
        for a in range(len(groups)):
            for c in range(a + 1, len(groups)):
                ba, bc = boxes[a], boxes[c]
                if ba[0] - tol <= bc[2] and bc[0] <= ba[2] + tol and ba[1] - tol <= bc[3] and bc[1] <= ba[3] + tol:
                    groups[a].extend(groups.pop(c))
                    bc = boxes.pop(c)
                    boxes[a] = [min(ba[0], bc[0]), min(ba[1], bc[1]), max(ba[2], bc[2]), max(ba[3], bc[3])]
                    merged = True
                    break
            if merged:
                break
    return groups


def _merge_panels(groups: list[list[Rect]], blocks: Sequence[TextBlock], gap: float = 36.0) -> list[list[Rect]]:
    """Join groups less than ``gap`` apart (panels of one figure, a plot and its legend), never across a caption."""
    captions = [b.bbox for b in blocks if CAPTION_RE.match(b.text)]
    boxes = [union(g) for g in groups]
    merged = True
    while merged and len(groups) > 1:
        merged = False
        for a in range(len(groups)):
            for c in range(a + 1, len(groups)):
                ba, bc = boxes[a], boxes[c]
                dx = max(ba[0] - bc[2], bc[0] - ba[2], 0.0)
                dy = max(ba[1] - bc[3], bc[1] - ba[3], 0.0)
                if dx > gap or dy > gap:
                    continue
                both = union([ba, bc])
                if any(intersection_area(cap, both) > 0 for cap in captions):
                    continue
                groups[a].extend(groups.pop(c))
                boxes.pop(c)
                boxes[a] = both
                merged = True
                break
            if merged:
                break
    return groups


def _grow(box: Rect, blocks: Sequence[TextBlock], page_rect: Rect, reach: float = 24.0) -> Rect:
    """``box`` plus the short text blocks (tick labels, axis titles, legends) hugging it."""
    w = box[2] - box[0]
    near = (box[0] - reach, box[1] - reach, box[2] + reach, box[3] + reach)
    extra = [b.bbox for b in blocks
             if intersection_area(b.bbox, near) > 0 and b.bbox[2] - b.bbox[0] <= 1.05 * w and len(b.text) <= 200
             and not CAPTION_RE.match(b.text)]
    grown = union([box, *extra]) if extra else box
    pad = 3.0
    return clip_box((grown[0] - pad, grown[1] - pad, grown[2] + pad, grown[3] + pad), page_rect)


def vector_figures(
    page: pymupdf.Page,
    regions: Sequence[Rect],
    blocks: Sequence[TextBlock],
    options: ParseOptions,
    source: str,
) -> Iterator[Element]:
    """Render each region to PNG as an ``image`` element with metadata ``{"figure": "vector"}``, and
    ``"text_layer"``: the words of the text layer inside the region (axis labels, legends), when there are any."""
    for rect in regions:
        dpi = render_dpi(rect, options)
        pix = page.get_pixmap(clip=pymupdf.Rect(rect), dpi=dpi)
        caption = caption_near(rect, blocks, kinds=_FIGURE_WORDS, prefer_below=True)
        inside = [" ".join(b.text.split()) for b in blocks
                  if area(b.bbox) > 0 and intersection_area(b.bbox, rect) >= 0.6 * area(b.bbox)]
        metadata: dict[str, object] = {"figure": "vector", "dpi": dpi}
        if inside:  # the figure's labels from the text layer: the local captioner then needs no OCR
            metadata["text_layer"] = " ".join(inside)[:2000]
        element = image_element(pix.tobytes("png"), source, options, text=caption, page=page.number + 1,
                                bbox=rect, metadata=metadata)
        if element is not None:
            yield element
