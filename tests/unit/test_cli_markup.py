"""Markup and control characters from file names and documents reach the terminal as plain text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag._cli_render import print_ingest_report
from mmrag.chains.ingestion import IngestReport, SourceReport
from mmrag.cli import cli
from mmrag.config import Settings


def _report(*sources: SourceReport) -> IngestReport:
    return IngestReport("default", sources, {"new": 0, "cached": 0, "by_role": {}}, 0.0, 0.1)


def test_ingest_report_prints_markup_in_names_and_warnings_literally(capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(
        SourceReport("/docs/x[/y].pdf", "new", elements={"text": 1}, added=1),
        SourceReport("/docs/b[red]red.pdf", "new", elements={"text": 2}, added=2,
                     warnings=('skipped image missing[/b].png: no such file',)),
        SourceReport("/docs/e\x1b[2Jvil.pdf", "failed", error="cannot read [bold]it[/bold]\x1b]0;pwned\x07"),
    )
    print_ingest_report(report, Settings())
    out, err = capsys.readouterr()
    assert "x[/y].pdf" in out and "b[red]red.pdf" in out
    assert "skipped image missing[/b].png: no such file" in err
    assert "cannot read [bold]it[/bold]" in err
    assert "\x1b" not in out + err and "\x07" not in err
    assert "e?[2Jvil.pdf" in out


def test_a_rerun_lists_what_changed_and_one_row_for_the_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    same = [SourceReport(f"/docs/same{i}.pdf", "unchanged", elements={"text": 2, "image": 1}) for i in range(3)]
    print_ingest_report(_report(SourceReport("/docs/new.pdf", "new", elements={"text": 5}, added=5), *same),
                        Settings())
    out = capsys.readouterr().out
    assert "new.pdf" in out and "same0.pdf" not in out
    [row] = [line for line in out.splitlines() if "(3 other sources)" in line]
    assert row.split("│")[2:6] == [" unchanged ", "    6 ", "     0 ", "     3 "]  # status, text, table, image
    assert "offline profile" in out  # something was processed: the OCR-only note applies to it
    print_ingest_report(_report(*same), Settings())
    again = capsys.readouterr().out
    assert "(all 3 sources)" in again and "offline profile" not in again and "4 sources" not in again


def test_parse_cli_strips_control_characters_from_names(tmp_path: Path, data_dir: Path) -> None:
    weird = tmp_path / "e\x1b[31mvil [red]x[dim].png"
    shutil.copy(data_dir / "images" / "img_029.png", weird)
    result = CliRunner().invoke(cli, ["parse", str(weird)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "e?[31mvil [red]x[dim].png" in result.stdout


def test_the_footer_says_why_the_table_counts_more_images(capsys: pytest.CaptureFixture[str]) -> None:
    """A picture in a page and in a folder is one element in two rows: the footer counts it once and says so
    (the re-ingest table and footer disagreed on image counts without a word)."""
    sources = (SourceReport("/d/page.html", "unchanged", elements={"text": 3, "image": 2}),
               SourceReport("/d/pics/a.png", "unchanged", elements={"image": 1}),
               SourceReport("/d/pics/b.png", "unchanged", elements={"image": 1}))
    report = IngestReport("default", sources, {"new": 0, "cached": 0, "by_role": {}}, 0.0, 0.1,
                          distinct={"text": 3, "image": 2})
    print_ingest_report(report, Settings())
    out = capsys.readouterr().out
    assert "2 image, 3 text (4 images in the table: a picture found in several sources is indexed once)" in out
    assert "│ 4 " in out or " 4 │" in out  # the unchanged summary row sums the places
