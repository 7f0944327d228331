"""Reciprocal rank fusion (RRF): many ranked lists in, one ranking out, keyed on element ids.

The query chain retrieves one ranked list per (retriever, sub-question) pair, e.g. ``dense:q1``, ``bm25:q1`` and
``image:q2``, and fuses all of them here. RRF only looks at ranks, so lists whose scores live on different scales
(cosine similarities, BM25 scores) fuse without any normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from mmrag.answers import Hit
from mmrag.elements import Element

__all__ = ["RRF_K", "Ranked", "reciprocal_rank_fusion"]

RRF_K = 60
"""The RRF constant of Cormack, Clarke and Büttcher (SIGIR 2009), used with 1-based ranks."""


class Ranked(Protocol):
    """Anything that carries an element: :class:`~mmrag.stores.base.ScoredRecord`, :class:`~mmrag.answers.Hit`."""

    @property
    def element(self) -> Element: ...


def reciprocal_rank_fusion(
    lists: Mapping[str, Sequence[Ranked]], k: int = RRF_K, *, limit: int | None = None
) -> list[Hit]:
    """Fuse ranked lists by reciprocal rank: ``score(d) = sum over the lists that hold d of 1 / (k + rank_d)``.

    Ranks are 1-based (the best item of a list has rank 1), so with the default ``k = 60`` (Cormack, Clarke and
    Büttcher, "Reciprocal rank fusion outperforms Condorcet and individual rank learning methods", SIGIR 2009) a
    list's top item adds ``1/61``. A larger ``k`` flattens the difference between top and lower ranks.

    Items are identified by ``element.id`` (a content hash), so the same element found by several lists, several
    sub-questions or several spaces is one result. An id that occurs more than once in the same list counts once,
    at its best (first) rank. The input scores, and the ``lists`` of input :class:`Hit` objects, are ignored:
    only positions and the names in ``lists`` matter. Nothing is mutated.

    Args:
        lists: ranked lists by name, each best first. The names end up in :attr:`Hit.lists`.
        k: the RRF constant; must be positive.
        limit: keep at most this many hits (None: all of them).

    Returns:
        One :class:`Hit` per distinct element id, best first. ``Hit.lists`` names the lists that found it, in the
        order of ``lists``; ``Hit.element`` is the element as first met. Equal scores keep first-seen order
        (``lists`` in their order, each list from its top).

    Raises:
        ValueError: ``k`` is not positive or ``limit`` is negative.
    """
    if isinstance(k, bool) or k <= 0:
        raise ValueError(f"k must be a positive number (the RRF constant, usually {RRF_K}), got {k!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit!r}")
    elements: dict[str, Element] = {}  # insertion order is first-seen order: the tie-break
    contributions: dict[str, list[float]] = {}
    found_by: dict[str, list[str]] = {}
    for name, ranked in lists.items():
        seen_here: set[str] = set()
        for rank, item in enumerate(ranked, start=1):
            element = item.element
            if element.id in seen_here:
                continue
            seen_here.add(element.id)
            elements.setdefault(element.id, element)
            contributions.setdefault(element.id, []).append(1.0 / (k + rank))
            found_by.setdefault(element.id, []).append(name)
    # fsum is exact, so equal rank multisets give bit-identical scores whatever the summation order, and ties stay
    # ties; sorted() is stable, so tied ids keep their first-seen order.
    scores = {doc_id: math.fsum(parts) for doc_id, parts in contributions.items()}
    order = sorted(elements, key=lambda doc_id: -scores[doc_id])
    if limit is not None:
        order = order[:limit]
    return [Hit(elements[doc_id], scores[doc_id], tuple(found_by[doc_id])) for doc_id in order]
