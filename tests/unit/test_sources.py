from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.elements import Blob
from mmrag.errors import ParseError
from mmrag.parsers import expand_sources, is_url, load_blob, parse_blob, parse_sources
from mmrag.parsers.mime import sniff_mime


@pytest.mark.parametrize(
    ("data", "name", "declared", "expected"),
    [
        (b"%PDF-1.7\n...", "x.bin", None, "application/pdf"),
        (b"junk\n%PDF-1.4", None, None, "application/pdf"),
        (b"<!DOCTYPE html><html>", "report.pdf", "application/pdf", "text/html"),  # a .pdf that is really HTML
        (b"\xef\xbb\xbf  <html lang=en>", None, None, "text/html"),
        (b"\x89PNG\r\n\x1a\n....", "a.jpg", None, "image/png"),
        (b"\xff\xd8\xff\xe0", None, None, "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, None, "image/webp"),
        (b"GIF89a", None, None, "image/gif"),
        (b"plain words", "notes.txt", None, "text/plain"),
        (b"plain words", None, "text/html; charset=utf-8", "text/html"),
        (b"\x00\x01", None, "application/octet-stream", "application/octet-stream"),
    ],
)
def test_sniff_mime(data: bytes, name: str | None, declared: str | None, expected: str) -> None:
    assert sniff_mime(data, name=name, declared=declared) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [("https://example.org/a.pdf", True), ("http://x", True), ("ftp://host/f", True), ("C:\\docs\\a.pdf", False),
     ("docs/a.pdf", False), ("file:///tmp/a.pdf", False)],
)
def test_is_url(source: str, expected: bool) -> None:
    assert is_url(source) is expected


def test_expand_folders_globs_and_urls(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ["b.pdf", "a.html", "sub/c.PNG", "notes.txt", ".hidden/x.pdf"]:
        (tmp_path / name).write_bytes(b"x")
    folder = expand_sources([tmp_path])
    assert folder == [str(tmp_path / "a.html"), str(tmp_path / "b.pdf"), str(tmp_path / "sub" / "c.PNG")]
    assert expand_sources([f"{tmp_path}/*.pdf", "https://e.org/x", str(tmp_path / "b.pdf")]) == [
        str(tmp_path / "b.pdf"), "https://e.org/x"
    ]
    assert expand_sources([f"{tmp_path}/*.docx"]) == [f"{tmp_path}/*.docx"]  # kept, so the error is reported


def test_load_blob_sniffs_and_sets_base(tmp_path: Path) -> None:
    page = tmp_path / "report.pdf"
    page.write_bytes(b"<html><body><p>not a pdf</p></body></html>")
    blob = load_blob(str(page))
    assert blob.mime_type == "text/html" and blob.base == str(tmp_path.resolve()) and blob.source == str(page)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [("missing.pdf", None, "no such file"), ("empty.pdf", b"", "empty (0 bytes)"),
     ("notes.txt", b"just text", "unsupported content type 'text/plain'"), ("*.nothing", None, "matches no files")],
)
def test_bad_sources_fail_alone_with_named_reason(tmp_path: Path, name: str, content: bytes | None, reason: str,
                                                  data_dir: Path) -> None:
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    good = data_dir / "images" / "img_023.jpg"
    results = list(parse_sources([str(bad), str(good)]))
    assert [r.source for r in results] == [str(bad), str(good)]
    assert not results[0].ok and reason in (results[0].error or "")
    assert results[1].ok and len(results[1].elements) == 1


def test_parse_blob_rejects_unknown_types() -> None:
    with pytest.raises(ParseError, match="mmrag parses PDF, HTML, Word, PowerPoint, Excel, Markdown, CSV/TSV and"):
        list(parse_blob(Blob(b"PK\x03\x04", "a.docx", "application/zip")))
