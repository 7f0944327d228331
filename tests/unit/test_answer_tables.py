"""Tables quoted in an answer are drawn as tables: in the HTML answer box (``ask --html``), in a notebook's
display of an ``Answer`` and in the terminal (rich), never as ``| | mpg | cyl |`` pipes (issue 25, item 4)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag._cli_render import AnswerPrinter
from mmrag._tables import Table, segments
from mmrag.answers import Answer
from mmrag.render import answer_html

# What the offline extractive answer to "What is the horsepower of the Mazda RX4?" looks like.
TEXT = ("Extractive answer (no generator configured): the passages below are quoted from the sources.\n\n"
        "Table (32 rows × 12 columns) with columns: mpg, cyl, hp. Rows (first column): Mazda RX4 and 31 more.\n"
        "|  | mpg | cyl | hp |\n|---|---|---|---|\n| Mazda RX4 | 21.0 | 6 | 110 |\n| Mazda RX4 Wag | 21.0 | 6 | 110 |\n"
        "[1]")


def test_segments_cut_text_and_tables() -> None:
    parts = segments(TEXT)
    assert [type(p).__name__ for p in parts] == ["str", "Table", "str"]
    table = parts[1]
    assert isinstance(table, Table)
    assert table.header == ("", "mpg", "cyl", "hp")
    assert table.rows == (("Mazda RX4", "21.0", "6", "110"), ("Mazda RX4 Wag", "21.0", "6", "110"))
    assert parts[2] == "[1]"
    assert segments("a | b\nplain") == ["a | b\nplain"]  # no table: unchanged
    assert segments("| just one row |") == ["| just one row |"]


@pytest.mark.parametrize("surface", ["page", "notebook"])
def test_the_answer_box_draws_the_table(surface: str) -> None:
    answer = Answer("What is the horsepower of the Mazda RX4?", TEXT, "extractive")
    html = answer_html(answer) if surface == "page" else answer._repr_html_()
    box = html.split('<div class="answer">', 1)[1].split("</div>", 1)[0]
    assert '<table class="data quoted">' in box
    assert "<th>mpg</th>" in box and "<td>Mazda RX4</td>" in box and "<td>110</td>" in box
    assert "| mpg |" not in box and "|---|" not in box
    assert "Table (32 rows" in box and box.rstrip().endswith("[1]")


def _printed(pieces: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    printer = AnswerPrinter()
    for piece in pieces:
        printer.feed(piece)
    printer.close()
    return capsys.readouterr().out


def test_the_terminal_draws_a_rich_table_however_the_answer_streams(capsys: pytest.CaptureFixture[str]) -> None:
    whole = _printed([TEXT], capsys)
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(TEXT)), 40))
    streamed = _printed([TEXT[a:b] for a, b in zip([0, *cuts], [*cuts, len(TEXT)], strict=True)], capsys)
    assert streamed == whole
    assert "| Mazda RX4 |" not in whole and "|---|" not in whole
    row = next(line for line in whole.splitlines() if line.startswith("│ Mazda RX4 "))  # a rich table row
    assert "110" in row
    assert "Table (32 rows" in whole and whole.rstrip().endswith("[1]")


def test_text_with_pipes_that_is_no_table_is_printed_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    out = _printed(["use a | b to pipe,", " and |x| for abs\n", "| one lone row |\nend"], capsys)
    assert out == "use a | b to pipe, and |x| for abs\n| one lone row |\nend"


def test_ask_prints_the_table_as_a_table(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.cli import cli

    monkeypatch.setenv("MMRAG_OCR", "off")
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(data_dir / "pdf" / "tabula-data.pdf"), "--json"]).exit_code == 0
    result = runner.invoke(cli, ["ask", "What is the horsepower of the Mazda RX4?", "--no-decompose"])
    assert result.exit_code == 0, result.output
    assert "| Mazda RX4 |" not in result.stdout
    assert any("│" in line and "Mazda RX4" in line and "110" in line for line in result.stdout.splitlines())
