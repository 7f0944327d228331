from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mmrag.cli import cli


def test_parse_json_lines(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["parse", "--json", str(data_dir / "images")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and {r["kind"] for r in rows} == {"image"}
    keys = {"id", "kind", "source", "page", "bbox", "text", "mime_type", "width", "height"}
    assert all(keys <= r.keys() for r in rows)
    fish = next(r for r in rows if r["source"].endswith("img_023.jpg"))
    assert (fish["width"], fish["height"], fish["mime_type"]) == (259, 194, "image/jpeg")


def test_parse_human_summary_and_failure_exit_code(data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    result = CliRunner().invoke(cli, ["parse", str(data_dir / "images" / "img_031.png"), str(empty)])
    assert result.exit_code == 1
    assert "✓" in result.stdout and "1 image" in result.stdout
    assert f"✗ {empty}: the file is empty (0 bytes)" in result.stderr
    assert "1 source failed" in result.stdout


def test_json_errors_go_to_stderr_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["parse", "--json", str(tmp_path / "nope.pdf")])
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(result.stderr) == {"source": str(tmp_path / "nope.pdf"), "error": "no such file"}


def test_invalid_settings_are_usage_errors(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["parse", "--chunk-size", "300", "--chunk-overlap", "400", str(data_dir)])
    assert result.exit_code == 2 and "chunk_overlap (400) must be smaller than chunk_size (300)" in result.stderr


def test_environment_settings_apply(monkeypatch, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MMRAG_MIN_IMAGE_PX", "abc")
    result = CliRunner().invoke(cli, ["parse", str(data_dir / "images")])
    assert result.exit_code == 2 and "min_image_px" in result.stderr


def test_python_dash_m_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "mmrag", "--help"], capture_output=True, text=True, check=True)
    assert "parse" in out.stdout and "Usage: mmrag" in out.stdout


def test_readme_main_job_parses_all_test_data(data_dir: Path) -> None:
    """`mmrag parse tests/data` (in the README) must succeed on every kind of source."""
    result = CliRunner().invoke(cli, ["parse", "--json", str(data_dir)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {r["kind"] for r in rows}
    assert {"text", "table", "image", "page"} <= kinds
    sources = {r["source"] for r in rows}
    assert any(s.endswith(".pdf") for s in sources) and any(s.endswith(".html") for s in sources)
    # Ids are unique within a source; a picture shown by a page and kept as a file in its folder is one id in both.
    assert len({(r["source"], r["id"]) for r in rows}) == len(rows)
    assert len({r["id"] for r in rows if r["kind"] != "image"}) == sum(r["kind"] != "image" for r in rows)
