"""Markdown and CSV/TSV: a real Markdown table (onnxruntime's op list) and CSV (matplotlib's msft.csv) from
tests/data_office, plus files written here for code blocks, images, sniffed delimiters and encodings."""

from __future__ import annotations

from pathlib import Path

from mmrag.answers import breadcrumb, location_of
from mmrag.parsers import ParseOptions, expand_sources, parse_source
from mmrag.parsers.mime import sniff_mime

OFFICE = Path(__file__).resolve().parents[1] / "data_office"
IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"


def test_a_real_gfm_table_becomes_a_table_element() -> None:
    result = parse_source(str(OFFICE / "nnapi_supported_ops.md"))
    assert result.ok and result.mime_type == "text/markdown"
    (table,) = [e for e in result.elements if e.kind == "table"]
    assert table.metadata["header"] == ["Operator", "Note"]
    assert "ai.onnx:Conv,Only 2D Conv is supported.Weights and bias should be constant." in table.metadata["csv"]
    assert table.metadata["rows"] == sum(1 for line in (OFFICE / "nnapi_supported_ops.md").read_text().splitlines()
                                         if line.startswith("|ai.onnx:") or line.startswith("|com.microsoft:"))


def test_markdown_headings_code_blocks_and_local_images(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "plot.png").write_bytes((IMAGES / "img_029.png").read_bytes())
    code = "\n".join(f"x{i} = compute({i})  # step {i}" for i in range(60))  # longer than chunk_size
    (tmp_path / "guide.md").write_text(
        '<div align="center">A guide</div>\n\n# Setup\n\nInstall it first.\n\n## Run\n\n'
        f"Then run:\n\n```python\n{code}\n```\n\n![The residual plot](img/plot.png)\n", encoding="utf-8")
    result = parse_source(str(tmp_path / "guide.md"), ParseOptions(chunk_size=500, chunk_overlap=50))
    assert result.ok and result.mime_type == "text/markdown"  # inline HTML first does not make it an HTML page
    (block,) = [e for e in result.elements if e.metadata.get("code")]
    assert code in block.text and block.metadata["language"] == "python" and len(block.text) > 500
    assert block.metadata["headings"] == ["Setup", "Run"] and location_of(block) == "Setup › Run"
    (image,) = [e for e in result.elements if e.kind == "image"]
    assert image.metadata["alt"] == "The residual plot" and breadcrumb(image) == "guide.md › Setup › Run"


def test_folders_skip_markdown_notes_but_take_office_and_csv_files() -> None:
    names = {Path(p).name for p in expand_sources([OFFICE])}
    assert "SOURCES.md" not in names and "nnapi_supported_ops.md" not in names
    assert {"datasets.xlsx", "msft.csv", "cht-charts.pptx", "having-images.docx"} <= names
    assert expand_sources([str(OFFICE / "*.md")]) == sorted(str(p) for p in OFFICE.glob("*.md"))


def test_a_real_csv_is_split_by_rows_with_its_header_repeated() -> None:
    result = parse_source(str(OFFICE / "msft.csv"), ParseOptions(chunk_size=400, chunk_overlap=50))
    assert result.ok
    parts = result.elements
    assert len(parts) > 1 and all(p.kind == "table" for p in parts)
    assert all(p.metadata["header"] == ["Date", "Open", "High", "Low", "Close", "Volume", "Adj. Close*"] for p in parts)
    assert sum(p.metadata["rows"] for p in parts) == 65
    assert parts[0].metadata["location"].startswith("rows 2-") and parts[0].metadata["location_kind"] == "rows"
    assert parts[-1].metadata["location"].endswith("-66")


def test_delimiter_and_encoding_are_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "ventes.csv"
    path.write_bytes("Région;Chiffre\nÎle-de-France;1200\nBretagne;800\n".encode("cp1252"))
    result = parse_source(str(path))
    assert result.ok
    (table,) = result.elements
    assert table.metadata["header"] == ["Région", "Chiffre"] and "| Île-de-France | 1200 |" in table.text
    assert table.metadata["delimiter"] == "semicolon"
    tsv = tmp_path / "a.tsv"
    tsv.write_text("name\tvalue\nx\t1\n", encoding="utf-8")
    assert sniff_mime(tsv.read_bytes(), name="a.tsv") == "text/tab-separated-values"
    assert parse_source(str(tsv)).elements[0].metadata["header"] == ["name", "value"]


def test_binary_content_under_a_csv_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n\x00\x01\x02\x00binary")
    result = parse_source(str(path))
    assert not result.ok and "NUL bytes" in (result.error or "")
