"""Rendering for people: search galleries, visual answers and notebook display, all from one set of templates.

- :func:`gallery_html`: one self-contained page of search hits (thumbnails embedded as downscaled ``data:``
  URIs, captions, source and page, score, a link to the full object with a presigned link's validity).
- :func:`answer_html`: an answer with its numbered citations and, per cited element, its evidence: the image,
  the PDF region with the element's bbox highlighted, the table as a table, or the quoted passage.
- :func:`hits_html` and :class:`HitList`: the same cards as a fragment; ``Hit``, ``Answer`` and ``HitList`` use
  them for ``_repr_html_``, so a notebook shows results with their pictures just by evaluating them.
- :func:`write_html`: write a page to a file and return its ``file://`` URI.

The functions take any object shaped like :class:`mmrag.answers.Hit` or :class:`~mmrag.answers.Answer`
(:class:`HitShape`, :class:`AnswerShape`): this module never imports :mod:`mmrag.answers`, whose types draw
themselves through it.

Document-derived strings are always escaped; pages run no JavaScript (their CSP forbids it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmrag.render._html import STYLE, answer_body, answer_page, gallery_page, hit_cards
from mmrag.render._media import Loader
from mmrag.render._shapes import AnswerShape, HitShape

if TYPE_CHECKING:
    from mmrag.stores.collection import ObjectStore

__all__ = ["AnswerShape", "HitList", "HitShape", "Loader", "answer_html", "gallery_html", "hits_html", "write_html"]


def _loader(objects: ObjectStore | None, fetch_links: bool) -> Loader:
    return Loader(objects, fetch_links=fetch_links)


def gallery_html(hits: Sequence[HitShape], *, objects: ObjectStore | None = None, query: str = "",
                 collection: str = "", fetch_links: bool = False, query_image: bytes | None = None) -> str:
    """A self-contained HTML page of search hits.

    Args:
        hits: the hits, best first (``object_uri`` resolved, see :func:`mmrag.retrievers.search.with_links`).
        objects: the collection's object store, to read the pictures from; else they are read from ``file://``
            links (and, with ``fetch_links``, from presigned ``http(s)`` links).
        query: what was searched, for the title.
        collection: the collection's name, for the subtitle.
        fetch_links: read pictures from presigned object links when there is no store.
        query_image: the picture searched with (image→image), shown above the results.
    """
    return gallery_page(hits, _loader(objects, fetch_links), query=query, collection=collection,
                        query_image=query_image)


def answer_html(answer: AnswerShape, *, objects: ObjectStore | None = None, standalone: bool = True,
                fetch_links: bool = False) -> str:
    """The visual answer: a whole page, or (``standalone=False``) a fragment for a notebook."""
    loader = _loader(objects, fetch_links)
    if standalone:
        return answer_page(answer, loader)
    return f'<div class="mmrag"><style>{STYLE}</style>{answer_body(answer, loader)}</div>'


def hits_html(hits: Iterable[HitShape], *, objects: ObjectStore | None = None, fetch_links: bool = False) -> str:
    """The hits as a gallery fragment (no ``<html>`` around it), for notebooks and embedding."""
    cards = hit_cards(list(hits), _loader(objects, fetch_links))
    return f'<div class="mmrag"><style>{STYLE}</style>{cards}</div>'


class HitList(list[HitShape]):
    """A list of hits that Jupyter shows as a gallery: ``HitList(search_images(settings, text="chart"))``."""

    def _repr_html_(self) -> str:
        return hits_html(self, fetch_links=True)


def write_html(path: str | Path, page: str) -> str:
    """Write ``page`` to ``path`` (UTF-8, folders created) and return the file's ``file://`` URI."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target.as_uri()
