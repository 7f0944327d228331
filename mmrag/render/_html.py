"""HTML for people: a search gallery, a visual answer, and the same cards as notebook fragments.

Plain string templates. Every document- or user-derived string goes through :func:`esc` (``html.escape`` with
quotes) and every link through :func:`href` (http, https and file only), so a file named
``<img src=x onerror=alert(1)>.png`` or a caption holding ``<script>`` is shown as text. Standalone pages also
carry a Content-Security-Policy that allows no script at all. No JavaScript anywhere.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from mmrag._tables import segments
from mmrag.elements import Element
from mmrag.locations import breadcrumb, caption_of, source_link
from mmrag.render._media import (
    EVIDENCE_PX,
    THUMB_PX,
    Loader,
    Picture,
    link_validity,
    page_region,
    table_rows,
    thumbnail,
)
from mmrag.render._shapes import AnswerShape, CitationShape, HitShape

__all__ = ["answer_page", "gallery_page", "href", "esc", "hit_cards"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""No script, no remote fetches: the page shows embedded pictures and styles, nothing else."""

_MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

STYLE = """
.mmrag{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d1d1f;line-height:1.4}
.mmrag h1{font-size:1.4em;margin:.2em 0}.mmrag .meta{color:#666;font-size:.85em}
.mmrag .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:14px;margin-top:12px}
.mmrag .hit{margin:0;border:1px solid #ddd;border-radius:8px;overflow:hidden;background:#fff}
.mmrag .query{margin:8px 0;display:inline-block;border:2px solid #3a6ff7;border-radius:8px;overflow:hidden}
.mmrag .query figcaption{padding:4px 8px;font-size:.85em}
.mmrag .thumb{display:flex;align-items:center;justify-content:center;height:200px;background:#f4f4f6}
.mmrag .thumb img{max-width:100%;max-height:200px;object-fit:contain}
.mmrag .thumb .none{color:#888;font-size:.85em;padding:1em;text-align:center;white-space:pre-wrap}
.mmrag figcaption{padding:8px 10px;font-size:.85em;overflow-wrap:anywhere}
.mmrag .score{font-variant-numeric:tabular-nums;color:#555}.mmrag .kind{background:#eef;border-radius:4px;padding:0 4px}
.mmrag .caption{margin-top:4px;color:#333;max-height:5.6em;overflow:hidden}
.mmrag .also,.mmrag .valid{color:#777;font-size:.9em}
.mmrag .answer{white-space:pre-wrap;font-size:1.05em;border-left:4px solid #3a6ff7;padding:8px 12px;background:#f7f9ff}
.mmrag .cite{border-top:1px solid #e2e2e2;padding:12px 0}.mmrag .cite h2{font-size:1.05em;margin:0 0 6px}
.mmrag .evidence img{max-width:100%;border:1px solid #ccc}
.mmrag blockquote{margin:6px 0;padding:6px 12px;border-left:3px solid #bbb;white-space:pre-wrap;background:#fafafa}
.mmrag table.data{border-collapse:collapse;font-size:.85em;margin:6px 0}
.mmrag table.data td,.mmrag table.data th{border:1px solid #ccc;padding:2px 6px;text-align:left}
.mmrag .badge{display:inline-block;background:#fff3cd;border-radius:4px;padding:0 6px;font-size:.85em}
"""


def esc(text: object) -> str:
    """``text`` safe inside HTML text and quoted attributes."""
    return html.escape(str(text), quote=True)


def href(uri: str | None) -> str | None:
    """``uri`` escaped for an ``href`` if its scheme is http, https or file; None otherwise (``javascript:``)."""
    if not uri:
        return None
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    return esc(uri) if scheme in ("http", "https", "file") else None


def _link(uri: str | None, label: str) -> str:
    target = href(uri)
    return f'<a href="{target}">{esc(label)}</a>' if target else esc(label)


def _img(picture: Picture | None, alt: str, missing: str) -> str:
    if picture is None:
        return f'<div class="none">{esc(missing)}</div>'
    region = ""
    if picture.region is not None:  # which part of the PDF page the picture shows, in points
        region = ' data-pdf-region="' + " ".join(f"{v:.2f}" for v in picture.region) + '"'
    return (f'<img src="{picture.uri}" width="{picture.width}" height="{picture.height}"{region} '
            f'alt="{esc(alt)}">')


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _passage(element: Element) -> str:
    """The chunk's text without the heading path the HTML parser puts in front of it (shown as a breadcrumb)."""
    text = element.text
    section = element.metadata.get("section")
    if isinstance(section, str) and section and text.startswith(section + "\n\n"):
        text = text[len(section) + 2 :]
    return text


