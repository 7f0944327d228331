from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mmrag.elements import Blob
from mmrag.errors import ParseError
from mmrag.parsers import ParseOptions, parse_source
from mmrag.parsers._report import collect_warnings
from mmrag.parsers.images import ImageParser, image_element


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is tiny: a decompression bomb shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_corpus_png_keeps_bytes_and_size(data_dir: Path) -> None:
    path = data_dir / "images" / "img_031.png"
    result = parse_source(str(path))
    assert result.ok and len(result.elements) == 1
    el = result.elements[0]
    assert el.kind == "image" and el.mime_type == "image/png" and el.data == path.read_bytes()
    assert (el.metadata["width"], el.metadata["height"]) == (538, 319)
    assert el.page is None and el.source == str(path)


def test_corpus_jpeg(data_dir: Path) -> None:
    el = parse_source(str(data_dir / "images" / "img_023.jpg")).elements[0]
    assert el.mime_type == "image/jpeg" and (el.metadata["width"], el.metadata["height"]) == (259, 194)


def test_exif_rotation_is_applied() -> None:
    img = Image.new("RGB", (200, 100), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = _encode(img, "JPEG", exif=exif)
    el = image_element(data, "rotated.jpg", ParseOptions(), strict=True)
    assert el is not None
    assert (el.metadata["width"], el.metadata["height"]) == (100, 200)
    assert el.metadata["exif_rotated"] is True
    with Image.open(io.BytesIO(el.data or b"")) as out:
        assert out.size == (100, 200) and out.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_formats_models_do_not_accept_become_png(fmt: str) -> None:
    data = _encode(Image.new("RGB", (80, 90), "blue"), fmt)
    el = image_element(data, f"x.{fmt.lower()}", ParseOptions(), strict=True)
    assert el is not None and el.mime_type == "image/png" and el.metadata["format"] == fmt.lower()
    with Image.open(io.BytesIO(el.data or b"")) as out:
        assert out.format == "PNG" and out.size == (80, 90)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(60_000, 60_000))
    result = parse_source(str(bomb))
    assert not result.ok and "decompression bomb" in (result.error or "")


def test_pixel_limit_is_a_setting() -> None:
    data = _encode(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(ParseError, match=r"300x300 pixels is over the 10,000-pixel limit.*MMRAG_MAX_IMAGE_PIXELS"):
        image_element(data, "big.png", ParseOptions(max_image_pixels=10_000), strict=True)


def test_embedded_bomb_is_a_warning_not_a_failure() -> None:
    with collect_warnings() as warnings:
        assert image_element(_png_header_only(60_000, 60_000), "page.html", ParseOptions()) is None
    assert len(warnings) == 1 and "decompression bomb" in warnings[0]


def test_truncated_image_fails_with_the_file_named(tmp_path: Path, data_dir: Path) -> None:
    data = (data_dir / "images" / "img_029.png").read_bytes()
    bad = tmp_path / "truncated.png"
    bad.write_bytes(data[: len(data) // 2])
    result = parse_source(str(bad))
    assert result.source == str(bad) and not result.ok and "not a readable image" in (result.error or "")


def test_tiny_embedded_images_are_skipped_quietly_but_kept_when_named() -> None:
    tiny = _encode(Image.new("RGB", (16, 16)), "PNG")
    with collect_warnings() as warnings:
        assert image_element(tiny, "page.html", ParseOptions()) is None
    assert warnings == []
    assert ImageParser().parse(Blob(tiny, "icon.png", "image/png")).__next__().metadata["width"] == 16


def test_size_cap_warns_for_embedded_images() -> None:
    data = _encode(Image.frombytes("RGB", (300, 300), bytes(range(256)) * 1055), "PNG")
    with collect_warnings() as warnings:
        assert image_element(data, "doc.pdf", ParseOptions(max_image_bytes=1024), page=4) is None
    assert "page 4" in warnings[0] and "max_image_bytes" in warnings[0]


def test_empty_image_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="empty"):
        list(ImageParser().parse(Blob(b"", "empty.png", "image/png")))
