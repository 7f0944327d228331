"""Which part of an HTML page is content: the main region, and the navigation to leave out without one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

__all__ = ["HEADINGS", "class_tokens", "heading_anchor", "is_boilerplate", "is_hidden", "main_region"]

HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BOILERPLATE_TAGS = frozenset({"nav", "header", "footer", "aside"})
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_PERMALINK_TEXT = frozenset({"¶", "#", "§", "🔗", ""})
_HEADER_TOKENS = frozenset({"header", "page-header", "site-header", "masthead"})
_BOILERPLATE_TOKENS = _HEADER_TOKENS | {
    "footer", "page-footer", "site-footer", "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs",
    "sidebar", "toc", "skip-link", "skiplink", "cookie-banner",
}


def class_tokens(tag: Tag) -> set[str]:
    """The tag's classes and id, lower-cased."""
    classes: Any = tag.get("class") or []
    if isinstance(classes, str):
        classes = classes.split()
    return {str(c).lower() for c in classes} | {str(tag.get("id") or "").lower()}


def is_hidden(tag: Tag) -> bool:
    """Hidden from readers by the ``hidden`` attribute or an inline ``display: none``."""
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return tag.has_attr("hidden") or "display:none" in style


def is_boilerplate(tag: Tag) -> bool:
    """Navigation, page header/footer or sidebar, by tag, ARIA role, or a class/id such as ``navbar``.

    Only used when the page has no explicit main region; old manuals (Apache's ``#page-header``, Texinfo's
    ``div.header`` with Next/Up links) mark their furniture this way.
    """
    role = str(tag.get("role") or "").lower()
    tokens = class_tokens(tag)
    if not (tag.name in _BOILERPLATE_TAGS or role in _BOILERPLATE_ROLES or tokens & _BOILERPLATE_TOKENS):
        return False
    # A page header that holds the page's headings is content (HTML5 pages without <main>).
    is_header = tag.name == "header" or role == "banner" or bool(tokens & _HEADER_TOKENS)
    return not (is_header and tag.find(list(HEADINGS)) is not None)


def main_region(soup: BeautifulSoup) -> tuple[Tag, bool]:
    """The element holding the page's content, and whether it is an explicit main region.

    ``<main>`` (the one with most text), else ``[role=main]``, else a lone ``<article>``, else ``<body>``.
    """
    from bs4.element import Tag as BsTag

    def biggest(tags: list[Any]) -> Tag | None:
        tags = [t for t in tags if isinstance(t, BsTag)]
        return max(tags, key=lambda t: len(t.get_text())) if tags else None

    for found in (soup.find_all("main"), soup.find_all(True, attrs={"role": "main"})):
        main = biggest(found)
        if main is not None:
            return main, True
    articles = soup.find_all("article")
    if len(articles) == 1 and isinstance(articles[0], BsTag):
        return articles[0], True
    body = soup.body
    return (body if isinstance(body, BsTag) else soup), False


def _own_id(tag: Any) -> str:
    return str(tag.get("id") or tag.get("name") or "").strip() if getattr(tag, "name", None) else ""


def heading_anchor(tag: Tag) -> str:
    """The fragment id that links to the section a heading starts, or "" when the page gives none.

    Looked for where documentation generators put it: on the heading (``<h2 id>``, Apache), on an anchor inside
    it (``<a name>``, or a permalink ``<a href="#id">¶</a>``), on an empty marker right before it (Texinfo's
    ``<span id></span><h4>``), or on the enclosing section the heading opens (Sphinx's ``<section id>``).
    """
    from bs4.element import NavigableString

    own = _own_id(tag)
    if own:
        return own
    for a in tag.find_all(True):
        inner = _own_id(a)
        if inner:
            return inner
        href = str(a.get("href") or "")
        if a.name == "a" and href.startswith("#") and len(href) > 1 and a.get_text().strip() in _PERMALINK_TEXT:
            return href[1:]
    prev = tag.previous_sibling
    while isinstance(prev, NavigableString) and not prev.strip():
        prev = prev.previous_sibling
    if prev is not None and not isinstance(prev, NavigableString) and not prev.get_text().strip():
        marker = _own_id(prev)
        if marker:
            return marker
    parent = tag.parent
    if parent is None or parent.name not in ("section", "div", "article"):
        return ""
    for child in parent.contents:  # the section must open with this heading: nothing to read before it
        if child is tag:
            return _own_id(parent)
        if child.get_text().strip():
            return ""
    return ""
