"""Word, PowerPoint and Excel: real files from python-docx, python-pptx and Debian's r-cran-readxl (tests/data_office,
provenance in its SOURCES.md), plus files built here for what no published file shows (hidden sheets, cached
formulas, captions, alt text, charts with known values)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from mmrag.answers import Citation, breadcrumb, location_of
from mmrag.elements import Blob, Element
from mmrag.parsers import ParseOptions, parse_source
from mmrag.parsers._office import DOCX, PPTX, XLSX
from mmrag.parsers.mime import sniff_mime

OFFICE = Path(__file__).resolve().parents[1] / "data_office"

pytest.importorskip("docx")
pytest.importorskip("pptx")
pytest.importorskip("openpyxl")


def _parse(path: Path, **options: object) -> tuple[list[Element], tuple[str, ...]]:
    result = parse_source(str(path), ParseOptions(**options))  # type: ignore[arg-type]
    assert result.ok, result.error
    return list(result.elements), result.warnings


# -- XLSX ----------------------------------------------------------------------------------------------------------

def test_workbook_sheets_become_tables_with_sheet_and_range() -> None:
    elements, warnings = _parse(OFFICE / "datasets.xlsx")
    assert warnings == ()
    by_sheet: dict[str, list[Element]] = {}
    for e in elements:
        by_sheet.setdefault(e.metadata["sheet"], []).append(e)
    assert sorted(by_sheet) == ["chickwts", "iris", "mtcars", "quakes"]
    (mtcars,) = by_sheet["mtcars"]  # the stored dimension says A1:A1: the used range is found by reading
    assert mtcars.kind == "table" and mtcars.metadata["location"] == "mtcars!A1:K33"
    assert mtcars.metadata["rows"] == 32 and mtcars.metadata["header"][:4] == ["mpg", "cyl", "disp", "hp"]
    assert location_of(mtcars) == "mtcars!A1:K33" and breadcrumb(mtcars) == "datasets.xlsx › mtcars!A1:K33"


def test_a_long_sheet_is_split_by_rows_with_the_header_in_every_part() -> None:
    elements, _ = _parse(OFFICE / "datasets.xlsx", chunk_size=800, chunk_overlap=100)
    quakes = [e for e in elements if e.metadata["sheet"] == "quakes"]
    assert len(quakes) > 3
    assert sum(e.metadata["rows"] for e in quakes) == 1000  # every row once, none twice
    for part in quakes:
        assert part.text.splitlines()[2] == "| lat | long | depth | mag | stations |"
        assert len(part.text) <= 3 * 800 + 200
    assert quakes[0].metadata["location"] == f"quakes!A1:E{quakes[0].metadata['rows'] + 1}"
    second = quakes[1].metadata
    assert second["location"] == f"quakes!A{second['first_row'] + 1}:E{second['last_row'] + 1}"


def test_hidden_sheets_are_skipped_and_reported_and_formulas_read_as_cached_values(tmp_path: Path) -> None:
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = tmp_path / "budget.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Budget")
    sheet.write_row(0, 0, ["Item", "Q1", "Q2", "Total"])
    sheet.write_row(1, 0, ["Rent", 100, 120])
    sheet.write_formula(1, 3, "=B2+C2", None, 220)  # the value Excel would have cached on saving
    secret = book.add_worksheet("Salaries")
    secret.write_row(0, 0, ["Name", "Salary"])
    secret.write_row(1, 0, ["Alice", 99999])
    secret.hide()
    book.close()
    elements, warnings = _parse(path)
    assert [e.metadata["sheet"] for e in elements] == ["Budget"]
    assert "| Rent | 100 | 120 | 220 |" in elements[0].text
    assert any("hidden sheets skipped: 'Salaries'" in w for w in warnings)
    assert not any("99999" in e.text for e in elements)


# -- PPTX ----------------------------------------------------------------------------------------------------------

def test_a_chart_becomes_a_table_and_a_description_from_its_data() -> None:
    elements, _ = _parse(OFFICE / "ph-populated-placeholders.pptx")
    chart = [e for e in elements if e.metadata.get("chart")]
    table = next(e for e in chart if e.kind == "table")
    text = next(e for e in chart if e.kind == "text")
    assert table.page == 4 and table.metadata["location"] == "slide 4" and table.metadata["location_kind"] == "slide"
    assert "| 1st Qtr | 8.2 |" in table.text and table.metadata["header"] == ["Category", "Sales"]
    assert "The highest Sales is 8.2 in 1st Qtr" in text.text and "lowest is 1.2 in 4th Qtr" in text.text
    assert breadcrumb(table) == "ph-populated-placeholders.pptx › slide 4"


def test_slides_keep_title_body_notes_tables_and_pictures() -> None:
    elements, _ = _parse(OFFICE / "test_slides.pptx")
    kinds = sorted(e.kind for e in elements)
    assert kinds == ["image", "image", "table", "text"]
    text = next(e for e in elements if e.kind == "text")
    assert text.page == 1 and "Group test text" in text.text  # a group's shapes are read too
    table = next(e for e in elements if e.kind == "table")
    assert table.metadata["header"] == ["Col head 1", "Col head 2"]
    notes, _ = _parse(OFFICE / "sld-notes.pptx")
    assert notes[0].text.endswith("Speaker notes: Notes") and notes[0].metadata["notes"] == "Notes"


def test_a_chart_made_here_answers_which_quarter_was_highest(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Revenue 2024"
    data = CategoryChartData()
    data.categories = ["Q1", "Q2", "Q3", "Q4"]
    data.add_series("Revenue", (10.5, 14.0, 9.25, 12.0))
    data.add_series("Cost", (7, 8, 9, 6))
    frame = slide.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(2), Inches(6), Inches(4), data)
    frame.chart.has_title = True
    frame.chart.chart_title.text_frame.text = "Revenue by quarter"
    path = tmp_path / "deck.pptx"
    deck.save(str(path))
    elements, _ = _parse(path)
    description = next(e for e in elements if e.kind == "text" and e.metadata.get("chart"))
    assert 'chart "Revenue by quarter"' in description.text
    assert "The highest Revenue is 14 in Q2" in description.text
    assert description.metadata["caption"] == "Revenue by quarter"
    table = next(e for e in elements if e.kind == "table")
    assert table.metadata["csv"].splitlines() == ["Category,Revenue,Cost", "Q1,10.5,7", "Q2,14,8", "Q3,9.25,9",
                                                   "Q4,12,6"]


def test_slides_as_images_without_libreoffice_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no soffice on this PATH
    elements, warnings = _parse(OFFICE / "test_slides.pptx", pages_as_images=True)
    assert elements and not any(e.kind == "page" for e in elements)
    assert any("LibreOffice is not installed" in w for w in warnings)


# -- DOCX ----------------------------------------------------------------------------------------------------------

def test_word_text_is_chunked_by_heading_path() -> None:
    elements, _ = _parse(OFFICE / "par-known-styles.docx")
    heading = next(e for e in elements if e.metadata.get("heading") == "Heading 1")
    assert heading.text == "Heading 1\n\nBody Text" and heading.metadata["location"] == "Heading 1"
    assert heading.metadata["location_kind"] == "heading" and location_of(heading) == "Heading 1"


def test_headers_and_footers_come_once_not_in_every_chunk() -> None:
    elements, _ = _parse(OFFICE / "hdr-header-footer.docx")
    header = [e for e in elements if e.metadata.get("header_footer")]
    assert len(header) == 1 and "Header for section-1" in header[0].text and "Footer for section 1" in header[0].text
    assert not any("Header for section-1" in e.text for e in elements if not e.metadata.get("header_footer"))


def test_word_tables_have_their_caption_and_pictures_their_alt_text(tmp_path: Path) -> None:
    import docx

    png = (Path(__file__).resolve().parents[1] / "data" / "images" / "img_029.png").read_bytes()
    document = docx.Document()
    document.add_heading("Results", level=1)
    document.add_heading("Costs", level=2)
    document.add_paragraph("Table 1: Costs per site")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("Site", "Cost"), ("Oslo", "120"), ("Lima", "80")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("The map below shows the sites.")
    document.add_picture(io.BytesIO(png))
    document.inline_shapes[0]._inline.docPr.set("descr", "Map of the two sites")
    path = tmp_path / "report.docx"
    document.save(str(path))
    elements, _ = _parse(path)
    table_el = next(e for e in elements if e.kind == "table")
    assert table_el.metadata["caption"] == "Table 1: Costs per site"
    assert table_el.metadata["headings"] == ["Results", "Costs"] and "| Oslo | 120 |" in table_el.text
    image = next(e for e in elements if e.kind == "image")
    assert image.metadata["alt"] == "Map of the two sites" and "Map of the two sites" in image.text
    assert breadcrumb(image) == "report.docx › Results › Costs"


# -- guards --------------------------------------------------------------------------------------------------------

def test_office_types_are_sniffed_by_their_parts_not_their_names() -> None:
    for name, mime in (("datasets.xlsx", XLSX), ("sld-notes.pptx", PPTX), ("par-known-styles.docx", DOCX)):
        assert sniff_mime((OFFICE / name).read_bytes(), name="renamed.bin") == mime


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("report.docx", b"<!doctype html><html><body>Please log in</body></html>", "login page"),
    ("report.docx", None, "content is an Excel workbook"),
    ("deck.pptx", "zip", "content is a zip archive of something else"),
    ("old.xlsx", "xls", "legacy binary Office file"),
    ("old.xls", "xls", "legacy binary Office file"),
])
def test_mislabelled_and_encrypted_files_are_one_line_errors(tmp_path: Path, name: str, content: bytes | str | None,
                                                             expected: str) -> None:
    import zipfile

    path = tmp_path / name
    if content is None:
        path.write_bytes((OFFICE / "clippy.xlsx").read_bytes())
    elif content == "xls":
        path.write_bytes((OFFICE / "clippy.xls").read_bytes())  # readxl's real Excel 97-2003 file
    elif content == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("photos/cat.txt", "not a deck")
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    result = parse_source(str(path))
    assert not result.ok and expected in (result.error or "") and "\n" not in (result.error or "")


def test_zip_bombs_are_refused_before_extraction(tmp_path: Path) -> None:
    import zipfile

    source = (OFFICE / "par-known-styles.docx").read_bytes()
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(io.BytesIO(source)) as original, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in original.infolist():
            out.writestr(info, original.read(info))
        out.writestr("word/media/zeros.bin", b"\0" * (8 * 1024 * 1024))  # 8 MiB that packs to ~8 KiB
    result = parse_source(str(bomb), ParseOptions(max_unpacked_bytes=4 * 1024 * 1024))
    error = result.error or ""
    assert not result.ok and "possible zip bomb" in error and "max_unpacked_bytes" in error
    many = tmp_path / "many.docx"
    with zipfile.ZipFile(io.BytesIO(source)) as original, zipfile.ZipFile(many, "w") as out:
        for info in original.infolist():
            out.writestr(info, original.read(info))
        for n in range(60):
            out.writestr(f"customXml/item{n}.xml", "<a/>")
    result = parse_source(str(many), ParseOptions(max_archive_entries=50))
    assert not result.ok and "entries" in (result.error or "") and "max_archive_entries" in (result.error or "")
    assert parse_source(str(many)).ok  # the default limits let a normal file through


def test_macro_enabled_files_are_read_without_running_anything(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "macros.xlsm"
    with zipfile.ZipFile(OFFICE / "clippy.xlsx") as original, zipfile.ZipFile(path, "w") as out:
        for info in original.infolist():
            out.writestr(info, original.read(info))
        out.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 not run")
    elements, warnings = _parse(path)
    assert any(e.metadata["sheet"] == "list-column" for e in elements)
    assert any("macros (vbaProject.bin) were not run" in w for w in warnings)


def test_without_the_office_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "openpyxl", None)  # what an environment without mmrag[office] sees
    result = parse_source(str(OFFICE / "clippy.xlsx"))
    assert not result.ok and "pip install 'mmrag[office]'" in (result.error or "")


# -- citations -----------------------------------------------------------------------------------------------------

def test_citations_carry_the_location_kind() -> None:
    slide = Element(kind="table", source="/d/deck.pptx", text="t", page=4,
                    metadata={"location": "slide 4", "location_kind": "slide"})
    sheet = Element(kind="table", source="/d/book.xlsx", text="t",
                    metadata={"location": "'Q1 sales'!A1:C9", "location_kind": "sheet"})
    pdf = Element(kind="text", source="/d/paper.pdf", text="t", page=3)
    c_slide, c_sheet, c_pdf = (Citation.for_element(n, e) for n, e in enumerate((slide, sheet, pdf), 1))
    assert (c_slide.location, c_slide.location_kind) == ("slide 4", "slide")
    assert c_slide.source_uri == "file:///d/deck.pptx"  # no #page= fragment for a slide
    assert c_sheet.to_dict()["location"] == "'Q1 sales'!A1:C9" and c_sheet.section == "book.xlsx › 'Q1 sales'!A1:C9"
    assert (c_pdf.location, c_pdf.location_kind, c_pdf.source_uri) == ("page 3", "page", "file:///d/paper.pdf#page=3")


def test_the_cli_sources_list_shows_slides_and_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    from mmrag.answers import Answer
    from mmrag.cli._ask import print_sources

    slide = Element(kind="table", source="deck.pptx", text="t", page=4,
                    metadata={"location": "slide 4", "location_kind": "slide"})
    sheet = Element(kind="table", source="book.xlsx", text="t", metadata={"location": "mtcars!A1:K33",
                                                                         "location_kind": "sheet"})
    answer = Answer("q", "a [1][2]", "extractive", citations=(Citation.for_element(1, slide),
                                                               Citation.for_element(2, sheet)))
    print_sources(answer)
    out = capsys.readouterr().out
    assert "[1] deck.pptx, slide 4 (table)" in out and "[2] book.xlsx, mtcars!A1:K33 (table)" in out


def test_blob_of_an_office_type_needs_its_extra_only_when_parsed() -> None:
    blob = Blob(data=(OFFICE / "clippy.xlsx").read_bytes(), source="clippy.xlsx", mime_type=XLSX)
    from mmrag.parsers import parser_for

    assert type(parser_for(blob)).__name__ == "XlsxParser"


def test_chart_categories_stored_as_date_serials_read_as_dates(tmp_path: Path) -> None:
    import datetime as dt

    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    data = CategoryChartData()
    data.categories = [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31)]
    data.add_series("Visitors", (120, 340, 90))
    slide.shapes.add_chart(XL_CHART_TYPE.LINE, Inches(1), Inches(1), Inches(6), Inches(4), data)
    path = tmp_path / "visits.pptx"
    deck.save(str(path))
    elements, _ = _parse(path)
    description = next(e for e in elements if e.kind == "text" and e.metadata.get("chart"))
    assert "The highest Visitors is 340 in 2024-02-29" in description.text


def test_notes_written_above_a_sheets_data_are_context_not_its_header() -> None:
    elements, _ = _parse(OFFICE / "deaths.xlsx")
    arts = next(e for e in elements if e.metadata["sheet"] == "arts")
    assert arts.metadata["header"] == ["Name", "Profession", "Age", "Has kids", "Date of birth", "Date of death"]
    assert arts.metadata["location"] == "arts!A5:F19" and arts.metadata["header_row"] == 5
    assert arts.text.startswith('Sheet "arts"\nLots of people\nsimply cannot resist writing some notes\nat the top')
    assert "| David Bowie | musician | 69 | TRUE | 1947-01-08 | 2016-01-10 |" in arts.text


def test_a_one_cell_word_table_is_read_as_text() -> None:
    elements, _ = _parse(OFFICE / "blk-paras-and-tables.docx")
    assert [e.kind for e in elements] == ["text"]  # the empty 2x2 table is nothing, the 1x1 box is text
    assert "Lorem ipsum dolor sit amet" in elements[0].text and "Text before Text after" in elements[0].text


def test_a_caption_styled_paragraph_is_the_tables_caption(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Budget overview", style="Caption")
    table = document.add_table(rows=2, cols=2)
    for c, value in enumerate(("Item", "Cost")):
        table.cell(0, c).text = value
    table.cell(1, 0).text, table.cell(1, 1).text = "Rent", "900"
    path = tmp_path / "budget.docx"
    document.save(str(path))
    elements, _ = _parse(path)
    assert next(e for e in elements if e.kind == "table").metadata["caption"] == "Budget overview"


@pytest.mark.parametrize("name", ["clippy.xlsx", "par-known-styles.docx", "sld-notes.pptx"])
def test_password_protected_files_are_reported_as_such(tmp_path: Path, name: str) -> None:
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")

    encrypted = io.BytesIO()
    with (OFFICE / name).open("rb") as plain:
        ooxml.OOXMLFile(plain).encrypt("s3cret", encrypted)  # what Office's "Encrypt" writes
    path = tmp_path / name
    path.write_bytes(encrypted.getvalue())
    result = parse_source(str(path))
    assert not result.ok and (result.error or "").startswith("the file is password-protected")
    assert "s3cret" not in (result.error or "")


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_slides_as_images_are_rendered_by_libreoffice() -> None:
    from PIL import Image

    elements, warnings = _parse(OFFICE / "test_slides.pptx", pages_as_images=True)
    (page,) = [e for e in elements if e.kind == "page"]
    assert page.page == 1 and page.metadata["location"] == "slide 1" and "Group test text" in page.text
    assert page.data is not None
    with Image.open(io.BytesIO(page.data)) as img:
        assert img.width > 500 and img.convert("L").getextrema() != (255, 255)  # not blank
    assert warnings == ()


def test_a_streamed_sheet_warns_about_cells_right_of_its_columns(tmp_path: Path) -> None:
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = tmp_path / "log.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Log")
    sheet.write_row(0, 0, ["Day", "Visits"])
    for n in range(1, 200):
        sheet.write_row(n, 0, [f"day {n}", n * 3])
    sheet.write(150, 4, "stray remark")  # column E, long after the table's columns were settled
    book.close()
    elements, warnings = _parse(path)
    assert sum(e.metadata["rows"] for e in elements) == 199
    assert any("row 151 has cells outside the columns of the rows above it (A-B)" in w for w in warnings)
    assert all(e.metadata["header"] == ["Day", "Visits"] for e in elements)
