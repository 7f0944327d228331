"""Pictures for the HTML pages: object bytes, downscaled thumbnails as data URIs, PDF regions with the element's
bbox highlighted, and tables from their CSV.

Everything here degrades to None (the page shows a placeholder) instead of failing a whole page over one
unreadable object: a gallery of 50 hits is still useful with one missing thumbnail.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from mmrag.elements import Element

if TYPE_CHECKING:
    from mmrag.stores.collection import ObjectStore

__all__ = ["Loader", "Picture", "link_validity", "page_region", "table_rows", "thumbnail"]

logger = logging.getLogger(__name__)

THUMB_PX = 320
"""Long edge of gallery thumbnails: 50 of them as JPEG stay well under 5 MB."""
EVIDENCE_PX = 720
"""Long edge of the evidence pictures on an answer page."""
CONTEXT_PT = 36.0
"""Margin of page kept around a highlighted bbox (PDF points): enough to see where on the page it sits."""
_MAX_FETCH_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Picture:
    """An embeddable picture: a ``data:`` URI and its pixel size; for a part of a PDF page, which part (``region``:
    x0, y0, x1, y1 in the page's PDF points, y down), so a reader or a test can place page words on it."""

    uri: str
    width: int
    height: int
    region: tuple[float, float, float, float] | None = None


class Loader:
    """Reads the raw object of an element: its own bytes, the object store, or its link.

    Args:
        objects: the collection's object store, if open.
        fetch_links: also read ``http(s)`` object links (presigned S3 URLs) when there is no store; only links
            whose path ends with the element's own object key are read, so a document-derived URL never is.
    """

    def __init__(self, objects: ObjectStore | None = None, *, fetch_links: bool = False) -> None:
        self.objects = objects
        self.fetch_links = fetch_links

    def read(self, element: Element, uri: str | None = None) -> bytes | None:
        if element.data is not None:
            return element.data
        key = element.object_key
        if not key:
            return None
        if self.objects is not None:
            try:
                [data] = self.objects.mget([key])
                if data is not None:
                    return data
            except Exception as e:  # a picture is a convenience: log it, show a placeholder
                logger.warning("cannot read object %s: %s", key, e)
        if not uri:
            return None
        parts = urlsplit(uri)
        if parts.scheme == "file" and unquote(parts.path).endswith(key):
            try:
                return Path(unquote(parts.path)).read_bytes()
            except OSError as e:
                logger.warning("cannot read %s: %s", uri, e)
        elif parts.scheme in ("http", "https") and self.fetch_links and unquote(parts.path).endswith(key):
            return _fetch(uri)
        return None


def _fetch(url: str) -> bytes | None:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=30.0, follow_redirects=False) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_FETCH_BYTES:
                    logger.warning("object link %s is larger than %d bytes: not embedded", url, _MAX_FETCH_BYTES)
                    return None
            return bytes(body)
    except httpx.HTTPError as e:
        logger.warning("cannot fetch %s: %s", url, e)
        return None


def _open_rgb(data: bytes) -> object | None:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (EVIDENCE_PX * 2, EVIDENCE_PX * 2))
            img: Image.Image = ImageOps.exif_transpose(opened)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:  # flatten onto white, as viewers do
                rgba = img.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                return flat
            return img.convert("RGB")
    except Exception as e:  # PIL raises many types for bad images; a placeholder is shown instead
        logger.warning("cannot decode an image for display: %s", e)
        return None


def thumbnail(data: bytes, max_px: int = THUMB_PX) -> Picture | None:
    """``data`` downscaled to ``max_px`` on the long edge and embedded as a JPEG ``data:`` URI (None if the bytes
    are not a picture Pillow can read)."""
    from PIL import Image

    img = _open_rgb(data)
    if not isinstance(img, Image.Image):
        return None
    img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    return _encode(img)


def _encode(img: object, region: tuple[float, float, float, float] | None = None) -> Picture:
    from PIL import Image

    assert isinstance(img, Image.Image)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80, optimize=True)
    uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Picture(uri, img.width, img.height, region)


def _local_pdf(source: str) -> Path | None:
    if source.startswith("file://"):
        source = unquote(urlsplit(source).path)
    if source.startswith(("http://", "https://")):
        return None
    path = Path(source)
    return path if path.is_file() else None


