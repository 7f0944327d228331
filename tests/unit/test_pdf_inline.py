"""Issue 23 item 4: inline images are checked against the pixel limit, in pages and in the forms they draw."""

from __future__ import annotations

import zlib

import pymupdf

from mmrag.elements import Blob
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.pdf import PdfParser


def _inline(width: int, height: int) -> bytes:
    data = zlib.compress(b"\0" * width * 4)  # a few rows: the declared size is what is checked
    return b"\nq 100 0 0 100 72 200 cm BI /W %d /H %d /CS /G /BPC 8 /F /Fl ID " % (width, height) + data + b"\nEI Q\n"


def _page_with(doc: pymupdf.Document, text: str, extra: bytes) -> pymupdf.Page:
    page = doc.new_page()
    page.insert_text((72, 72), text)
    xref = page.get_contents()[0]
    doc.update_stream(xref, doc.xref_stream(xref) + extra)
    return page


def _parse(data: bytes, **options: int) -> tuple[list[str], tuple[str, ...]]:
    from mmrag.parsers._report import collect_warnings

    with collect_warnings() as warnings:
        kinds = [e.kind for e in PdfParser(ParseOptions(**options)).parse(Blob(data, "doc.pdf", "application/pdf"))]
    return kinds, tuple(warnings)


def test_an_inline_bomb_in_a_form_is_cut_and_small_inline_images_stay() -> None:
    inner = pymupdf.open()
    _page_with(inner, "Drawn through a form.", _inline(20_000, 20_000) + _inline(64, 64))
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "The page that shows the form.")
    page.show_pdf_page(pymupdf.Rect(0, 100, 595, 842), inner, 0)
    kinds, warnings = _parse(doc.tobytes())
    assert "text" in kinds
    assert warnings == ("skipped an inline image on page 1: image of 20000x20000 pixels is over the 89,478,485-"
                        "pixel limit (a possible decompression bomb; raise MMRAG_MAX_IMAGE_PIXELS to allow it)",)
    assert doc.xref_stream(doc.get_page_xobjects(0)[-1][0]).count(b" BI ") == 2  # the file itself is untouched


def test_the_limit_is_the_setting() -> None:
    doc = pymupdf.open()
    _page_with(doc, "A page.", _inline(400, 300))
    assert _parse(doc.tobytes(), max_image_pixels=100_000)[1][0].startswith("skipped an inline image on page 1: "
                                                                            "image of 400x300")
    assert _parse(doc.tobytes(), max_image_pixels=120_000)[1] == ()
