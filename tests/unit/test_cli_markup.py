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


def test_parse_cli_strips_control_characters_from_names(tmp_path: Path, data_dir: Path) -> None:
    weird = tmp_path / "e\x1b[31mvil [red]x[dim].png"
    shutil.copy(data_dir / "images" / "img_029.png", weird)
    result = CliRunner().invoke(cli, ["parse", str(weird)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "e?[31mvil [red]x[dim].png" in result.stdout
