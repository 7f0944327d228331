"""A PDF image MuPDF refuses costs the image, not the page; content that disagrees with its name is reported."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from mmrag.parsers import parse_source


def _pdf_with_broken_image(how: str) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "The text of the page must survive.")
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 200), False)
    pix.clear_with(120)
    xref = page.insert_image(pymupdf.Rect(72, 100, 400, 400), pixmap=pix)
    if how == "jpx":
        doc.update_stream(xref, b"\x00garbage" * 100, compress=False)
        doc.xref_set_key(xref, "Filter", "/JPXDecode")
    else:
        doc.xref_set_key(xref, "ColorSpace", "/Nonsense")
    doc.xref_set_key(xref, "SMask", "null")
    data: bytes = doc.tobytes()
    doc.close()
    return data


@pytest.mark.parametrize("how", ["jpx", "colorspace"])
def test_an_image_mupdf_refuses_keeps_the_page_text(tmp_path: Path, how: str) -> None:
    path = tmp_path / "one-bad-image.pdf"
    path.write_bytes(_pdf_with_broken_image(how))
    result = parse_source(str(path))
    assert result.ok, result.error
    assert [e.kind for e in result.elements] == ["text"]
    assert "must survive" in result.elements[0].text
    assert len(result.warnings) == 1 and "MuPDF cannot read" in result.warnings[0]


def test_html_saved_as_pdf_is_parsed_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_text("<!doctype html><html><body><h1>Sign in</h1><p>Your session expired.</p></body></html>")
    result = parse_source(str(path))
    assert result.ok and result.mime_type == "text/html"
    assert result.warnings == ("the name ends in .pdf but the content is text/html (an error or login page "
                               "saved under that name?): parsed as text/html",)


def test_a_jpeg_named_png_is_not_worth_a_warning(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes((data_dir / "images" / "img_023.jpg").read_bytes())
    result = parse_source(str(path))
    assert result.ok and result.warnings == ()
