"""Issue 23 item 7: thousands of alike warnings for one source are summarised, not printed one by one."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import cli
from mmrag.parsers._report import MAX_ALIKE, MAX_WARNINGS, collect_warnings, warn


def test_a_page_with_thousands_of_missing_images_prints_a_few_lines(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    images = "".join(f'<img src="gone/img{i}.png" alt="figure {i}">' for i in range(3000))
    page = tmp_path / "page.html"
    page.write_text(f"<html><body><h1>Figures</h1><p>Three thousand figures.</p>{images}</body></html>")
    monkeypatch.setenv("MMRAG_MAX_PAGE_IMAGES", "5000")  # the cap raised, as in the report
    result = CliRunner().invoke(cli, ["parse", str(page)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.lstrip().startswith("!")]
    assert len(warnings) == MAX_ALIKE + 1, warnings[:10]
    assert "... and 2,997 more like: skipped image" in warnings[-1]


def test_alike_and_total_caps(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mmrag.parsers"), collect_warnings() as kept:
        for i in range(500):
            warn("doc.pdf", f"skipped image xref {i} on page {i // 10}: too large")
        for i in range(200):
            warn("doc.pdf", f"unique problem {'x' * (i % 7)}{chr(65 + i % 26)}{chr(97 + i // 26)}")
    assert kept[:MAX_ALIKE] == [f"skipped image xref {i} on page 0: too large" for i in range(MAX_ALIKE)]
    assert kept[MAX_ALIKE] == "... and 497 more like: skipped image xref 499 on page 49: too large"
    assert len(kept) == MAX_WARNINGS + 1 and kept[-1].startswith("... and ") and kept[-1].endswith("more warnings")
    assert len(caplog.records) <= MAX_WARNINGS + 1
