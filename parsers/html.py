"""HTML parsing with BeautifulSoup: heading-aware text chunks, data tables and images.

What comes out of one page, in document order section by section:

* ``text``: the section's paragraphs, lists, definition lists and ``<pre>`` code (line breaks kept), split
  with :func:`~mmrag.parsers.chunking.split_spans`; each chunk starts with its heading path so it stands on
  its own. Metadata (the "section keys"): ``section`` ("H1 > H2 > H3"), ``headings`` (the same breadcrumb as a
  list, h1 first: ``["Apache mod_rewrite Introduction", "Regular Expressions"]``), ``heading`` (the innermost
  one), ``title`` (the page's) and, when the page gives one, ``anchor``: the id of the innermost section on the
  path that has one, for a ``#fragment`` link (see :func:`~mmrag.parsers._html_region.heading_anchor`).
* ``table``: one per data table (layout tables are read as text): context (caption, heading path, the
  sentence before it) plus a markdown table. Metadata: ``csv``, ``rows``, ``columns``, ``header`` and the
  section keys. Table text is not repeated in text chunks.
* ``image``: one per distinct image (``<img>``, ``srcset``, ``<picture>``, ``data:`` URIs), through
  :func:`~mmrag.parsers.images.image_element`; text is the alt text, title, caption and nearby text.
  Metadata: ``src``, ``alt`` and the section keys, plus the image's own ``width``/``height``/``format``.

The main region is ``<main>``, else ``[role=main]``, else a single ``<article>``, else ``<body>`` without
navigation, headers, footers and sidebars.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._html_images import ImageLoader, best_src
from mmrag.parsers._html_region import (
    HEADINGS,
    class_tokens,
    heading_anchor,
    is_boilerplate,
    is_hidden,
    main_region,
)
from mmrag.parsers._html_tables import BLOCK_TAGS, is_layout_table, table_csv, table_grid, table_markdown, text_of
from mmrag.parsers.chunking import split_spans
from mmrag.parsers.images import image_element
from mmrag.parsers.options import ParseOptions

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

    from mmrag.parsers.fetch import Fetcher

__all__ = ["HtmlParser"]

logger = logging.getLogger(__name__)

_DROP = frozenset({
    "script", "style", "noscript", "template", "svg", "head", "iframe", "object", "embed", "canvas", "select",
    "button", "input", "textarea", "map", "audio", "video",
})
# Headings inside these containers end with them ("Note", "Example" boxes must not swallow what follows).
_SCOPED_TAGS = frozenset({"section", "article", "aside", "blockquote"})
_SCOPED_CLASSES = frozenset({"note", "warning", "example", "admonition", "tip", "important", "caution", "sidebar"})
_TIGHT = frozenset({"li", "dt", "dd", "tr", "td", "th"})
_PERMALINK = frozenset({"¶", "#", "§", "🔗"})
_WS = re.compile(r"\s+")
_NEARBY_CHARS = 300


def _soup(data: bytes) -> BeautifulSoup:
    import warnings

    from bs4 import BeautifulSoup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about markup that looks like a URL or a file name
        try:
            return BeautifulSoup(data, "lxml")
        except Exception:  # lxml missing or choking on the bytes: the pure-Python parser is slower but tolerant
            logger.debug("lxml could not parse the page; falling back to html.parser", exc_info=True)
            return BeautifulSoup(data, "html.parser")


def _clip_left(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text``, starting at a sentence (else word) boundary."""
    text = text.strip()
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    sentence = re.search(r"[.!?]\s+(?=\S)", tail[: limit // 2])
    if sentence:
        return tail[sentence.end() :]
    cut = tail.find(" ")
    return tail[cut + 1 :] if 0 <= cut < limit // 2 else tail


def _last_sentence(text: str) -> str:
    pieces = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    return _clip_left(pieces[-1], _NEARBY_CHARS) if pieces else ""


class HtmlParser:
    """Parses HTML pages into text chunks, tables and images.

    Args:
        options: chunking and image limits; fetch settings for remote images.
        fetcher: fetches remote images; when None, one is made for each page that needs it.
    """

    def __init__(self, options: ParseOptions | None = None, fetcher: Fetcher | None = None) -> None:
        self.options = options or ParseOptions()
        self.fetcher = fetcher

    def parse(self, blob: Blob) -> Iterator[Element]:
        """Elements of one page; raises :class:`ParseError` at once for an empty file."""
        if not blob.data.strip():
            raise ParseError(blob.source, "the file is empty (no HTML in it)")
        return self._elements(blob)

    def _elements(self, blob: Blob) -> Iterator[Element]:
        soup = _soup(blob.data)
        base_tag = soup.find("base", href=True)
        base_href = str(base_tag["href"]) if base_tag is not None and not isinstance(base_tag, str) else None
        title_tag = soup.find("title")
        title = _WS.sub(" ", title_tag.get_text()).strip() if title_tag is not None else ""
        root, explicit = main_region(soup)
        loader = ImageLoader(blob.source, blob.base, base_href, self.options, self.fetcher)
        try:
            yield from _Walker(blob.source, title, self.options, loader, strip_boilerplate=not explicit).run(root)
        finally:
            loader.close()


class _Walker:
    """One pass over the main region in document order, collecting blocks per section."""

    def __init__(self, source: str, title: str, options: ParseOptions, loader: ImageLoader, *,
                 strip_boilerplate: bool) -> None:
        self.source = source
        self.title = title
        self.options = options
        self.loader = loader
        self.strip_boilerplate = strip_boilerplate
        self.headings: list[tuple[int, str, str]] = []  # (level, text, anchor) from h1 to the innermost
        self.blocks: list[tuple[str, bool]] = []  # (text, tight): tight blocks (list items) join with one newline
        self.inline: list[str] = []
        self.marker = ""  # list bullet waiting for the item's text
        self.open_blocks: list[str] = []
        self.lists: list[list[Any]] = []  # [tag name, item counter] per open list
        self.scopes: dict[int, list[tuple[int, str, str]]] = {}
        self.recent = ""  # text seen lately in this section: context for images and tables
        self.pending: list[Element] = []
        self.out: deque[Element] = deque()
        self.seen: set[str] = set()

    # -- traversal -------------------------------------------------------------------------------------------
    def run(self, root: Tag) -> Iterator[Element]:
        from bs4.element import NavigableString
        from bs4.element import Tag as BsTag

        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                self._leave(node)
            elif isinstance(node, NavigableString):
                if type(node) is NavigableString or type(node).__name__ == "CData":
                    self.inline.append(_WS.sub(" ", str(node)))
            elif isinstance(node, BsTag) and self._enter(node):
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.contents))
            while self.out:
                yield self.out.popleft()
        self._end_section()
        yield from self.out

    def _enter(self, tag: Tag) -> bool:
        """Handle a tag on the way in; True to visit its children."""
        name = tag.name
        if name in _DROP or is_hidden(tag):
            return False
        if self.strip_boilerplate and is_boilerplate(tag):
            return False
        if name in HEADINGS:
            self._heading(tag)
            return False
        if name in ("img", "picture"):
            self._image(tag)
            return False
        if name == "br":
            self.inline.append("\n")
            return False
        if name == "a" and tag.get_text().strip() in _PERMALINK and tag.find(["img", "picture"]) is None:
            return False
        if name == "pre":
            self._flush()
            code = tag.get_text().strip("\n")
            if code.strip():
                self._add_block(code.rstrip(), tight=False)
            return False
        if name == "table" and not is_layout_table(tag):
            self._flush()
            self._table(tag)
            for img in self._images_in(tag):
                self._image(img)
            return False
        if name in BLOCK_TAGS:
            self._flush()
            if name in ("ul", "ol"):
                self.lists.append([name, 0])
            elif name == "li":
                self._start_item()
            self.open_blocks.append(name)
        if name in _SCOPED_TAGS or class_tokens(tag) & _SCOPED_CLASSES:
            self.scopes[id(tag)] = list(self.headings)
        return True

    def _leave(self, tag: Tag) -> None:
        if tag.name in BLOCK_TAGS:
            self._flush()
            self.marker = ""  # an empty list item leaves no bullet behind
            if self.open_blocks:
                self.open_blocks.pop()
            if tag.name in ("ul", "ol") and self.lists:
                self.lists.pop()
        saved = self.scopes.pop(id(tag), None)
        if saved is not None and saved != self.headings:
            self._end_section()
            self.headings = saved

    def _start_item(self) -> None:
        depth = max(len(self.lists), 1)
        if self.lists and self.lists[-1][0] == "ol":
            self.lists[-1][1] += 1
            bullet = f"{self.lists[-1][1]}. "
        else:
            bullet = "- "
        self.marker = "  " * (depth - 1) + bullet

    @staticmethod
    def _images_in(tag: Tag) -> list[Tag]:
        return [t for t in tag.find_all(["img", "picture"])
                if t.name == "picture" or t.find_parent("picture") is None]

    # -- text ------------------------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Turn the inline buffer into a block of the innermost open block element."""
        raw = "".join(self.inline)
        self.inline.clear()
        lines = [_WS.sub(" ", line).strip() for line in raw.split("\n")]
        text = "\n".join(line for line in lines if line)
        if not text:
            return
        tight = bool(self.open_blocks) and self.open_blocks[-1] in _TIGHT
        if self.marker:
            text, self.marker = self.marker + text, ""
        self._add_block(text, tight=tight)

    def _add_block(self, text: str, *, tight: bool) -> None:
        self.blocks.append((text, tight))
        self.recent = _clip_left(self.recent + " " + _WS.sub(" ", text), 2 * _NEARBY_CHARS)

    def _section_meta(self) -> dict[str, Any]:
        path = [h for _, h, _ in self.headings]
        meta: dict[str, Any] = {"section": " > ".join(path), "headings": path, "heading": path[-1] if path else "",
                                "title": self.title}
        # the innermost section with an id, so a citation links as close to its text as the page allows
        anchor = next((a for _, _, a in reversed(self.headings) if a), "")
        if anchor:
            meta["anchor"] = anchor
        return meta

    def _prefix(self) -> str:
        return " > ".join(h for _, h, _ in self.headings) or self.title

    def _heading(self, tag: Tag) -> None:
        text = text_of(tag).rstrip("".join(_PERMALINK) + " ").strip()
        if text:
            self._end_section()
            level = int(tag.name[1])
            while self.headings and self.headings[-1][0] >= level:
                self.headings.pop()
            self.headings.append((level, text, heading_anchor(tag)))
            self.recent = ""
        for img in self._images_in(tag):  # a logo in a heading belongs to that heading's section
            self._image(img)

    def _end_section(self) -> None:
        """Emit the finished section: its text chunks, then its tables and images."""
        self._flush()
        if self.blocks:
            body = self.blocks[0][0]
            for (text, tight), (_, prev_tight) in zip(self.blocks[1:], self.blocks, strict=False):
                body += ("\n" if tight and prev_tight else "\n\n") + text
            self.blocks.clear()
            self._emit_text(body)
        self.out.extend(self.pending)
        self.pending.clear()

    def _emit_text(self, body: str) -> None:
        size, overlap = self.options.chunk_size, self.options.chunk_overlap
        prefix = self._prefix()
        if len(prefix) > size // 2:
            prefix = prefix[: size // 2 - 1].rstrip() + "…"
        budget = size - (len(prefix) + 2 if prefix else 0)  # the whole chunk, prefix included, fits chunk_size
        meta = self._section_meta()
        for start, end in split_spans(body, budget, min(overlap, budget - 1)):
            chunk = body[start:end]
            text = f"{prefix}\n\n{chunk}" if prefix else chunk
            self.out.append(Element(kind="text", source=self.source, text=text, mime_type="text/plain", metadata=meta))

    # -- tables ----------------------------------------------------------------------------------------------
    def _table(self, tag: Tag) -> None:
        header, rows = table_grid(tag)
        if not header and not rows:
            return
        caption_tag = tag.find("caption")
        caption = text_of(caption_tag) if caption_tag is not None else ""
        before = _WS.sub(" ", self.blocks[-1][0]) if self.blocks else ""  # the block right above the table
        context = [caption, self._prefix(), _last_sentence(before)]
        context = [c for c in dict.fromkeys(context) if c]
        text = "\n".join(context) + ("\n\n" if context else "") + table_markdown(header, rows)
        meta: dict[str, Any] = {**self._section_meta(), "csv": table_csv(header, rows), "rows": len(rows),
                                "columns": len(header), "header": header}
        if caption:
            meta["caption"] = caption
        self.pending.append(Element(kind="table", source=self.source, text=text, mime_type="text/markdown",
                                    metadata=meta))

    # -- images ----------------------------------------------------------------------------------------------
    def _image(self, tag: Tag) -> None:
        img = tag.find("img") if tag.name == "picture" else tag
        src = best_src(tag)
        if not src:
            logger.debug("%s: <%s> without a usable src skipped", self.source, tag.name)
            return
        if img is not None and self._declared_tiny(img):
            return
        resolved = self.loader.resolve(src)
        if resolved is None:
            return
        key = self.loader.key(resolved)
        if key in self.seen:
            return
        self.seen.add(key)
        label = self.loader.label(resolved)
        if self.loader.is_svg(resolved):
            logger.debug("%s: SVG image %s skipped (not a raster format)", self.source, label)
            return
        data = self.loader.load(resolved)
        if data is None:
            return
        alt = _WS.sub(" ", str(img.get("alt") or "")).strip() if img is not None else ""
        title = _WS.sub(" ", str(img.get("title") or "")).strip() if img is not None else ""
        context = self._image_context(tag, alt, title)
        meta = {**self._section_meta(), "src": label, "alt": alt}
        element = image_element(data, self.source, self.options, text=context, metadata=meta, label=label)
        if element is not None:
            self.pending.append(element)

    def _declared_tiny(self, img: Tag) -> bool:
        """Both width and height attributes below ``min_image_px``: an icon, not worth loading."""
        try:
            width, height = int(str(img.get("width"))), int(str(img.get("height")))
        except ValueError:
            return False
        limit: int = self.options.min_image_px
        return max(width, height) < limit

    def _image_context(self, tag: Tag, alt: str, title: str) -> str:
        caption = ""
        figure = tag.find_parent("figure")
        if figure is not None and (figcaption := figure.find("figcaption")) is not None:
            caption = text_of(figcaption)
        else:
            # A small enclosing block is usually the figure's caption ("Figure 1: ...").
            for parent in list(tag.parents)[:3]:
                if parent.name in ("body", "main", "article", "section", "html", "[document]", "table"):
                    break
                text = text_of(parent)
                if text:
                    caption = text if len(text) <= _NEARBY_CHARS else ""
                    break
        pending_text = _WS.sub(" ", "".join(self.inline)).strip()
        nearby = _clip_left(self.recent + " " + pending_text, _NEARBY_CHARS)
        parts = [alt, title, caption, self._prefix(), nearby]
        return "\n".join(p for p in dict.fromkeys(parts) if p)
