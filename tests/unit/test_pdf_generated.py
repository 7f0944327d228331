# mypy: disable-error-code="no-untyped-call"
"""PdfParser on PDFs built in the test: slide decks, images, booktabs tables, and every kind of bad input."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from PIL import Image

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers import pdf as pdf_module
from mmrag.parsers._pdf_text import garbled_share, is_garbled
from mmrag.parsers._report import collect_warnings
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.pdf import PdfParser

PDFS = Path(__file__).parent.parent / "data" / "pdf"


def parse(data: bytes, options: ParseOptions | None = None, name: str = "doc.pdf") -> list[Element]:
    return list(PdfParser(options).parse(Blob(data, name, "application/pdf")))


def png(width: int, height: int, seed: int, mode: str = "RGB") -> bytes:
    """A photo-like image (noise over a gradient) that compresses badly, so no two seeds look alike."""
    rng = random.Random(seed)
    img = Image.new(mode, (width, height))
    px = img.load()
    assert px is not None
    for y in range(height):
        for x in range(width):
            v = (x * 255 // width + rng.randrange(60)) % 256
            c = (v, (y * 255 // height + seed * 40) % 256, rng.randrange(256))
            px[x, y] = (*c, 128 + (x % 128)) if mode == "RGBA" else c
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def slide_deck() -> bytes:
    """Four 16:9 slides: a title, a photo (slide 3 repeats slide 1's), a logo on every slide, extras on slide 4."""
    doc = pymupdf.open()
    photos = [png(160, 120, seed) for seed in range(3)]
    logo = png(80, 80, 99)
    logo_xref = 0
    photo_xrefs: dict[int, int] = {}
    for i in range(4):
        page = doc.new_page(width=720, height=405)
        page.insert_text((40, 50), f"Slide {i + 1}: quarterly results", fontsize=24)
        which = 0 if i == 2 else min(i, 2)
        rect = pymupdf.Rect(200, 90, 520, 330)
        if which in photo_xrefs:
            page.insert_image(rect, xref=photo_xrefs[which])
        else:
            photo_xrefs[which] = page.insert_image(rect, stream=photos[which])
        logo_rect = pymupdf.Rect(650, 10, 710, 70)
        if logo_xref:
            page.insert_image(logo_rect, xref=logo_xref)
        else:
            logo_xref = page.insert_image(logo_rect, stream=logo)
        if i == 3:
            page.insert_image(pymupdf.Rect(40, 340, 52, 352), stream=png(16, 16, 7))  # an icon
            page.insert_image(pymupdf.Rect(540, 200, 700, 320), stream=png(120, 90, 5, mode="RGBA"))
            page.insert_text((540, 340), "Figure 4: Alpha channel sample", fontsize=10)
    return bytes(doc.tobytes())


def booktabs_page() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "Results of the experiment are summarised below.", fontsize=11)
    page.insert_text((72, 110), "Table 2: Yield by fertiliser and field", fontsize=10)
    rows = [["Fertiliser", "North", "South", "East"], ["Alpha", "12.5", "13.1", "11.0"],
            ["Beta", "14.2", "15.9", "12.4"], ["Gamma", "9.8", "10.3", "8.7"], ["Delta", "11.1", "12.0", "10.5"]]
    y = 135.0
    page.draw_line((70, y - 12), (470, y - 12), width=1)
    for i, row in enumerate(rows):
        for x, cell in zip([72, 200, 300, 400], row, strict=True):
            page.insert_text((x, y), cell, fontsize=10)
        if i == 0:
            page.draw_line((70, y + 5), (470, y + 5), width=0.5)
        y += 16
    page.draw_line((70, y - 10), (470, y - 10), width=1)
    page.insert_text((72, y + 30), "The Beta fertiliser gives the best yield in every field.", fontsize=11)
    return bytes(doc.tobytes())


def text_pdf(pages: int = 2, password: str | None = None, tmp_path: Path | None = None) -> bytes:
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"Page {i + 1} says hello.")
    if password is None:
        return bytes(doc.tobytes())
    assert tmp_path is not None
    path = tmp_path / "locked.pdf"
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256,  # type: ignore[attr-defined]
              user_pw=password, owner_pw="owner-secret")
    return path.read_bytes()


# --- slides and images ----------------------------------------------------------------------------------------


def test_pages_as_images_renders_every_slide() -> None:
    elements = parse(slide_deck(), ParseOptions(pages_as_images=True, render_dpi=72))
    pages = [e for e in elements if e.kind == "page"]
    assert [p.page for p in pages] == [1, 2, 3, 4]
    for p in pages:
        assert p.mime_type == "image/png" and p.data
        assert (p.metadata["width"], p.metadata["height"]) == (720, 405)  # 72 dpi: one pixel per point
        assert p.bbox == (0, 0, 720, 405)
        assert f"Slide {p.page}: quarterly results" in p.text
        assert "needs_ocr" not in p.metadata
    assert not any(e.kind == "page" for e in parse(slide_deck()))


def test_images_deduplicated_logo_and_icon_skipped() -> None:
    images = [e for e in parse(slide_deck()) if e.kind == "image"]
    # photos 0, 1, 2 on slides 1, 2, 4 (slide 3 repeats photo 0); the RGBA image on slide 4
    sizes = [(e.page, e.metadata["width"], e.metadata["height"]) for e in images]
    assert sizes == [(1, 160, 120), (2, 160, 120), (4, 160, 120), (4, 120, 90)]
    assert len({e.content_hash for e in images}) == 4
    assert all(isinstance(e.metadata["xref"], int) for e in images)
    assert images[0].bbox == pytest.approx((200, 90, 520, 330), abs=0.5)
    assert "Slide 1: quarterly results" in images[0].text  # nearby text as context


