"""Parsers: sources (paths, folders, globs, URLs) → blobs → elements.

Imported as ``mmrag.parsers``. Heavy libraries (PyMuPDF, BeautifulSoup, httpx, Pillow) load on first use.
"""

from mmrag.parsers.options import ParseOptions
from mmrag.parsers.sources import (
    SourceResult,
    expand_sources,
    is_url,
    load_blob,
    parse_blob,
    parse_source,
    parse_sources,
    parser_for,
)

__all__ = [
    "ParseOptions",
    "SourceResult",
    "expand_sources",
    "is_url",
    "load_blob",
    "parse_blob",
    "parse_source",
    "parse_sources",
    "parser_for",
]
