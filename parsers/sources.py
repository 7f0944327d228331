"""From what a user types (paths, folders, globs, URLs) to blobs, and from blobs to elements.

``parse_sources`` is the entry point the CLI and ingest use: one :class:`SourceResult` per source, in order,
where a bad source carries its error and every other source still gets parsed.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmrag.elements import Blob, Element, Parser
from mmrag.errors import MmragError, ParseError, SourceNotFoundError
from mmrag.parsers._office import CFB_MIME, DOCX, PPTX, XLSX, cfb_reason
from mmrag.parsers._report import collect_warnings
from mmrag.parsers.mime import IMAGE_TYPES, MEDIA_SUFFIXES, TEXT_TABLE_TYPES, sniff_mime
from mmrag.parsers.options import ParseOptions

__all__ = [
    "SUPPORTED_SUFFIXES",
    "display_source",
    "SourceResult",
    "expand_sources",
    "is_url",
    "load_blob",
    "parse_blob",
    "parse_source",
    "parse_sources",
    "parser_for",
    "skipped_media",
]

logger = logging.getLogger(__name__)

_OFFICE_SUFFIXES = {".docx": DOCX, ".docm": DOCX, ".dotx": DOCX, ".pptx": PPTX, ".pptm": PPTX, ".potx": PPTX,
                    ".xlsx": XLSX, ".xlsm": XLSX, ".xltx": XLSX}
SUPPORTED_SUFFIXES = frozenset(
    {".pdf", ".html", ".htm", ".xhtml", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff",
     ".md", ".markdown", ".csv", ".tsv", *_OFFICE_SUFFIXES, *MEDIA_SUFFIXES}
)
_FOLDER_SKIPS = frozenset({".md", ".markdown"})
"""Parsed when named or globbed, not when a folder is expanded: folders of documents hold READMEs and licence
notes (``SOURCES.md``) beside them, which are not the documents. ``mmrag ingest 'docs/**/*.md'`` takes them."""
_GLOB_CHARS = frozenset("*?[")
_SKIPPED_MEDIA: set[str] = set()  # media files a folder held while mmrag[video] is missing: said once each


def _media_without_extra(path: Path) -> bool:
    """A video or audio file in a folder when mmrag[video] is not installed: skipped with one warning line, so a
    folder of documents with a sample video in it (``mmrag ingest tests/data`` after ``pip install '.[local]'``)
    ingests the rest without a failure. A media file named on its own still fails and says what to install."""
    if path.suffix.lower() not in MEDIA_SUFFIXES:
        return False
    try:
        import av  # noqa: F401  (PyAV: what the video parser needs)
    except ImportError:
        if str(path) not in _SKIPPED_MEDIA:
            _SKIPPED_MEDIA.add(str(path))
            logger.warning("%s: skipped: video and audio files need pip install 'mmrag[video]'", path)
        return True
    return False


def skipped_media() -> list[str]:
    """Video and audio files that folder expansion skipped in this process because mmrag[video] is missing."""
    return sorted(_SKIPPED_MEDIA)


def is_url(source: str) -> bool:
    """True for anything with a URL scheme other than a Windows drive letter (``C:``) or ``file:``."""
    head, sep, _ = source.partition("://")
    return bool(sep) and head.isalpha() and len(head) > 1 and head.lower() != "file"


def display_source(source: str) -> str:
    """The name under which a source is stored, indexed, cited and shown: a URL without credentials.

    User info (``alice:pw@``) and query or fragment parameters that carry secrets (``token``, ``access_key``,
    ``#access_token``, ``X-Amz-*``...) are removed by the one redaction rule, :func:`mmrag.redaction.redact_url`;
    the URL as given is used only to fetch. Paths are returned unchanged.
    """
    if not is_url(source):
        return source
    from mmrag.redaction import redact_url

    return redact_url(source)


def unreadable(source: str) -> ParseError | None:
    """The error for an item of :func:`expand_sources` that holds nothing to read, or None when it may (an existing
    file, any URL): a missing file or a pattern that matches none is a :class:`SourceNotFoundError`, a folder with no
    supported file a :class:`ParseError`. Touches only the file system."""
    if is_url(source):
        return None
    path = Path(source[len("file://") :] if source.startswith("file://") else source).expanduser()
    if path.is_dir():
        return ParseError(source, "the folder has no supported files (pdf, html, docx, pptx, xlsx, md, csv, tsv, "
                                   "png, jpg, gif, webp, bmp, tiff)")
    if not path.exists():
        return SourceNotFoundError(source, "the pattern matches no files" if _GLOB_CHARS & set(source) else
                                   "no such file")
    return None


def expand_sources(sources: Iterable[str | os.PathLike[str]], *, include: Sequence[str] = (),
                   exclude: Sequence[str] = (), s3_endpoint_url: str | None = None) -> list[str]:
    """Expand folders (recursively, supported files only), globs and ``s3://`` prefixes; keep URLs and plain paths
    as given. ``include`` / ``exclude`` globs filter what a folder or an S3 prefix expands to (matched against the
    path relative to it, or the file name).

    The order is stable: arguments in order, files inside a folder or glob sorted. Duplicates are dropped.
    A folder or glob that matches nothing is kept as is, so that parsing reports it instead of silently
    doing nothing.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(item: str) -> None:
        if item not in seen:
            seen.add(item)
            out.append(item)

    for raw in sources:
        source = os.fspath(raw)
        if source.startswith("s3://"):
            from mmrag.parsers.s3_sources import expand_s3

            for item in expand_s3(source, SUPPORTED_SUFFIXES, include, exclude, s3_endpoint_url):
                add(item)
            continue
        if is_url(source):
            add(source)
            continue
        if source.startswith("file://"):
            source = source[len("file://") :]
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES - _FOLDER_SKIPS and not any(
                    part.startswith(".") for part in p.relative_to(path).parts
                )
            )
            files = [p for p in files if not _media_without_extra(p)]
            if include or exclude:
                from mmrag.parsers.s3_sources import _matches

                files = [p for p in files if (not include or _matches(p.relative_to(path).as_posix(), include))
                         and not (exclude and _matches(p.relative_to(path).as_posix(), exclude))]
            for p in files or [path]:
                add(str(p))
        elif _GLOB_CHARS & set(source) and not path.exists():
            matches = sorted(m for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
            for m in matches or [source]:
                add(m)
        else:
            add(str(path))
    return out


_SUFFIX_FAMILY = {".pdf": "application/pdf", ".html": "text/html", ".htm": "text/html", ".xhtml": "text/html",
                  **{s: "image" for s in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")}}


def _family(mime: str) -> str:
    if mime.startswith("image/"):
        return "image"
    return "text/html" if mime in ("text/html", "application/xhtml+xml") else mime


def _check_suffix(blob: Blob, name: str) -> Blob:
    """Warn when the content is not what the name says (a login page saved as ``report.pdf``)."""
    from mmrag.parsers._report import warn

    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot >= 0 and "/" not in name[dot:] else ""
    office = _OFFICE_SUFFIXES.get(suffix)
    if office is not None and blob.data and blob.mime_type != office:
        # An Office name on other content is never parsed as that content: an error or login page saved as
        # report.docx, a zip of something else, a workbook renamed to .docx.
        what = {DOCX: "a Word document", PPTX: "a PowerPoint deck", XLSX: "an Excel workbook",
                "application/zip": "a zip archive of something else"}.get(blob.mime_type, blob.mime_type)
        hint = " (an error or login page saved under that name?)" if _family(blob.mime_type) == "text/html" else ""
        if blob.mime_type == CFB_MIME:
            raise ParseError(blob.source, cfb_reason(blob.data))
        raise ParseError(blob.source, f"the name ends in {suffix} but the content is {what}{hint}")
    expected = _SUFFIX_FAMILY.get(suffix)
    if expected is not None and blob.data and _family(blob.mime_type) != expected:
        hint = " (an error or login page saved under that name?)" if _family(blob.mime_type) == "text/html" else ""
        warn(blob.source, f"the name ends in {suffix} but the content is {blob.mime_type}{hint}: parsed as "
                          f"{blob.mime_type}")
    return blob


def load_blob(source: str, options: ParseOptions | None = None) -> Blob:
    """Read a local file or fetch a URL into a :class:`Blob` (raises :class:`ParseError` naming the source).

    A file or URL whose content disagrees with its extension (HTML in a ``.pdf``) is parsed by its content,
    with a warning.
    """
    options = options or ParseOptions()
    if source.startswith("s3://"):
        from mmrag.parsers.s3_sources import load_s3_blob

        blob = load_s3_blob(source, options.max_source_bytes, options.s3_endpoint_url)
        return _check_suffix(blob, source.rsplit("/", 1)[-1])
    if is_url(source):
        from urllib.parse import urlsplit

        from mmrag.parsers.fetch import fetch_url

        blob = fetch_url(source, options)
        return _check_suffix(blob, urlsplit(blob.base or source).path)
    error = unreadable(source)
    if error is not None:
        raise error
    path = Path(source[len("file://") :] if source.startswith("file://") else source).expanduser()
    try:
        size = path.stat().st_size
        if size > options.max_source_bytes:
            raise ParseError(source, f"the file is {size:,} bytes, over the {options.max_source_bytes:,}-byte cap per "
                                     "source (max_source_bytes): split it, or raise MMRAG_MAX_SOURCE_BYTES")
        data = path.read_bytes()
    except OSError as e:
        raise ParseError(source, f"cannot read the file ({e.strerror or e})") from e
    return _check_suffix(Blob(data=data, source=source, mime_type=sniff_mime(data, name=path.name),
                              base=str(path.resolve().parent)), path.name)


def parser_for(blob: Blob, options: ParseOptions | None = None) -> Parser:
    """The parser for a blob's MIME type; raises :class:`ParseError` for unsupported types."""
    options = options or ParseOptions()
    mime = blob.mime_type
    if mime == "application/pdf":
        from mmrag.parsers.pdf import PdfParser

        return PdfParser(options)
    if mime in ("text/html", "application/xhtml+xml"):
        from mmrag.parsers.html import HtmlParser

        return HtmlParser(options)
    if mime in IMAGE_TYPES:
        from mmrag.parsers.images import ImageParser

        return ImageParser(options)
    if mime.startswith(("video/", "audio/")):
        from mmrag.parsers.video import VideoParser

        return VideoParser(options)
    if mime == DOCX:
        from mmrag.parsers.office_docx import DocxParser

        return DocxParser(options)
    if mime == PPTX:
        from mmrag.parsers.office_pptx import PptxParser

        return PptxParser(options)
    if mime == XLSX:
        from mmrag.parsers.office_xlsx import XlsxParser

        return XlsxParser(options)
    if mime == "text/markdown":
        from mmrag.parsers.markdown import MarkdownParser

        return MarkdownParser(options)
    if mime in TEXT_TABLE_TYPES:
        from mmrag.parsers.delimited import DelimitedParser

        return DelimitedParser(options)
    if not blob.data:
        raise ParseError(blob.source, "the file is empty (0 bytes)")
    if mime == CFB_MIME:
        raise ParseError(blob.source, cfb_reason(blob.data))
    raise ParseError(
        blob.source,
        f"unsupported content type {mime!r}: mmrag parses PDF, HTML, Word, PowerPoint, Excel, Markdown, CSV/TSV "
        "and images (png, jpeg, gif, webp, bmp, tiff); with mmrag[video], video and audio (mp4, mov, webm, mkv, wav, "
        "mp3, m4a)",
    )


def parse_blob(blob: Blob, options: ParseOptions | None = None) -> Iterator[Element]:
    """Parse one blob with the parser its content type calls for."""
    if not blob.data:
        raise ParseError(blob.source, "the file is empty (0 bytes)")
    return parser_for(blob, options).parse(blob)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What came of one source: its elements, or the error that stopped it, plus any warnings."""

    source: str
    elements: tuple[Element, ...] = ()
    error: str | None = None
    warnings: tuple[str, ...] = field(default=())
    mime_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_source(source: str, options: ParseOptions | None = None) -> SourceResult:
    """Fetch and parse one source; never raises for bad input (the error is in the result)."""
    options = options or ParseOptions()
    mime = None
    name = display_source(source)
    with collect_warnings() as warnings:
        try:
            blob = load_blob(source, options)
            mime = blob.mime_type
            elements = tuple(parse_blob(blob, options))
        except MmragError as e:
            reason = e.reason if isinstance(e, ParseError) else str(e)
            logger.error("%s: %s", name, reason)
            return SourceResult(name, error=reason, warnings=tuple(warnings), mime_type=mime)
        except Exception as e:  # a parser bug must fail its source, not the whole run
            logger.exception("%s: unexpected error while parsing", name)
            return SourceResult(name, error=f"unexpected error: {type(e).__name__}: {e}",
                                warnings=tuple(warnings), mime_type=mime)
    return SourceResult(name, elements=elements, warnings=tuple(warnings), mime_type=mime)


def parse_sources(
    sources: Iterable[str | os.PathLike[str]], options: ParseOptions | None = None
) -> Iterator[SourceResult]:
    """Expand ``sources`` and parse each in turn; one bad source never stops the others."""
    for source in expand_sources(sources):
        yield parse_source(source, options)