def test_image_with_soft_mask_keeps_its_alpha() -> None:
    image = [e for e in parse(slide_deck()) if e.kind == "image"][-1]
    assert image.text == "Figure 4: Alpha channel sample"
    assert image.mime_type == "image/png" and image.data is not None
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.mode == "RGBA" and img.size == (120, 90)


# --- tables ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [True, False], ids=["layout-model", "rules-only"])
def test_booktabs_table(monkeypatch: pytest.MonkeyPatch, layout: bool) -> None:
    if not layout:  # without pymupdf-layout, find_tables falls back to ruling lines: our text-strategy retry
        monkeypatch.setattr(pymupdf, "_get_layout", None, raising=False)
    (table,) = [e for e in parse(booktabs_page()) if e.kind == "table"]
    assert table.text.startswith("Table 2: Yield by fertiliser and field\n\n| Fertiliser | North | South | East |")
    assert table.metadata["header"] == ["Fertiliser", "North", "South", "East"]
    assert table.metadata["rows"] == 4 and table.metadata["columns"] == 4
    assert table.metadata["csv"].splitlines()[2] == "Beta,14.2,15.9,12.4"


def test_find_tables_auto_skips_plain_text_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = pymupdf.Page.find_tables

    def counting(page: pymupdf.Page, *args: Any, **kwargs: Any) -> Any:
        calls.append(page.number)
        return original(page, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "find_tables", counting)
    parse(text_pdf(3))
    assert calls == []
    parse(text_pdf(3), ParseOptions(find_tables="always"))
    assert calls == [0, 1, 2]
    calls.clear()
    parse(booktabs_page())
    assert calls  # rules on the page: looked for tables
    calls.clear()
    parse(booktabs_page(), ParseOptions(find_tables="never"))
    assert calls == []


# --- garbled text heuristic -----------------------------------------------------------------------------------


def test_garbled_heuristic() -> None:
    assert is_garbled("❙♣❛tst❛t ✐s ♦♥❡♦❢t❤❡❧❛r❣❡st ♣❛❝❦❛❣❡s ❛✈❛✐❧❛❜❧❡ ✶✵✵✵")
    assert not is_garbled("Spatstat is one of the largest packages available for R, containing over 1000 commands.")
    assert not is_garbled("✶✵✵")  # too little text to judge
    assert garbled_share("\ufffd\ufffd ab") == 0.5
    assert not is_garbled("| mpg | cyl | 21.0 | 6 | 160.0 | 110 | 3.90 | 2.620 |")  # numbers are fine


# --- bad input ------------------------------------------------------------------------------------------------


def test_empty_file() -> None:
    with pytest.raises(ParseError, match="empty"):
        PdfParser().parse(Blob(b"", "empty.pdf", "application/pdf"))


def test_html_named_pdf() -> None:
    with pytest.raises(ParseError, match="not a PDF.*HTML") as err:
        PdfParser().parse(Blob(b"<html><body>Login required</body></html>", "x.pdf", "application/pdf"))
    assert err.value.source == "x.pdf"


def test_garbage_after_header() -> None:
    with pytest.raises(ParseError, match="damaged or truncated"):
        PdfParser().parse(Blob(b"%PDF-1.7\nthis is not a pdf body\n", "junk.pdf", "application/pdf"))


def test_encrypted_pdf_needs_a_password(tmp_path: Path) -> None:
    data = text_pdf(password="x", tmp_path=tmp_path)
    with pytest.raises(ParseError, match=r"encrypted: remove the password \(e\.g\. qpdf --decrypt"):
        PdfParser().parse(Blob(data, "locked.pdf", "application/pdf"))


def test_empty_user_password_just_works(tmp_path: Path) -> None:
    data = text_pdf(password="", tmp_path=tmp_path)
    texts = [e.text for e in parse(data)]
    assert texts == ["Page 1 says hello.", "Page 2 says hello."]


def test_truncated_file_keeps_what_can_be_read() -> None:
    data = (PDFS / "vcd-residual-shadings.pdf").read_bytes()
    with collect_warnings() as warnings:
        elements = parse(data[: len(data) // 2], name="half.pdf")
    assert any("damaged" in w for w in warnings)
    assert elements and any("rseed <- 1071" in e.text for e in elements)


def test_truncated_file_with_nothing_left_is_an_error() -> None:
    data = (PDFS / "vcd-residual-shadings.pdf").read_bytes()
    with pytest.raises(ParseError, match="damaged or truncated"):
        parse(data[:2000], name="head.pdf")


def test_a_failing_page_is_skipped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pdf_module.read_page

    def flaky(page: pymupdf.Page) -> Any:
        if page.number == 1:
            raise RuntimeError("cannot parse content stream")
        return real(page)

    monkeypatch.setattr(pdf_module, "read_page", flaky)
    with collect_warnings() as warnings:
        elements = parse(text_pdf(3))
    assert [e.page for e in elements] == [1, 3]
    assert warnings == ["page 2 could not be parsed and was skipped (RuntimeError: cannot parse content stream)"]


def test_every_page_failing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(page: pymupdf.Page) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(pdf_module, "read_page", broken)
    with collect_warnings(), pytest.raises(ParseError, match="none of the 2 pages"):
        parse(text_pdf(2))
