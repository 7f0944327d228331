"""Bomb inputs: refused from their declared size, before anything is decoded, in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults


def bomb_pdf(side: int) -> bytes:
    """A small PDF (a few hundred KB) with one side x side grey image of zeros: side² bytes once decoded."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Text on the page with the bomb survives.")
    pix = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 100, 100), False)
    pix.clear_with(200)
    xref = page.insert_image(pymupdf.Rect(72, 100, 500, 500), pixmap=pix)
    comp = zlib.compressobj(9)
    row = b"\0" * side
    stream = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    doc.update_stream(xref, stream, compress=False)
    for key, value in (("Filter", "/FlateDecode"), ("Width", str(side)), ("Height", str(side)),
                       ("ColorSpace", "/DeviceGray"), ("BitsPerComponent", "8"), ("DecodeParms", "null"),
                       ("SMask", "null")):
        doc.xref_set_key(xref, key, value)
    data: bytes = doc.tobytes()
    doc.close()
    return data


_MEASURE = textwrap.dedent("""
    import json, resource, sys
    from mmrag.parsers import parse_source
    from mmrag.parsers.options import ParseOptions
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import pymupdf, PIL.Image  # loaded by the parse anyway: count them in the baseline
    parse_source(sys.argv[2], ParseOptions())  # warm up on a tiny PDF
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = parse_source(sys.argv[1], ParseOptions())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"kinds": [e.kind for e in result.elements], "warnings": list(result.warnings),
                      "error": result.error, "extra_mb": (peak - base) / 1024}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KB is Linux's")
def test_pdf_image_bomb_is_refused_before_decoding(tmp_path: Path, record: Callable[..., None]) -> None:
    side = 16_000  # 256 MB once decoded, ~250 KB in the file
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(bomb_pdf(side))
    tiny = tmp_path / "tiny.pdf"
    tiny.write_bytes(bomb_pdf(64))
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(bomb), str(tiny)], capture_output=True, text=True,
                         check=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["error"] is None and result["kinds"] == ["text"]
    assert any(f"image of {side}x{side} pixels is over the 89,478,485-pixel limit" in w for w in result["warnings"])
    assert result["extra_mb"] < 64, f"decoding the bomb cost {result['extra_mb']:.0f} MB"
    record(f"PDF with a {side}x{side} image (peak +{result['extra_mb']:.0f} MB)", held=1, lost=0)


def test_png_bomb_header_is_refused(tmp_path: Path, record: Callable[..., None]) -> None:
    import struct

    from mmrag.parsers import parse_source

    side = 20_000
    comp = zlib.compressobj(9)
    raw = b"".join(comp.compress(b"\0" * (side + 1)) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    result = parse_source(str(path))
    assert not result.ok and "pixel" in (result.error or "") and "bomb" in (result.error or "")
    record("PNG 20000x20000 (header only read)", held=1, lost=0)


def _zeros(side: int) -> bytes:
    comp = zlib.compressobj(9)
    row = b"\0" * side
    return b"".join(comp.compress(row) for _ in range(side)) + comp.flush()


def inline_bomb_pdf(side: int) -> bytes:
    """A page whose content stream draws a side x side inline image (``BI ... ID ... EI``) of zeros."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Text on the page with the inline bomb survives.")
    xref = page.get_contents()[0]
    inline = (b"\nq 300 0 0 300 72 100 cm BI /W %d /H %d /CS /G /BPC 8 /F /Fl ID " % (side, side) + _zeros(side)
              + b"\nEI Q\n")
    doc.update_stream(xref, doc.xref_stream(xref) + inline)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def smask_bomb_pdf(side: int) -> bytes:
    """A small image whose soft mask is side x side, its /Width and /Height given as indirect objects."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Text on the page with the mask bomb survives.")
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 100, 100), True)
    pix.clear_with(200)
    xref = page.insert_image(pymupdf.Rect(72, 100, 500, 500), pixmap=pix)
    smask = int(doc.xref_get_key(xref, "SMask")[1].split()[0])
    doc.update_stream(smask, _zeros(side), compress=False)
    for key in ("Width", "Height"):
        ref = doc.get_new_xref()
        doc.update_object(ref, str(side))
        doc.xref_set_key(smask, key, f"{ref} 0 R")
    for key, value in (("Filter", "/FlateDecode"), ("DecodeParms", "null"), ("ColorSpace", "/DeviceGray"),
                       ("BitsPerComponent", "8")):
        doc.xref_set_key(smask, key, value)
    data: bytes = doc.tobytes()
    doc.close()
    return data


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KB is Linux's")
@pytest.mark.parametrize("make", [inline_bomb_pdf, smask_bomb_pdf], ids=["inline", "smask-indirect-width"])
def test_inline_and_mask_bombs_are_refused_before_decoding(make: Callable[[int], bytes], tmp_path: Path,
                                                           record: Callable[..., None]) -> None:
    side = 16_000  # 256 MB once decoded
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(make(side))
    tiny = tmp_path / "tiny.pdf"
    tiny.write_bytes(make(64))
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(bomb), str(tiny)], capture_output=True, text=True,
                         check=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    what = "inline" if make is inline_bomb_pdf else "soft-mask (indirect /Width)"
    record(f"PDF with a {side}x{side} {what} image (peak +{result['extra_mb']:.0f} MB)",
           held=int(result["kinds"] == ["text"]), lost=int(result["kinds"] != ["text"]))
    assert result["error"] is None and result["kinds"] == ["text"], result
    assert any(f"image of {side}x{side} pixels is over the 89,478,485-pixel limit" in w for w in result["warnings"])
    assert result["extra_mb"] < 64, f"decoding the bomb cost {result['extra_mb']:.0f} MB"
