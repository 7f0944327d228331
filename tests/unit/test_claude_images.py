"""Image preparation for Claude (Converse image blocks) and Titan Multimodal, and caption truncation."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from mmrag.providers.bedrock.claude import (
    CLAUDE_IMAGE_MAX_BYTES,
    fit_image,
    prepare_images_for_claude,
    sniff_image_format,
)
from mmrag.providers.bedrock.titan import approx_tokens, truncate_to_tokens
from mmrag.testing._base import approx_tokens as emulator_tokens


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_jpeg_declared_as_png_gets_format_jpeg() -> None:
    jpeg = _encode(Image.new("RGB", (120, 80), (200, 10, 10)), "JPEG")
    (block,) = prepare_images_for_claude([jpeg])
    assert block["image"]["format"] == "jpeg" and block["image"]["source"]["bytes"] == jpeg  # untouched


def test_large_image_is_downscaled_to_1568_keeping_aspect() -> None:
    big = _encode(Image.new("RGB", (4000, 3000), (10, 120, 200)), "PNG")
    (block,) = prepare_images_for_claude([big])
    assert _size(block["image"]["source"]["bytes"]) == (1568, 1176)
    assert block["image"]["format"] == sniff_image_format(block["image"]["source"]["bytes"]) == "png"


def test_huge_noisy_png_fits_the_byte_limit() -> None:
    rng = random.Random(7)
    noise = Image.frombytes("RGB", (1500, 1500), rng.randbytes(1500 * 1500 * 3))
    data = _encode(noise, "PNG")
    assert len(data) > CLAUDE_IMAGE_MAX_BYTES
    (block,) = prepare_images_for_claude([data])
    out = block["image"]["source"]["bytes"]
    assert len(out) <= 3_750_000 and block["image"]["format"] == "jpeg" and sniff_image_format(out) == "jpeg"
    assert _size(out) == (1500, 1500)


def test_more_than_20_images_raise() -> None:
    small = _encode(Image.new("RGB", (8, 8)), "PNG")
    assert len(prepare_images_for_claude([small] * 20)) == 20
    with pytest.raises(ValueError, match="at most 20 images"):
        prepare_images_for_claude([small] * 21)


def test_unsupported_formats_are_converted() -> None:
    bmp = _encode(Image.new("RGB", (30, 20), (1, 2, 3)), "BMP")
    (block,) = prepare_images_for_claude([bmp])
    assert block["image"]["format"] == "png" and _size(block["image"]["source"]["bytes"]) == (30, 20)
    gif = _encode(Image.new("RGB", (30, 20)), "GIF")
    assert prepare_images_for_claude([gif])[0]["image"]["format"] == "gif"  # Claude takes GIF as is
    rgba = Image.new("RGBA", (30, 20), (0, 0, 0, 0))
    data, fmt = fit_image(_encode(rgba, "WEBP"), formats=("png", "jpeg"), max_side=2048, max_bytes=25_000_000)
    assert fmt == "png" and Image.open(io.BytesIO(data)).mode == "RGBA"  # Titan: WebP → PNG, alpha kept
    with pytest.raises(ValueError, match="not a readable image"):
        prepare_images_for_claude([b"not an image"])


def test_caption_truncation_is_conservative() -> None:
    caption = " ".join(["the quick brown fox jumps over the lazy dog, 42%!"] * 200)
    cut = truncate_to_tokens(caption, 128)
    assert caption.startswith(cut) and approx_tokens(cut) <= 128
    assert emulator_tokens(cut) <= approx_tokens(cut)  # never undercounts the plain word/punctuation count
    assert truncate_to_tokens("short caption", 128) == "short caption"
    assert approx_tokens("internationalisation") >= 4 and approx_tokens("東京都") == 3  # 20 letters: >= 5 chars/token
    assert truncate_to_tokens("東京都の地図", 4) == "東京都の"
    assert approx_tokens("café") == 2


def test_long_tables_split_by_rows_keep_the_header() -> None:
    from mmrag.chains._split import split_table_rows

    header = "| id | region | revenue |\n|---|---|---|"
    rows = [f"| {i} | region-{i % 7} | {i * 13.7:.1f} |" for i in range(900)]
    table = "\n".join([header, *rows])
    pieces = split_table_rows(table, 2_000)
    assert len(pieces) > 1 and all(p.startswith(header + "\n") for p in pieces)
    assert all(approx_tokens(p) <= 2_000 for p in pieces)
    assert [r for p in pieces for r in p.splitlines()[2:]] == rows  # every row once, in order
    assert split_table_rows("| a |\n|---|\n| 1 |", 2_000) == ["| a |\n|---|\n| 1 |"]