def page_region(element: Element, *, page_render: tuple[bytes, Element] | None = None,
                max_px: int = EVIDENCE_PX) -> Picture | None:
    """The part of the element's PDF page around its bbox, with the bbox drawn as a highlighted rectangle.

    The page is rendered with PyMuPDF from the source file; when that is not readable (a URL, a moved file),
    ``page_render`` (the bytes and the ``page`` element of a stored render of the same page) is cropped instead.
    """
    if element.page is None or element.bbox is None:
        return None
    img, scale = None, 1.0
    box: Sequence[float] = element.bbox
    path = _local_pdf(element.source)
    if path is not None:
        box = _outline_from_pdf(path, element) or box
        img, scale = _render_pdf_clip(path, element.page, box, max_px)
    if img is None and page_render is not None:
        img, scale = _crop_render(page_render, box)
    if img is None:
        return None
    return _highlight(img, box, scale, max_px)


def _outline_from_pdf(path: Path, element: Element) -> tuple[float, float, float, float] | None:
    """:func:`outline_box` from the words of the element's page in the PDF (None when it cannot be read)."""
    try:
        import pymupdf

        with pymupdf.open(path) as doc:  # type: ignore[no-untyped-call]
            if element.page is None or not 1 <= element.page <= doc.page_count:
                return None
            words = doc[element.page - 1].get_text("words")
    except Exception as e:  # a damaged or encrypted PDF: the parser's bbox is outlined as it is
        logger.warning("cannot read the words of %s page %s: %s", path, element.page, e)
        return None
    return outline_box(words, element)


