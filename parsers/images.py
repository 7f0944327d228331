"""Images: standalone image files, and the shared checks every embedded image passes through.

Every image becomes one ``image`` element whose ``data`` holds bytes a vision model accepts (PNG, JPEG, GIF
or WebP; BMP and TIFF are converted to PNG), EXIF-rotated upright, with ``width``/``height``/``format`` in
its metadata. Decompression bombs are refused before their pixels are decoded.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from mmrag.elements import BBox, Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._report import warn
from mmrag.parsers.options import ParseOptions

__all__ = ["ImageParser", "image_element", "probe_image"]

logger = logging.getLogger(__name__)

_KEEP_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


class _Rejected(Exception):
    def __init__(self, reason: str, *, quiet: bool = False) -> None:
        self.reason = reason
        self.quiet = quiet
        super().__init__(reason)


def _prepare(data: bytes, options: ParseOptions, *, check_min: bool) -> tuple[bytes, str, dict[str, Any]]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > options.max_image_bytes:
        raise _Rejected(
            f"image of {len(data):,} bytes is over the {options.max_image_bytes:,}-byte cap (max_image_bytes)"
        )
    try:
        # Image.open reads only the header: the pixel count is known before anything is decoded.
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > options.max_image_pixels:
                raise _Rejected(
                    f"image of {width}x{height} pixels is over the {options.max_image_pixels:,}-pixel limit "
                    "(a possible decompression bomb; raise MMRAG_MAX_IMAGE_PIXELS to allow it)"
                )
            if check_min and min(width, height) < options.min_image_px:
                raise _Rejected(f"{width}x{height} is below min_image_px={options.min_image_px}", quiet=True)
            fmt = (img.format or "").upper()
            orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "TIFF", "WEBP", "PNG") else 1
            needs_rotation = orientation not in (None, 1)
            img.load()  # decode once: truncated or corrupt files fail here, not later in a model call
            if fmt in _KEEP_FORMATS and not needs_rotation:
                return data, _KEEP_FORMATS[fmt], {"width": width, "height": height, "format": fmt.lower()}
            upright = ImageOps.exif_transpose(img) if needs_rotation else img
            out_fmt = fmt if fmt in ("JPEG", "PNG", "WEBP") else "PNG"
            if out_fmt == "JPEG" and upright.mode not in ("RGB", "L"):
                upright = upright.convert("RGB")
            if out_fmt == "PNG" and upright.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I", "I;16"):
                upright = upright.convert("RGBA")
            buf = io.BytesIO()
            upright.save(buf, format=out_fmt, **({"quality": 95} if out_fmt == "JPEG" else {}))
            meta = {"width": upright.width, "height": upright.height, "format": fmt.lower()}
            if needs_rotation:
                meta["exif_rotated"] = True
            return buf.getvalue(), _KEEP_FORMATS[out_fmt], meta
    except _Rejected:
        raise
    except Image.DecompressionBombError as e:
        # Pillow refuses by itself past twice its own MAX_IMAGE_PIXELS, before our check can run.
        raise _Rejected(f"refused as a possible decompression bomb ({e})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _Rejected(f"not a readable image ({type(e).__name__}: {e})") from e


def probe_image(data: bytes, name: str, options: ParseOptions | None = None) -> None:
    """Check that ``data`` is an image mmrag can use (readable, within the size and pixel caps).

    Raises:
        ParseError: it is not, with the reason; ``name`` (a file name, a URL) says which input.
    """
    try:
        _prepare(data, options or ParseOptions(), check_min=False)
    except _Rejected as e:
        raise ParseError(name, e.reason) from e


def image_element(
    data: bytes,
    source: str,
    options: ParseOptions,
    *,
    text: str = "",
    page: int | None = None,
    bbox: BBox | None = None,
    metadata: Mapping[str, Any] | None = None,
    strict: bool = False,
    label: str | None = None,
) -> Element | None:
    """Check, normalise and wrap image bytes as an ``image`` element.

    Args:
        data: encoded image bytes.
        source: the document (or image file) the image belongs to.
        options: size caps and limits.
        text: context for search and captioning: alt text, figure caption, nearby text.
        page: 1-based page for images inside PDFs.
        bbox: where it sits on the page.
        metadata: extra facts to keep (merged under the image's own width/height/format).
        strict: for an image the user named directly: problems raise :class:`ParseError` and tiny images are
            kept. Otherwise (embedded images) problems are warnings and the image is skipped (``None``).
        label: names the image in warnings (its src, xref...), so users can find what was skipped.
    """
    try:
        payload, mime, facts = _prepare(data, options, check_min=not strict)
    except _Rejected as e:
        if strict:
            raise ParseError(source, e.reason) from e
        what = f"skipped image {label}" if label else "skipped image"
        where = f" on page {page}" if page else ""
        if e.quiet:
            logger.debug("%s: %s%s: %s", source, what, where, e.reason)
        else:
            warn(source, f"{what}{where}: {e.reason}")
        return None
    meta = {**(metadata or {}), **facts}
    return Element(kind="image", source=source, text=text, page=page, bbox=bbox, mime_type=mime, data=payload,
                   metadata=meta)


class ImageParser:
    """Parses PNG, JPEG, GIF, WebP, BMP and TIFF files into one ``image`` element each."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        if not blob.data:
            raise ParseError(blob.source, "the file is empty (0 bytes)")
        element = image_element(blob.data, blob.source, self.options, strict=True)
        assert element is not None  # strict mode raises instead of returning None
        yield element