def _also(hit: HitShape) -> str:
    if not hit.duplicates:
        return ""
    places = ", ".join(_link(source_link(d), breadcrumb(d)) for d in hit.duplicates)
    return f'<div class="also">also in: {places}</div>'


def _validity(uri: str | None) -> str:
    note = link_validity(uri)
    return f' <span class="valid">({esc(note)})</span>' if note else ""


def _found_by(hit: HitShape) -> str:
    """Which ranked lists found the hit ("found by dense + keywords, 3 lists"), in words a person can use; the raw
    score (an RRF score such as 0.03 means nothing on its own) is left to the tooltip."""
    words = {"dense": "meaning", "bm25": "keywords", "image": "image"}
    kinds = list(dict.fromkeys(name.split(":", 1)[0] for name in hit.lists))
    said = " + ".join(words.get(k, k) for k in kinds) or "retrieval"
    count = f", {len(hit.lists)} lists" if len(hit.lists) > len(kinds) else ""
    return f'<span class="score" title="score {hit.score:.4f}">found by {esc(said)}{count}</span>'


def _card(rank: int, hit: HitShape, loader: Loader) -> str:
    e = hit.element
    picture = None
    if e.kind in ("image", "page"):
        data = loader.read(e, hit.object_uri)
        picture = thumbnail(data, THUMB_PX) if data else None
    elif e.page is not None and e.bbox is not None:
        picture = page_region(e, max_px=THUMB_PX)
    caption = caption_of(e) if e.kind != "text" else _passage(e)
    missing = _short(_passage(e), 300) if e.kind in ("text", "table") else "(no picture)"
    return (
        f'<figure class="hit" id="hit-{rank}"><div class="thumb">{_img(picture, _short(caption, 120), missing)}</div>'
        f'<figcaption><div><b>#{rank}</b> {_found_by(hit)} '
        f'<span class="kind">{esc(e.kind)}</span></div>'
        f'<div class="where">{_link(source_link(e), breadcrumb(e))}</div>'
        f'<div class="caption">{esc(_short(caption, 280))}</div>{_also(hit)}'
        f'<div class="open">{_link(hit.object_uri, "open full object") if hit.object_uri else ""}'
        f"{_validity(hit.object_uri)}</div></figcaption></figure>"
    )


