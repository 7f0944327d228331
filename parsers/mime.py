"""Content-type sniffing: the bytes decide first, then the declared type, then the file name."""

from __future__ import annotations

import mimetypes

__all__ = ["IMAGE_TYPES", "MEDIA_SUFFIXES", "TEXT_TABLE_TYPES", "sniff_mime"]

IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
TEXT_TABLE_TYPES = frozenset({"text/csv", "text/tab-separated-values"})
_MARKDOWN_SUFFIXES = (".md", ".markdown")
_TEXT_NAMES = {".tsv": "text/tab-separated-values", ".tab": "text/tab-separated-values"}
MEDIA_SUFFIXES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
                  ".mkv": "video/x-matroska", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
                  ".ogg": "audio/ogg", ".opus": "audio/ogg", ".flac": "audio/flac"}
"""Video and audio files mmrag reads (mmrag.parsers.video), by extension: the type when the bytes do not say."""


def _sniff_media(head: bytes) -> str | None:
    """Video/audio containers by their signatures (ISO BMFF ``ftyp``, Matroska/WebM EBML, RIFF WAVE, MP3, Ogg)."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    return None


_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<div", b"<p>", b"<table")


def _looks_like_html(head: bytes) -> bool:
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(b"<?xml") and b"<html" in lowered:
        return True
    return any(lowered.startswith(m) for m in _HTML_MARKERS) or (b"<html" in lowered[:1024])


def sniff_mime(data: bytes, name: str | None = None, declared: str | None = None) -> str:
    """Best guess of the MIME type of ``data``.

    Magic numbers win over everything (a ``.pdf`` that is really HTML is HTML; a zip is a Word, PowerPoint or
    Excel file by the parts inside it, whatever its name). Then a declared Content-Type, then the file name's
    extension, then ``application/octet-stream``. A Markdown file may begin with inline HTML (``<div
    align="center">``): named ``.md``, it stays Markdown unless it is a whole HTML document.
    """
    head = data[:2048]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        from mmrag.parsers._office import ooxml_mime

        return ooxml_mime(data) or "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    # PDFs may have up to 1 KiB of junk before the header; readers accept that, so do we.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    lowered_name = (name or "").lower()
    if lowered_name.endswith(_MARKDOWN_SUFFIXES) and not head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(
            (b"<!doctype html", b"<html")):
        return "text/markdown"
    if _looks_like_html(head):
        return "text/html"
    media = _sniff_media(head)
    if media:
        return media
    if declared:
        base = declared.split(";", 1)[0].strip().lower()
        if base and base != "application/octet-stream":
            return base
    if name and (dot := name.rfind(".")) >= 0 and name[dot:].lower() in MEDIA_SUFFIXES:
        return MEDIA_SUFFIXES[name[dot:].lower()]
    if name:
        suffix = lowered_name[lowered_name.rfind("."):] if "." in lowered_name else ""
        if suffix in _TEXT_NAMES:
            return _TEXT_NAMES[suffix]
        guessed, _ = mimetypes.guess_type(name)
        if guessed:
            return guessed
    return "application/octet-stream"
