"""Where an element sits, in words and links for people: :func:`breadcrumb` (``report.pdf › page 3``),
:func:`location_of` in the format's own terms, :func:`source_link` (``#page=3``, ``#t=751``), :func:`caption_of`.

Plain functions of an :class:`~mmrag.elements.Element`, shared by the answer types (:mod:`mmrag.answers`) and the
HTML renderer (:mod:`mmrag.render`) so that neither imports the other for them.
"""

from __future__ import annotations

from pathlib import Path

from mmrag.elements import Element

__all__ = ["PLACE_KINDS", "breadcrumb", "caption_of", "clock_span", "location_kind_of", "location_of", "media_time",
           "source_link"]


def caption_of(element: Element) -> str:
    """What describes an element in one line: its caption or summary, the image's alt text, else its text."""
    meta = element.metadata
    for key in ("caption", "summary", "alt"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return element.text.strip()


def media_time(element: Element) -> tuple[float, float] | None:
    """``(start, end)`` seconds of an element from a video or audio file (its metadata), else None."""
    start, end = element.metadata.get("start"), element.metadata.get("end")
    if isinstance(start, int | float) and not isinstance(start, bool):
        return float(start), float(end) if isinstance(end, int | float) and not isinstance(end, bool) else float(start)
    return None


def clock_span(start: float, end: float | None = None) -> str:
    """``12:31–12:47`` (``1:02:03`` past an hour): a time range as people read it, to the second."""

    def clock(seconds: float) -> str:
        s = int(seconds)
        h, m, s = s // 3600, s // 60 % 60, s % 60
        return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

    return clock(start) if end is None or int(end) == int(start) else f"{clock(start)}–{clock(end)}"


PLACE_KINDS = ("slide", "sheet", "rows")
"""Location kinds whose ``metadata["location"]`` names the place (``slide 3``, ``Sales!A1:D40``, ``rows 2-81``);
the ``heading`` kind's place is its heading path, and a PDF's is its page."""


def location_of(element: Element) -> str:
    """Where in its source an element sits, in the terms of its format: ``page 3`` (PDF), ``slide 3`` (PowerPoint),
    ``Sales!A1:D40`` (Excel), ``rows 2-81`` (CSV), ``12:31–12:47`` (video and audio), ``Intro › Setup`` (the heading
    path of Word, Markdown and HTML); "" when nothing narrower than the source is known."""
    location = element.metadata.get("location")
    if isinstance(location, str) and location and element.metadata.get("location_kind") in PLACE_KINDS:
        return location
    span = media_time(element)
    if span is not None:
        return clock_span(*span)
    if element.page:
        return f"page {element.page}"
    if isinstance(location, str) and location:
        return location
    headings = element.metadata.get("headings")
    if isinstance(headings, list) and headings:
        return " › ".join(str(h).strip() for h in headings if str(h).strip())
    section = element.metadata.get("section")
    return " › ".join(p.strip() for p in section.split(" > ") if p.strip()) if isinstance(section, str) else ""


def breadcrumb(element: Element, sep: str = " › ") -> str:
    """Where an element sits, for people: ``intro.html › Regular expressions`` or ``report.pdf › page 3``.

    The file name (or the URL's last path segment), then the section path the parser recorded (HTML, Word,
    Markdown), then the place in the format's terms: ``page 3``, ``slide 3``, ``Sales!A1:D40``, ``rows 2-81``; for
    video and audio the time: ``talk.mp4 @ 12:31–12:47``.
    """
    source = element.source.rstrip("/")
    name = source.rsplit("/", 1)[-1] or source
    span = media_time(element)
    parts = [f"{name} @ {clock_span(*span)}" if span else name]
    headings = element.metadata.get("headings")
    section = element.metadata.get("section")
    if isinstance(headings, list) and headings:  # the parser's list: a heading may itself hold " > "
        parts.extend(str(h).strip() for h in headings if str(h).strip())
    elif isinstance(section, str) and section.strip():
        parts.extend(p.strip() for p in section.split(" > ") if p.strip())
    location = element.metadata.get("location")
    if isinstance(location, str) and location and element.metadata.get("location_kind") in PLACE_KINDS:
        parts.append(location)
    elif element.page:
        parts.append(f"page {element.page}")
    return sep.join(parts)


def location_kind_of(element: Element) -> str:
    """The kind of :func:`location_of`: ``page``, ``slide``, ``sheet``, ``rows``, ``time`` (video and audio: the
    place is ``12:31–12:47``) or ``heading``; "" if none."""
    kind = element.metadata.get("location_kind")
    if isinstance(kind, str) and kind:
        return kind
    if media_time(element) is not None:
        return "time"
    if element.page:
        return "page"
    return "heading" if element.metadata.get("headings") or element.metadata.get("section") else ""


def source_link(element: Element) -> str | None:
    """A link to the element's place in its source: ``#page=N`` for PDFs, ``#t=SECONDS`` for video and audio (a
    media fragment: players open there), ``#<section id>`` for HTML sections whose heading has an id
    (``metadata["anchor"]``); None for a relative path (no base to resolve it against)."""
    source = element.source
    if source.startswith(("http://", "https://")):
        base = source.split("#", 1)[0]
    elif source.startswith("file://"):
        base = source
    elif Path(source).is_absolute():
        base = Path(source).as_uri()
    else:
        return None
    anchor = element.metadata.get("anchor")
    if element.page and element.metadata.get("location_kind") in (None, "page"):
        return f"{base}#page={element.page}"
    span = media_time(element)
    if span is not None:
        return f"{base}#t={int(span[0])}"
    if isinstance(anchor, str) and anchor:
        from urllib.parse import quote

        return f"{base}#{quote(anchor, safe='-._~')}"
    return base
