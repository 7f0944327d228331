"""Continuations: a hit that stops in the middle of a sentence brings the chunk that finishes it.

Chunks end where the splitter (or the page) ends them, and sometimes that is just before what a reader wants: "it
can be loaded and a suitable subset chosen by" ends a PDF page, and the code that loads the data set starts the
next one; "you could use:", "as follows:" and "Example:" end chunks whose next chunk holds the example. Such a
hit answers the question only together with its continuation, so :func:`with_continuations` puts the chunk that
continues it right after it (moving it up if it is further down, adding it if it is not there).

A text is unfinished (:func:`is_unfinished`) when it ends with a colon or with a word that cannot end a sentence
(an article, a preposition, a conjunction: "by", "of", "the", "and"...). Its continuation is the text chunk of the
same source, on the same or the next page, that starts by repeating the unfinished sentence (the text's end) and
goes on: consecutive chunks overlap (the splitter's overlap, or the sentence carried over from the previous page,
kept in the next chunk's ``context`` metadata and indexed with it). It is found with one keyword search for that
sentence, restricted to the source. On the bundled sample 20 of 285 text chunks end unfinished; with coverage
(:mod:`mmrag.retrievers.coverage`) this puts the ``data("USIncExp")`` chunk of "Which data set does the strucchange
introduction load, and which figure shows its OLS-based CUSUM process?" third (it was outside the top 10).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mmrag.answers import CONTINUATION_LIST, Hit

if TYPE_CHECKING:
    from mmrag.stores.base import Filter, VectorIndex

__all__ = ["CONTINUED_LIST", "LEAD_CHARS", "TAIL_CHARS", "continuation_of", "is_unfinished", "with_continuations"]

CONTINUED_LIST = CONTINUATION_LIST
"""The name in :attr:`Hit.lists` of a hit added (or moved up) because it continues the hit before it."""

TAIL_CHARS = 120
"""Most characters of an unfinished text's last sentence looked for in its continuation."""

LEAD_CHARS = 400
"""How far into a chunk's indexed text (after its source name and headings) the repeated sentence may start: the
overlap of consecutive chunks is at their start, while the same sentence quoted later elsewhere is no
continuation."""


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_OPEN_WORDS = _wordset(
    "a an the of to by in on at for from with into onto upon about via per as than and or nor but that which whose "
    "its their our your his her this these those is are was were be been can could will would shall should may "
    "might must"
)


def _next_page(page: int | None, other: int | None) -> bool:
    return page is None or other is None or other in (page, page + 1)


_CONTEXT_KEY = "context"  # mmrag.parsers._pdf_text.CONTEXT_KEY; not imported, that module loads PyMuPDF
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_LAST_WORD = re.compile(r"([A-Za-z]+)\W*$")


def _flat(text: str) -> str:
    return " ".join(text.split())


def is_unfinished(text: str) -> bool:
    """Whether ``text`` stops mid-sentence: it ends with ``:``, or its last word is one no sentence ends with.

    >>> is_unfinished("it can be loaded and a suitable subset chosen\\nby")
    True
    >>> is_unfinished("The data set contains monthly series.")
    False
    >>> is_unfinished("To match a cookie you could use:")
    True
    """
    stripped = text.rstrip()
    if not stripped:
        return False
    if stripped.endswith(":"):
        return True
    last = _LAST_WORD.search(stripped)
    return bool(last and last.end(1) == len(stripped) and last.group(1) in _OPEN_WORDS)


def continuation_of(hit: Hit, text_index: VectorIndex, *, filter: Filter | None = None) -> Hit | None:
    """The text chunk of ``hit``'s source that continues it (score 0.0, list :data:`CONTINUED_LIST`), or None
    (not unfinished, or no chunk repeats its end followed by more text). ``text_index`` is the collection's text
    :class:`~mmrag.stores.base.VectorIndex`; ``filter`` is the search's metadata filter, which the continuation
    must pass too (a question restricted to page 1 is not answered from page 2)."""
    element = hit.element
    if element.kind != "text" or not is_unfinished(element.text):
        return None
    flat_text = _flat(element.text)
    tail = _SENTENCE_END.split(flat_text)[-1]  # the unfinished sentence: what the next chunk repeats
    if len(tail) > TAIL_CHARS:
        tail = tail[-TAIL_CHARS:].split(" ", 1)[-1]  # whole words
    if len(tail.split()) < 3:
        return None
    found = text_index.keyword_search(tail, k=5, filter={**(filter or {}), "source": element.source, "kind": "text"})
    best: tuple[int, Hit] | None = None
    for record in found:
        other = record.element
        if other.id == element.id:
            continue
        context = other.metadata.get(_CONTEXT_KEY)
        flat = _flat(record.text or (f"{context} {other.text}" if isinstance(context, str) else other.text))
        at = flat.find(tail)
        if at < 0 or at > LEAD_CHARS or at + len(tail) >= len(flat) or not _next_page(element.page, other.page):
            continue
        if best is None or at < best[0]:
            best = (at, Hit(other, 0.0, (CONTINUED_LIST,)))
    return best[1] if best else None


def with_continuations(hits: Sequence[Hit], text_index: VectorIndex, *, limit: int | None = None,
                       filter: Filter | None = None) -> list[Hit]:
    """``hits`` with the continuation of every unfinished text hit right after it (see the module docstring).

    A continuation already among ``hits`` moves up to just after the hit it continues (keeping its own score and
    lists, plus :data:`CONTINUED_LIST`); one that is not is added with score 0.0 (no list found it: its place,
    not a score, puts it there; a copied score would also make it tie with the hit it continues). Only the
    hits of the input are continued (a continuation's own continuation is not added). ``limit`` cuts the result;
    ``filter`` is the search's metadata filter (a continuation outside it is not added).
    """
    by_id = {hit.element.id: hit for hit in hits}
    placed: set[str] = set()
    out: list[Hit] = []
    for hit in hits:
        if hit.element.id in placed:
            continue
        out.append(hit)
        placed.add(hit.element.id)
        if limit is not None and len(out) >= limit:
            break
        nxt = continuation_of(hit, text_index, filter=filter)
        if nxt is None or nxt.element.id in placed:
            continue
        present = by_id.get(nxt.element.id)
        if present is not None:
            nxt = Hit(present.element, present.score, (*present.lists, CONTINUED_LIST), present.object_uri,
                      present.duplicates)
        out.append(nxt)
        placed.add(nxt.element.id)
    return out if limit is None else out[:limit]
