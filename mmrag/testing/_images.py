"""Image checks and deterministic image vectors for the emulator.

Format detection reads magic bytes (stdlib). Sizes and pixels need Pillow, a core mmrag dependency, imported
lazily so that ``import mmrag.testing`` stays cheap.

Image vectors: the decoded image is reduced to an 8x8 RGB thumbnail (192 values, centred on mid-grey) plus a
4x4x4 colour histogram (64 values, square-rooted), and those 256 features are spread over ``dims`` buckets by a
fixed sparse signed projection (each feature adds to 4 hashed buckets), then L2-normalised. The same image
always gives the same vector, and a resized copy lands much closer than a different picture. The vectors share
no meaning with text vectors: text-to-image similarity is noise, as with any pair of unrelated encoders.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import math
from functools import lru_cache
from typing import Any

from mmrag.testing._base import ApiError

__all__ = ["decode_base64", "image_size", "image_vector", "sniff_format"]

_THUMB = 8
_BINS = 4
_FANOUT = 4


def sniff_format(data: bytes) -> str | None:
    """The image format named by the magic bytes: ``png``, ``jpeg``, ``gif``, ``webp`` or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_base64(value: Any, where: str) -> bytes:
    """Strictly decode a base64 string, or raise a ValidationException naming the field."""
    if not isinstance(value, str) or not value:
        raise ApiError.validation(
            f"Malformed input request: {where}: expected a non-empty base64 string, "
            "please reformat your input and try again."
        )
    try:
        return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ApiError.validation(
            f"Malformed input request: {where}: invalid base64 ({exc}), please reformat your input and try again."
        ) from exc


def _open(data: bytes, where: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError.validation(f"{where}: Could not process image: the bytes are not a readable image.") from exc


def image_size(data: bytes, where: str) -> tuple[int, int]:
    """Width and height from the image header (no full decode)."""
    with _open(data, where) as img:
        width, height = img.size
        return int(width), int(height)


@lru_cache(maxsize=8)
def _projection(dims: int) -> tuple[tuple[tuple[int, float], ...], ...]:
    features = 3 * _THUMB * _THUMB + _BINS**3
    rows = []
    for i in range(features):
        taps = []
        for j in range(_FANOUT):
            digest = hashlib.blake2b(f"img:{i}:{j}".encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "big")
            taps.append((value % dims, 1.0 if value >> 63 else -1.0))
        rows.append(tuple(taps))
    return tuple(rows)


def image_features(data: bytes, where: str) -> list[float]:
    """Thumbnail and histogram features of a decodable image (see the module docstring)."""
    from PIL import Image

    with _open(data, where) as img:
        try:
            img.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, much faster for big photos
            # Palette/alpha images go through RGBA first, as Pillow asks for transparency in palette images.
            rgb = (img.convert("RGBA") if img.mode in ("P", "PA", "LA") else img).convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise ApiError.validation(f"{where}: Could not process image: the image data is corrupt.") from exc
    thumb = rgb.resize((_THUMB, _THUMB), Image.Resampling.BOX)
    small = rgb.resize((32, 32), Image.Resampling.BOX)
    features = [(channel / 255.0 - 0.5) * 2.0 for channel in thumb.tobytes()]
    histogram = [0.0] * _BINS**3
    raw = small.tobytes()
    pixels = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    for r, g, b in pixels:
        histogram[(r * _BINS // 256) * _BINS * _BINS + (g * _BINS // 256) * _BINS + b * _BINS // 256] += 1.0
    features += [math.sqrt(count / len(pixels)) for count in histogram]
    return features


def image_vector(data: bytes, dims: int, where: str) -> list[float]:
    """A deterministic, L2-normalised ``dims``-long vector for the image bytes."""
    vector = [0.0] * dims
    for value, taps in zip(image_features(data, where), _projection(dims), strict=True):
        for bucket, sign in taps:
            vector[bucket] += sign * value
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
