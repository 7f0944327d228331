"""Images for Claude and the Bedrock embedding models, prepared from their bytes (never from a file extension or a
declared MIME type: a JPEG declared as PNG is rejected by the service).

The format is sniffed from magic bytes; images are downscaled so the long edge is at most 1568 px for Claude
(larger ones are downscaled by the service anyway, after costing upload time and tokens) and re-encoded until they
fit 3.75 MB. One Claude message holds at most 20 images.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "CLAUDE_IMAGE_MAX_BYTES",
    "CLAUDE_IMAGE_MAX_SIDE",
    "CLAUDE_MAX_IMAGES",
    "fit_image",
    "prepare_images_for_claude",
    "sniff_image_format",
]

CLAUDE_IMAGE_MAX_SIDE = 1568
CLAUDE_IMAGE_MAX_BYTES = 3_750_000  # "3.75 MB" per image; decimal, the stricter reading
CLAUDE_MAX_IMAGES = 20
_CLAUDE_FORMATS = ("png", "jpeg", "gif", "webp")


def sniff_image_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``gif`` or ``webp`` from the magic bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _encode(img: Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _flatten(img: Image) -> Image:
    """RGB for JPEG: transparency is composited on white rather than turning black."""
    from PIL import Image as PILImage

    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def fit_image(data: bytes, *, formats: Sequence[str], max_side: int, max_bytes: int) -> tuple[bytes, str]:
    """Bytes and format of ``data`` made to fit a model's image limits, untouched when they already do.

    Images in another format are converted (PNG, or JPEG for photos that are too big as PNG); images with a
    side over ``max_side`` are downscaled keeping the aspect ratio; images over ``max_bytes`` are re-encoded as
    JPEG with decreasing quality, then further downscaled.

    Raises:
        ValueError: the bytes are not an image Pillow can read.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    fmt = sniff_image_format(data)
    try:
        img: Image = PILImage.open(io.BytesIO(data))
        width, height = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc
    if fmt is not None and fmt in formats and max(width, height) <= max_side and len(data) <= max_bytes:
        return data, fmt
    img.load()
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        img = img.resize((max(1, round(width * scale)), max(1, round(height * scale))), PILImage.Resampling.LANCZOS)
    # Keep PNG (lossless: charts, text) when allowed and small enough; otherwise JPEG.
    if "png" in formats and fmt != "jpeg":
        png = img if img.mode in ("RGB", "RGBA", "L", "LA", "P") else img.convert("RGBA")
        out = _encode(png, "png")
        if len(out) <= max_bytes:
            return out, "png"
    rgb = _flatten(img)
    while True:
        for quality in (90, 80, 70, 60, 50, 40):
            out = _encode(rgb, "jpeg", quality)
            if len(out) <= max_bytes:
                return out, "jpeg"
        if max(rgb.size) <= 64:
            raise ValueError("image cannot be made small enough")
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), PILImage.Resampling.LANCZOS)


def prepare_images_for_claude(images: Sequence[bytes]) -> list[dict[str, Any]]:
    """Converse ``image`` content blocks for Claude, each fitted to Claude's limits.

    Raises:
        ValueError: more than 20 images (one message's limit), or bytes that are not an image.
    """
    if len(images) > CLAUDE_MAX_IMAGES:
        raise ValueError(f"Claude accepts at most {CLAUDE_MAX_IMAGES} images per message, got {len(images)}")
    blocks = []
    for data in images:
        fitted, fmt = fit_image(
            data, formats=_CLAUDE_FORMATS, max_side=CLAUDE_IMAGE_MAX_SIDE, max_bytes=CLAUDE_IMAGE_MAX_BYTES
        )
        blocks.append({"image": {"format": fmt, "source": {"bytes": fitted}}})
    return blocks