def _clip(bbox: Sequence[float], width: float, height: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = bbox
    return (max(0.0, x0 - CONTEXT_PT), max(0.0, y0 - CONTEXT_PT), min(width, x1 + CONTEXT_PT),
            min(height, y1 + CONTEXT_PT))


OUTLINE_MARGIN_PT = 3.0
_WORD = re.compile(r"\w+")


def outline_box(words: Sequence[Sequence[Any]], element: Element) -> tuple[float, float, float, float]:
    """The box to outline for a cited element: its bbox grown to the page words that belong to it, plus a margin.

    A parser's bbox can cut lines at its edge or miss a table's header cell; the outline takes, line by line, the
    words the bbox touches and the words next to them (gaps under 12 pt) that are words of the element's text, and
    for a table also its words just above or beside the box. ``words`` are PyMuPDF's ``get_text("words")`` tuples
    (x0, y0, x1, y1, text, block, line, word).
    """
    assert element.bbox is not None
    x0, y0, x1, y1 = element.bbox
    text = element.text + " " + str(element.metadata.get("csv", ""))
    tokens = {t.lower() for t in _WORD.findall(text)}

    def belongs(w: Sequence[Any]) -> bool:
        found = _WORD.findall(str(w[4]).lower())
        return bool(found) and all(t in tokens for t in found)

    def touches(w: Sequence[Any]) -> bool:
        return bool(w[2] > x0 and w[0] < x1 and w[3] > y0 and w[1] < y1)

    chosen: list[Sequence[Any]] = []
    lines: dict[tuple[Any, Any], list[Sequence[Any]]] = {}
    for w in words:
        lines.setdefault((w[5], w[6]), []).append(w)
    for line in lines.values():
        line.sort(key=lambda w: w[0])
        inside = [i for i, w in enumerate(line) if touches(w)]
        if not inside:
            continue
        lo, hi = inside[0], inside[-1]
        while lo > 0 and line[lo][0] - line[lo - 1][2] < 12 and belongs(line[lo - 1]):
            lo -= 1
        while hi + 1 < len(line) and line[hi + 1][0] - line[hi][2] < 12 and belongs(line[hi + 1]):
            hi += 1
        chosen.extend(line[lo : hi + 1])
    if element.kind == "table":
        band = 16.0
        chosen.extend(w for w in words if x0 - band < (w[0] + w[2]) / 2 < x1 + band
                      and y0 - band < (w[1] + w[3]) / 2 < y1 + band and belongs(w))
    for w in chosen:
        x0, y0, x1, y1 = min(x0, w[0]), min(y0, w[1]), max(x1, w[2]), max(y1, w[3])
    m = OUTLINE_MARGIN_PT
    return x0 - m, y0 - m, x1 + m, y1 + m


def _render_pdf_clip(path: Path, page_no: int, bbox: Sequence[float], max_px: int) -> tuple[object | None, float]:
    from PIL import Image

    try:
        import pymupdf as _pymupdf

        pymupdf: Any = _pymupdf  # its constructors are untyped
        with pymupdf.open(path) as doc:
            if not 1 <= page_no <= doc.page_count:
                return None, 1.0
            page = doc[page_no - 1]
            rect = page.rect
            clip = pymupdf.Rect(*_clip(bbox, rect.width, rect.height))  # type: ignore[no-untyped-call]
            if clip.is_empty:
                return None, 1.0
            zoom = min(3.0, max(0.5, max_px / max(clip.width, clip.height)))
            matrix = pymupdf.Matrix(zoom, zoom)  # type: ignore[no-untyped-call]
            pix = page.get_pixmap(matrix=matrix, clip=clip, alpha=False)
            img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
            # The highlight is drawn in the crop's own pixels: remember where the crop starts.
            img.info["origin"] = (clip.x0, clip.y0)
            return img, zoom
    except Exception as e:  # a damaged or encrypted PDF: no picture, the passage is still quoted
        logger.warning("cannot render %s page %d: %s", path, page_no, e)
        return None, 1.0


def _crop_render(page_render: tuple[bytes, Element], bbox: Sequence[float]) -> tuple[object | None, float]:
    from PIL import Image

    data, page = page_render
    img = _open_rgb(data)
    if not isinstance(img, Image.Image) or page.bbox is None:
        return None, 1.0
    width_pt, height_pt = page.bbox[2] - page.bbox[0], page.bbox[3] - page.bbox[1]
    if width_pt <= 0 or height_pt <= 0:
        return None, 1.0
    scale = img.width / width_pt
    x0, y0, x1, y1 = _clip(bbox, width_pt, height_pt)
    crop = img.crop((int(x0 * scale), int(y0 * scale), int(x1 * scale), int(y1 * scale)))
    crop.info["origin"] = (x0, y0)
    return crop, scale


def _highlight(img: object, bbox: Sequence[float], scale: float, max_px: int) -> Picture:
    from PIL import Image, ImageDraw

    assert isinstance(img, Image.Image)
    ox, oy = img.info.get("origin", (0.0, 0.0))
    box = [(bbox[0] - ox) * scale, (bbox[1] - oy) * scale, (bbox[2] - ox) * scale, (bbox[3] - oy) * scale]
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    line = max(2, round(min(img.size) / 150))
    draw.rectangle(box, fill=(255, 214, 0, 60), outline=(230, 81, 0, 255), width=line)
    out = Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")
    region = (float(ox), float(oy), ox + img.width / scale, oy + img.height / scale)
    out.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    return _encode(out, region)


def table_rows(element: Element, csv_text: str | None = None, max_rows: int = 50) -> list[list[str]] | None:
    """The table's rows (header first) from its CSV (``csv_text``, else ``metadata["csv"]``), at most
    ``max_rows`` + 1; None if there is no CSV."""
    text = csv_text if csv_text is not None else element.metadata.get("csv")
    if not isinstance(text, str) or not text.strip():
        return None
    rows = []
    for row in csv.reader(io.StringIO(text)):
        rows.append(row)
        if len(rows) > max_rows:
            break
    return rows or None


def link_validity(uri: str | None, now: float | None = None) -> str | None:
    """For a presigned URL, how long it stays valid ("valid for 1 h, until 2026-11-30 14:02 UTC"); else None."""
    if not uri or not uri.startswith(("http://", "https://")):
        return None
    query = parse_qs(urlsplit(uri).query)
    expires_at: float | None = None
    if "X-Amz-Expires" in query and "X-Amz-Date" in query:  # SigV4: signing time + lifetime
        import calendar

        try:
            signed = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
            expires_at = signed + int(query["X-Amz-Expires"][0])
        except ValueError:
            return None
    elif "Expires" in query and query["Expires"][0].isdigit():  # SigV2: an epoch
        expires_at = float(query["Expires"][0])
    if expires_at is None:
        return None
    left = expires_at - (time.time() if now is None else now)
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
    if left <= 0:
        return f"presigned link expired at {until}"
    span = f"{left / 3600:.0f} h" if left >= 3540 else f"{max(1, round(left / 60))} min"
    return f"presigned link, valid for {span} (until {until})"
