# mypy: disable-error-code="no-untyped-call"
"""PdfParser on real documents (tests/data/pdf, provenance in its SOURCES.md): facts checked by looking at them."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from mmrag.elements import Blob, Element
from mmrag.parsers import parse_source
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.pdf import PdfParser

PDFS = Path(__file__).parent.parent / "data" / "pdf"

Parse = Callable[..., list[Element]]


@pytest.fixture(scope="module")
def parsed() -> Parse:
    """Parse a test PDF once per module (per options)."""
    cache: dict[tuple[str, ParseOptions], list[Element]] = {}

    def get(name: str, options: ParseOptions | None = None) -> list[Element]:
        options = options or ParseOptions()
        key = (name, options)
        if key not in cache:
            blob = Blob((PDFS / name).read_bytes(), name, "application/pdf")
            cache[key] = list(PdfParser(options).parse(blob))
        return cache[key]

    return get


def of_kind(elements: list[Element], kind: str, page: int | None = None) -> list[Element]:
    return [e for e in elements if e.kind == kind and (page is None or e.page == page)]


# --- text -----------------------------------------------------------------------------------------------------


def test_vcd_first_page_text_holds_the_seed(parsed: Parse) -> None:
    texts = of_kind(parsed("vcd-residual-shadings.pdf"), "text", page=1)
    assert any("rseed <- 1071" in e.text for e in texts)
    assert all(e.source == "vcd-residual-shadings.pdf" and e.mime_type == "text/plain" for e in texts)


def test_strucchange_text_facts(parsed: Parse) -> None:
    page3 = " ".join(e.text for e in of_kind(parsed("strucchange-intro.pdf"), "text", page=3))
    assert 'data("USIncExp")' in page3


def test_octave_refcard_columns_are_not_interleaved(parsed: Parse) -> None:
    chunks = of_kind(parsed("octave-refcard-a4.pdf"), "text", page=1)
    text = "\n".join(e.text for e in chunks)
    # column 1 ends with "Inserting or Changing Text", column 2 starts with "Killing and Yanking" at the top
    # of the page; sorting blocks by y alone would put the latter first
    order = ["Starting Octave", "Getting Help", "Inserting or Changing Text", "Killing and Yanking",
             "Command Completion and History", "Shell Commands", "Sparse Matrices", "Index Expressions"]
    positions = [text.index(h) for h in order]
    assert positions == sorted(positions)
    # key and description of one row stay on one line
    assert "lookfor str search for command based on str" in text


def test_underlined_letters_do_not_scramble_the_sentence(parsed: Parse) -> None:
    # "sctest (structural change test)" underlines s, c and t; each underline used to end a text block
    page8 = " ".join(" ".join(e.text.split()) for e in of_kind(parsed("strucchange-intro.pdf"), "text", page=8))
    assert "the function sctest (structural change test) which returns" in page8

def test_ligatures_are_expanded(parsed: Parse) -> None:
    text = " ".join(e.text for e in of_kind(parsed("octave-refcard-a4.pdf"), "text", page=1))
    assert "briefly describe command" in text
    assert "\ufb02" not in text  # no "ﬂ" ligature glyph


def test_chunk_size_and_overlap_are_honoured(parsed: Parse) -> None:
    small = parsed("strucchange-intro.pdf", ParseOptions(chunk_size=300, chunk_overlap=80))
    texts = of_kind(small, "text")
    assert len(texts) > len(of_kind(parsed("strucchange-intro.pdf"), "text"))
    assert all(0 < len(e.text) <= 300 for e in texts)
    overlapping = sum(
        1 for a, b in zip(texts, texts[1:], strict=False) if a.page == b.page and b.text[:25] in a.text
    )
    # The overlap steps back over whole pieces (lines, sentences) that fit in 80 characters, as LangChain's
    # recursive splitter does, so prose of long sentences overlaps less often than short lines do.
    assert overlapping >= len(texts) // 4

    # without overlap the chunks of a page are an exact partition of its text
    no_overlap = of_kind(parsed("strucchange-intro.pdf", ParseOptions(chunk_size=300, chunk_overlap=0)), "text")
    whole = of_kind(parsed("strucchange-intro.pdf", ParseOptions(chunk_size=100_000, chunk_overlap=0)), "text")
    assert len(whole) == 17
    for page in whole:
        parts = "".join(e.text for e in no_overlap if e.page == page.page)
        assert "".join(parts.split()) == "".join(page.text.split())


def test_chunk_bbox_covers_its_text(parsed: Parse) -> None:
    doc = pymupdf.open(PDFS / "vcd-residual-shadings.pdf")
    chunk = next(e for e in of_kind(parsed("vcd-residual-shadings.pdf"), "text", page=1) if "rseed" in e.text)
    assert chunk.bbox is not None
    hits = doc[0].search_for("rseed <- 1071")
    assert hits and pymupdf.Rect(chunk.bbox).contains(hits[0])


# --- tables ---------------------------------------------------------------------------------------------------


def test_tabula_mtcars_table(parsed: Parse) -> None:
    tables = of_kind(parsed("tabula-data.pdf"), "table", page=1)
    assert len(tables) == 1
    t = tables[0]
    assert t.metadata["rows"] == 32 and t.metadata["columns"] == 12
    assert t.metadata["header"] == ["", "mpg", "cyl", "disp", "hp", "drat", "wt", "qsec", "vs", "am", "gear", "carb"]
    lines = t.metadata["csv"].splitlines()
    assert "Mazda RX4,21.0,6,160.0,110,3.90,2.620,16.46,0,1,4,4" in lines  # "21.0", not PyMuPDF's "210\n."
    assert "Datsun 710,22.8,4,108.0,93,3.85,2.320,18.61,1,1,4,1" in lines
    assert "| Volvo 142E | 21.4 |" in t.text
    assert t.mime_type == "text/markdown"
    assert t.bbox is not None and t.bbox[0] < 155 and t.bbox[2] > 565


def test_tabula_iris_tables_keep_their_open_side_columns(parsed: Parse) -> None:
    tables = of_kind(parsed("tabula-data.pdf"), "table", page=2)
    assert len(tables) == 2
    head, tail = tables
    assert head.metadata["header"] == ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"]
    assert head.metadata["rows"] == 6
    assert "5.1,3.5,1.4,0.2,setosa" in head.metadata["csv"]
    # the row names and Species columns have no outer border lines
    assert "150,5.9,3.0,5.1,1.8,virginica" in tail.metadata["csv"].splitlines()


def test_tabula_toothgrowth(parsed: Parse) -> None:
    (t,) = of_kind(parsed("tabula-data.pdf"), "table", page=3)
    assert t.metadata["header"] == ["len", "supp", "dose"]
    assert t.metadata["rows"] == 15
    assert t.metadata["csv"].splitlines()[1] == "4.2,VC,0.5"


def test_vcd_tables_without_rules_are_found_and_not_repeated_as_text(parsed: Parse) -> None:
    elements = parsed("vcd-residual-shadings.pdf")
    (pistonrings,) = of_kind(elements, "table", page=4)
    assert "C4,14,7,28" in pistonrings.metadata["csv"].splitlines()
    # R prints the header as a line above the ruled body: it is the header, C1 the first data row
    assert pistonrings.metadata["header"] == ["compressor", "North", "Centre", "South"]
    assert "C1,17,17,12" in pistonrings.metadata["csv"].splitlines()
    assert not any("C4 14 7 28" in e.text for e in of_kind(elements, "text", page=4))
    female, male = of_kind(elements, "table", page=6)
    assert "gender = Female" in female.text and "None,91,55,80" in female.metadata["csv"]
    assert "gender = Male" in male.text


def test_no_table_on_a_chart_with_gridlines(parsed: Parse) -> None:
    # page 9 is an association plot whose baselines PyMuPDF takes for table rules
    assert of_kind(parsed("vcd-residual-shadings.pdf"), "table", page=9) == []


def test_find_tables_never(parsed: Parse) -> None:
    assert of_kind(parsed("tabula-data.pdf", ParseOptions(find_tables="never")), "table") == []


# --- figures and images ---------------------------------------------------------------------------------------


def test_strucchange_vector_charts_with_captions(parsed: Parse) -> None:
    figures = [e for e in of_kind(parsed("strucchange-intro.pdf"), "image") if e.metadata.get("figure") == "vector"]
    by_page = {e.page or 0: e for e in figures}
    assert sorted(by_page) == [3, 4, 7, 8, 10, 13, 14]
    assert by_page[3].text.startswith("Figure 1: Personal income and personal consumption expenditures")
    assert by_page[7].text.startswith("Figure 3: OLS-based CUSUM process")
    assert by_page[10].text.startswith("Figure 5: F statistics")
    fig = by_page[3]
    assert fig.mime_type == "image/png" and fig.data is not None
    with Image.open(io.BytesIO(fig.data)) as img:
        assert img.size == (fig.metadata["width"], fig.metadata["height"])
        assert img.width > 300  # ~244 pt at 110 dpi
    # the chart box (205..411 x 144..239 pt) and its axis labels are inside the render
    assert fig.bbox is not None and fig.bbox[0] <= 205 and fig.bbox[2] >= 411 and fig.bbox[1] <= 144
    # its labels come from the text layer (so the offline captioner needs no OCR for them); not its caption
    layer = fig.metadata["text_layer"]
    assert "income" in layer and "billion US$" in layer and "1990" in layer and "Figure 1" not in layer
    # ...and they are the chart's words, not prose: the page's text chunks no longer carry the tick labels
    prose = "\n".join(e.text for e in of_kind(parsed("strucchange-intro.pdf"), "text") if e.page == 3)
    assert 'data("USIncExp")' in prose and "Figure 1: Personal income" in prose
    assert "billion US$" not in prose and "1960 1970 1980 1990 2000" not in prose


def test_vcd_mosaic_plots_are_vector_figures(parsed: Parse) -> None:
    figures = [e for e in of_kind(parsed("vcd-residual-shadings.pdf"), "image") if e.metadata.get("figure") == "vector"]
    captions = {e.page: e.text for e in figures}
    assert captions[6].startswith("Figure 3: Conditional mosaic plot with double maximum shading")
    assert captions[9].startswith("Figure 4: Conditional association plot")
    assert captions[10].startswith("Figure 5: Conditional mosaic plot")
    page5 = [e for e in figures if e.page == 5]
    assert page5 and all(e.text.startswith("Figure 2:") for e in page5)  # the grid of panels under one caption
    assert not any(e.page == 11 for e in figures)  # page 11 has equations with rules, not a chart


def test_colorspace_embedded_raster_images(parsed: Parse) -> None:
    images = [e for e in of_kind(parsed("colorspace-hcl-colors.pdf"), "image") if "xref" in e.metadata]
    assert [e.page for e in images] == [8, 9, 11]
    assert [e.mime_type for e in images] == ["image/jpeg"] * 3
    assert [(e.metadata["width"], e.metadata["height"]) for e in images] == [(1200, 600), (1200, 600), (800, 600)]
    assert images[0].text.startswith("Figure 6: Bivariate density estimation for duration and waiting time")
    assert images[2].text.startswith("Figure 9: SVM classification plot")
    assert images[0].bbox == pytest.approx((81, 109, 522, 329), abs=1)
    assert images[0].content_hash != images[1].content_hash


def test_colorspace_vector_figures(parsed: Parse) -> None:
    figures = [e for e in of_kind(parsed("colorspace-hcl-colors.pdf"), "image") if e.metadata.get("figure") == "vector"]
    captions = [e.text.split(":")[0] for e in figures]
    assert {"Figure 1", "Figure 2", "Figure 3", "Figure 4", "Figure 5", "Figure 8"} <= set(captions)


# --- pages that need OCR --------------------------------------------------------------------------------------


def test_scan_without_text_layer_becomes_a_page_to_ocr(parsed: Parse) -> None:
    elements = parsed("ocrmypdf-c03-29.pdf")
    assert [e.kind for e in elements] == ["page"]  # the page scan is not emitted a second time as an image
    page = elements[0]
    assert page.page == 1 and page.mime_type == "image/png" and page.data
    assert page.metadata["needs_ocr"] is True and page.metadata["ocr_reason"] == "no text layer"
    assert page.metadata["width"] > 500


def test_garbled_text_layer_is_detected(parsed: Parse) -> None:
    elements = parsed("spatstat-getstart.pdf")
    pages = of_kind(elements, "page")
    assert [p.page for p in pages] == list(range(1, 9))
    assert all(p.metadata["needs_ocr"] and p.metadata["ocr_reason"] == "garbled text layer" for p in pages)
    texts = of_kind(elements, "text", page=3)
    assert texts and all(e.metadata["garbled"] is True for e in texts)
    assert "✶✵✵✵" in " ".join(e.text for e in texts)  # kept as is: "1000" needs OCR of the render
    assert of_kind(elements, "table") == []


def test_clean_pages_are_not_flagged(parsed: Parse) -> None:
    elements = parsed("strucchange-intro.pdf")
    assert of_kind(elements, "page") == []
    assert not any(e.metadata.get("garbled") for e in elements)


# --- invariants over every document ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in PDFS.glob("*.pdf")))
def test_invariants(parsed: Parse, name: str) -> None:
    elements = parsed(name)
    assert elements
    doc = pymupdf.open(PDFS / name)
    for e in elements:
        assert e.source == name
        assert e.page is not None and 1 <= e.page <= doc.page_count
        rect = doc[e.page - 1].rect
        assert e.bbox is not None
        x0, y0, x1, y1 = e.bbox
        assert rect.x0 <= x0 <= x1 <= rect.x1 and rect.y0 <= y0 <= y1 <= rect.y1, (e.kind, e.page, e.bbox)
        json.dumps(dict(e.metadata))  # JSON-serialisable
        e.to_json()
        if e.kind in ("text", "table"):
            assert e.data is None and e.text.strip()
        else:
            assert e.data and e.mime_type in ("image/png", "image/jpeg")
    pages = [e.page for e in elements if e.page is not None]
    assert pages == sorted(pages)  # streamed page by page


def test_ids_are_stable_across_parses() -> None:
    data = (PDFS / "vcd-residual-shadings.pdf").read_bytes()
    first = [e.id for e in PdfParser().parse(Blob(data, "vcd.pdf", "application/pdf"))]
    second = [e.id for e in PdfParser().parse(Blob(data, "vcd.pdf", "application/pdf"))]
    assert first == second
    assert len(set(first)) == len(first)


def test_lone_page_numbers_are_not_chunks(data_dir: Path) -> None:
    result = parse_source(str(data_dir / "pdf" / "tabula-data.pdf"))
    texts = [e.text for e in result.elements if e.kind == "text"]
    assert not any(t.strip().isdigit() for t in texts)
    strucchange = parse_source(str(data_dir / "pdf" / "strucchange-intro.pdf")).elements
    last_on_page_14 = [e.text for e in strucchange if e.kind == "text" and e.page == 14][-1]
    assert not last_on_page_14.rstrip().endswith("1993.\n\n14") and "1993." in last_on_page_14
