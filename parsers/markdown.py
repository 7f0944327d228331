"""Markdown files (.md) with markdown-it-py (CommonMark plus GFM tables), which rich already brings along.

In document order, section by section (the text under one heading):

* ``text``: paragraphs, list items (``- item``) and block quotes, split with
  :func:`~mmrag.parsers.chunking.split_spans`, each chunk starting with its heading path; metadata like HTML's
  (``section``, ``headings``, ``heading``) plus ``location`` (the path joined with `` › ``) and
  ``location_kind="heading"``.
* code blocks (fenced or indented) are kept whole: one ``text`` element each, never cut, with
  ``metadata["code"] = True`` and the fence's ``language``.
* ``table``: each GFM table as Markdown + CSV, with the paragraph above it as context.
* ``image``: local images (relative to the file's folder, or ``file:``/``data:`` URLs) resolved like HTML's,
  with the alt text and paragraph as context; remote images are not fetched (their alt text stays in the text).

A YAML front matter block (``---`` ... ``---``) is dropped; its ``title:`` becomes the document's title.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mmrag.elements import Blob, Element
from mmrag.parsers._tables import table_element
from mmrag.parsers.chunking import split_spans
from mmrag.parsers.delimited import decode_text
from mmrag.parsers.images import image_element
from mmrag.parsers.options import ParseOptions

__all__ = ["MarkdownParser"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _inline(token: Any) -> tuple[str, list[tuple[str, str]]]:
    """Plain text of an inline token (links as their text, images as their alt) and its images (src, alt)."""
    parts: list[str] = []
    images: list[tuple[str, str]] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            alt = "".join(c.content for c in child.children or []) or child.content
            images.append((str(child.attrs.get("src", "")), alt))
            parts.append(alt)
        elif child.type == "html_inline":
            continue
    return "".join(parts).strip(), images


class MarkdownParser:
    """Parses Markdown into heading-scoped text chunks, whole code blocks, tables and images."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, blob: Blob) -> Iterator[Element]:
        from markdown_it import MarkdownIt

        text, _ = decode_text(blob)
        title = ""
        front = _FRONT_MATTER.match(text)
        if front:
            found = re.search(r"^title:\s*['\"]?(.+?)['\"]?\s*$", front.group(1), re.MULTILINE)
            title = found.group(1) if found else ""
            text = text[front.end():]
        tokens = MarkdownIt("commonmark").enable("table").parse(text)
        return _Walk(blob, self.options, title).run(tokens)


class _Walk:
    def __init__(self, blob: Blob, options: ParseOptions, title: str) -> None:
        self.blob, self.source, self.options, self.title = blob, blob.source, options, title
        self.path: list[tuple[int, str]] = []
        self.blocks: list[str] = []
        self.pending: list[Element] = []
        self.last = ""
        self.loader: Any = None

    def run(self, tokens: list[Any]) -> Iterator[Element]:
        i = 0
        lists = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.type == "heading_open":
                yield from self._flush()
                level = int(tok.tag[1:])
                text, _ = _inline(tokens[i + 1])
                self.path = [p for p in self.path if p[0] < level] + [(level, " ".join(text.split()))]
                i += 3
                continue
            if tok.type in ("bullet_list_open", "ordered_list_open"):
                lists += 1
            elif tok.type in ("bullet_list_close", "ordered_list_close"):
                lists -= 1
            elif tok.type == "inline":
                text, images = _inline(tok)
                if text:
                    self.blocks.append(f"{'  ' * (lists - 1)}- {text}" if lists else text)
                    self.last = text
                for src, alt in images:
                    self._image(src, alt, text)
            elif tok.type in ("fence", "code_block"):
                yield from self._code(tok)
            elif tok.type == "html_block":
                text = " ".join(_TAGS.sub(" ", tok.content).split())
                if text:
                    self.blocks.append(text)
            elif tok.type == "table_open":
                i = self._table(tokens, i)
                continue
            i += 1
        yield from self._flush()
        if self.loader is not None:
            self.loader.close()

    def _meta(self) -> dict[str, Any]:
        headings = [h for _, h in self.path]
        meta: dict[str, Any] = {"section": " > ".join(headings), "headings": headings,
                                "heading": headings[-1] if headings else "", "location_kind": "heading",
                                "location": " › ".join(headings)}
        if self.title:
            meta["title"] = self.title
        return meta

    def _prefix(self) -> str:
        prefix = " > ".join(h for _, h in self.path) or self.title
        limit = self.options.chunk_size // 2
        return prefix if len(prefix) <= limit else prefix[: limit - 1].rstrip() + "…"

    def _flush(self) -> Iterator[Element]:
        if self.blocks:
            body = "\n\n".join(self.blocks)
            prefix = self._prefix()
            budget = self.options.chunk_size - (len(prefix) + 2 if prefix else 0)
            meta = self._meta()
            for start, end in split_spans(body, budget, min(self.options.chunk_overlap, budget - 1)):
                chunk = body[start:end]
                yield Element(kind="text", source=self.source, text=f"{prefix}\n\n{chunk}" if prefix else chunk,
                              mime_type="text/plain", metadata=meta)
        self.blocks = []
        yield from self.pending
        self.pending = []

    def _code(self, tok: Any) -> Iterator[Element]:
        code = tok.content.rstrip("\n")
        if not code.strip():
            return
        yield from self._flush()  # the prose before the code block comes first, in order
        language = (tok.info or "").strip().split(" ")[0]
        prefix = self._prefix()
        fence = "```"
        while fence in code:
            fence += "`"
        text = f"{fence}{language}\n{code}\n{fence}"
        meta = {**self._meta(), "code": True, **({"language": language} if language else {})}
        yield Element(kind="text", source=self.source, text=f"{prefix}\n\n{text}" if prefix else text,
                      mime_type="text/plain", metadata=meta)

    def _table(self, tokens: list[Any], i: int) -> int:
        rows: list[list[str]] = []
        while i < len(tokens) and tokens[i].type != "table_close":
            tok = tokens[i]
            if tok.type == "tr_open":
                rows.append([])
            elif tok.type == "inline" and rows:
                rows[-1].append(" ".join(_inline(tok)[0].split()))
            i += 1
        if rows:
            width = max(len(r) for r in rows)
            rows = [r + [""] * (width - len(r)) for r in rows]
            meta = self._meta()
            context = "\n".join(c for c in dict.fromkeys([self._prefix(), self.last]) if c)
            self.pending.append(table_element(self.source, rows[0], rows[1:], context=context, metadata=meta,
                                              location=meta["location"]))
        return i + 1

    def _image(self, src: str, alt: str, paragraph: str) -> None:
        from urllib.parse import urlsplit

        from mmrag.parsers._html_images import ImageLoader

        if not src or urlsplit(src).scheme.lower() in ("http", "https"):
            return
        if self.loader is None:
            self.loader = ImageLoader(self.source, self.blob.base, None, self.options)
        resolved = self.loader.resolve(src)
        if resolved is None or urlsplit(resolved).scheme.lower() not in ("file", "data"):
            return
        data = self.loader.load(resolved)
        if data is None:
            return
        context = "\n".join(t for t in dict.fromkeys([alt, paragraph, self._prefix()]) if t)
        meta = {**self._meta(), "src": self.loader.label(resolved), **({"alt": alt} if alt else {})}
        element = image_element(data, self.source, self.options, text=context, metadata=meta, label=src)
        if element is not None:
            self.pending.append(element)