def hit_cards(hits: Sequence[HitShape], loader: Loader) -> str:
    """The gallery grid of ``hits`` (a fragment, for notebooks and pages)."""
    cards = "".join(_card(n, h, loader) for n, h in enumerate(hits, 1))
    return f'<div class="grid">{cards}</div>' if hits else '<p class="meta">no results</p>'


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>body{{margin:24px;background:#fbfbfd}}{STYLE}</style></head>"
        f'<body><main class="mmrag">{body}</main></body></html>\n'
    )


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def gallery_page(hits: Sequence[HitShape], loader: Loader, *, query: str = "", collection: str = "",
                 query_image: bytes | None = None) -> str:
    """A self-contained search results page: the query (its picture for an image search), then thumbnails as data
    URIs, captions, places, which lists found each hit, and links."""
    title = f"mmrag search: {query}" if query else "mmrag search"
    where = f" in collection {esc(collection)}" if collection else ""
    head = (f"<h1>{esc(title)}</h1><p class=\"meta\">{len(hits)} results{where}, {_stamp()}</p>")
    if query_image is not None:
        shown = _img(thumbnail(query_image, THUMB_PX), "the query picture", "(the query picture could not be read)")
        head += (f'<figure class="query"><div class="thumb">{shown}</div>'
                 "<figcaption>the query picture</figcaption></figure>")
    return _page(title, head + hit_cards(hits, loader))


def _answer_text(text: str, known: set[int]) -> str:
    """The answer text as HTML: each quoted Markdown table (an extractive answer quotes table rows so, between its
    sentences and markers) as a table, everything else escaped, with each ``[n]`` linking to its evidence below."""
    out = []
    for part in segments(text):
        if isinstance(part, str):
            out.append(_marked(part, known))
            continue
        head = "<tr>" + "".join(f"<th>{_marked(c, known)}</th>" for c in part.header) + "</tr>" if part.header else ""
        body = "".join("<tr>" + "".join(f"<td>{_marked(c, known)}</td>" for c in row) + "</tr>" for row in part.rows)
        out.append(f'<table class="data quoted"><thead>{head}</thead><tbody>{body}</tbody></table>')
    return "".join(out)


def _marked(text: str, known: set[int]) -> str:
    """The text escaped, with each ``[n]`` linking to its evidence below."""
    def link(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        parts = [f'<a href="#cite-{n}">{n}</a>' if n in known else str(n) for n in numbers]
        return "[" + ", ".join(parts) + "]"

    return _MARKERS.sub(link, esc(text))


def _evidence(citation: CitationShape, element: Element | None, loader: Loader,
              renders: Mapping[tuple[str, int], tuple[bytes, Element]]) -> str:
    if element is None:
        return f"<blockquote>{esc(citation.snippet)}</blockquote>" if citation.snippet else ""
    parts: list[str] = []
    if element.kind in ("image", "page"):
        data = loader.read(element, citation.object_uri)
        picture = thumbnail(data, EVIDENCE_PX) if data else None
        parts.append(_img(picture, _short(caption_of(element), 160), "(the image could not be loaded)"))
        if caption_of(element):
            parts.append(f"<blockquote>{esc(_short(caption_of(element), 600))}</blockquote>")
        return "".join(parts)
    if element.page is not None and element.bbox is not None:
        render = renders.get((element.source, element.page))
        picture = page_region(element, page_render=render)
        if picture is not None:
            parts.append(_img(picture, f"{breadcrumb(element)}, the cited region highlighted", ""))
    rows = None
    if element.kind == "table":  # the CSV is in the metadata until ingest moves it to the object store
        rows = table_rows(element)
        if rows is None and (element.object_key or "").endswith(".csv"):
            data = loader.read(element, citation.object_uri)
            rows = table_rows(element, data.decode("utf-8", "replace")) if data else None
    if rows:
        header, body = rows[0], rows[1:]
        head = "".join(f"<th>{esc(c)}</th>" for c in header)
        lines = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body)
        parts.append(f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>')
    else:
        parts.append(f"<blockquote>{esc(_passage(element))}</blockquote>")
    return "".join(parts)


def answer_body(answer: AnswerShape, loader: Loader) -> str:
    """The answer with linked markers, then each citation with its evidence (a fragment)."""
    by_id = {h.element.id: h.element for h in answer.hits}
    renders = {(h.element.source, h.element.page): h.element for h in answer.hits
               if h.element.kind == "page" and h.element.page is not None}
    page_bytes: dict[tuple[str, int], tuple[bytes, Element]] = {}
    known = {c.marker for c in answer.citations}
    sections = []
    for c in answer.citations:
        element = by_id.get(c.element_id)
        if element is not None and element.page is not None and (element.source, element.page) in renders \
                and (element.source, element.page) not in page_bytes:
            page = renders[(element.source, element.page)]
            data = loader.read(page, None)
            if data:
                page_bytes[(element.source, element.page)] = (data, page)
        where = breadcrumb(element) if element is not None else (c.section or c.source)
        place = source_link(element) if element is not None else c.source_uri
        links = _link(place, where)
        if c.object_uri and c.object_uri != place and c.kind in ("image", "page", "table"):
            links += " · " + _link(c.object_uri, "open object") + _validity(c.object_uri)
        sections.append(
            f'<section class="cite" id="cite-{c.marker}"><h2>[{c.marker}] {links} '
            f'<span class="kind">{esc(c.kind)}</span></h2>'
            f'<div class="evidence">{_evidence(c, element, loader, page_bytes)}</div></section>')
    badge = ('<span class="badge">extractive: quoted from the sources, no model wrote it</span>'
             if answer.mode == "extractive" else "")
    subs = [s for s in answer.sub_questions if s.strip() and s.strip() != answer.question.strip()]
    sub_html = ("<p class=\"meta\">sub-questions: " + "; ".join(esc(s) for s in subs) + "</p>") if subs else ""
    evidence = "".join(sections) or '<p class="meta">no citations</p>'
    return (f"<h1>{esc(answer.question)}</h1>{sub_html}{badge}"
            f'<div class="answer">{_answer_text(answer.text, known)}</div>{evidence}')


def answer_page(answer: AnswerShape, loader: Loader) -> str:
    """A self-contained page: the answer, its numbered citations, and each cited element's evidence."""
    return _page(f"mmrag: {answer.question}", answer_body(answer, loader)
                 + f'<p class="meta">{_stamp()}</p>')
