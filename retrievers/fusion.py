"""Rank fusion: many ranked lists in, one ranking out, keyed on element ids. Pure functions, inputs never changed.

The query chain retrieves one ranked list per (retriever, sub-question) pair, e.g. ``dense:q1``, ``bm25:q1`` and
``image:q2``, and fuses all of them here. Three fusions, each documented with its formula:

- :func:`reciprocal_rank_fusion` (RRF, the default): ``score(d) = Σ_l 1 / (k + rank_l(d))``. Only ranks count, so
  lists whose scores live on different scales (cosine, BM25) fuse without normalisation.
- :func:`weighted_reciprocal_rank_fusion`: ``score(d) = Σ_l w_l / (k + rank_l(d))``, with weights per list
  (``"image:q2"``) or per kind of list (``"image"``, the part before ``:``): the weighted score fusion of
  text and image results, where an image match can count twice as much as a text match.
- :func:`relative_score_fusion`: each list's scores min-max normalised to [0, 1], then
  ``score(d) = Σ_l w_l · (s_l(d) − min_l) / (max_l − min_l)`` (a list whose scores are all equal gives 1 to
  each of its items). Unlike RRF it keeps how far apart the scores were, not just their order.

Common rules: ranks are 1-based; an id that occurs more than once in one list counts once, at its best (first)
position; ``Hit.lists`` names the lists that found an item, in the order of ``lists``; ``Hit.element`` is the
element as first met; equal scores keep first-seen order (``lists`` in their order, each from its top). Sums use
``math.fsum`` (exact), so equal contributions give bit-identical scores whatever the order and ties stay ties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mmrag.answers import Hit
from mmrag.elements import Element

__all__ = [
    "RRF_K",
    "Ranked",
    "list_weight",
    "reciprocal_rank_fusion",
    "relative_score_fusion",
    "weighted_reciprocal_rank_fusion",
]

RRF_K = 60
"""The RRF constant of Cormack, Clarke and Büttcher (SIGIR 2009), used with 1-based ranks."""


class Ranked(Protocol):
    """Anything that carries an element: :class:`~mmrag.stores.base.ScoredRecord`, :class:`~mmrag.answers.Hit`."""

    @property
    def element(self) -> Element: ...


class Scored(Ranked, Protocol):
    """A ranked item with a score (higher is better), for :func:`relative_score_fusion`."""

    @property
    def score(self) -> float: ...


def list_weight(name: str, weights: Mapping[str, float] | None) -> float:
    """The weight of the list ``name``: ``weights[name]``, else ``weights[kind]`` where ``kind`` is the part of
    the name before ``:`` (``"image"`` for ``"image:q2"``), else 1.0."""
    if not weights:
        return 1.0
    if name in weights:
        return float(weights[name])
    return float(weights.get(name.split(":", 1)[0], 1.0))


def _check(limit: int | None, weights: Mapping[str, float] | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit!r}")
    for name, weight in (weights or {}).items():
        if isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {weight!r}")


def _fuse(lists: Mapping[str, Sequence[Ranked]], contribution: Callable[[str, int, Ranked], float],
          limit: int | None) -> list[Hit]:
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
            contributions.setdefault(element.id, []).append(contribution(name, rank, item))
            found_by.setdefault(element.id, []).append(name)
    scores = {doc_id: math.fsum(parts) for doc_id, parts in contributions.items()}
    order = sorted(elements, key=lambda doc_id: -scores[doc_id])  # stable: ties keep first-seen order
    if limit is not None:
        order = order[:limit]
    return [Hit(elements[doc_id], scores[doc_id], tuple(found_by[doc_id])) for doc_id in order]


def reciprocal_rank_fusion(
    lists: Mapping[str, Sequence[Ranked]], k: int = RRF_K, *, limit: int | None = None
) -> list[Hit]:
    """Fuse ranked lists by reciprocal rank: ``score(d) = sum over the lists that hold d of 1 / (k + rank_d)``.

    Ranks are 1-based (the best item of a list has rank 1), so with the default ``k = 60`` (Cormack, Clarke and
    Büttcher, "Reciprocal rank fusion outperforms Condorcet and individual rank learning methods", SIGIR 2009) a
    list's top item adds ``1/61``. A larger ``k`` flattens the difference between top and lower ranks.

    Items are identified by ``element.id`` (a content hash), so the same element found by several lists, several
    sub-questions or several spaces is one result. The input scores, and the ``lists`` of input :class:`Hit`
    objects, are ignored: only positions and the names in ``lists`` matter. See the module docstring for
    duplicates, tie-breaks and ``Hit.lists``.

    Args:
        lists: ranked lists by name, each best first. The names end up in :attr:`Hit.lists`.
        k: the RRF constant; must be positive.
        limit: keep at most this many hits (None: all of them).

    Raises:
        ValueError: ``k`` is not positive or ``limit`` is negative.
    """
    return weighted_reciprocal_rank_fusion(lists, None, k, limit=limit)


def weighted_reciprocal_rank_fusion(
    lists: Mapping[str, Sequence[Ranked]], weights: Mapping[str, float] | None, k: int = RRF_K, *,
    limit: int | None = None,
) -> list[Hit]:
    """Weighted RRF: ``score(d) = sum over the lists l that hold d of w_l / (k + rank_l(d))``.

    ``w_l`` is :func:`list_weight`: ``weights`` may name a whole list (``"bm25:q1"``) or a kind of list
    (``"image"`` weighs ``image:q1``, ``image:q2``...); lists not named weigh 1.0, and a weight of 0 keeps a
    list's items out of the score (they still appear if another list found them, or with score 0). With no
    weights this is :func:`reciprocal_rank_fusion`.

    Raises:
        ValueError: ``k`` is not positive, ``limit`` is negative, or a weight is negative or not finite.
    """
    if isinstance(k, bool) or k <= 0:
        raise ValueError(f"k must be a positive number (the RRF constant, usually {RRF_K}), got {k!r}")
    _check(limit, weights)
    return _fuse(lists, lambda name, rank, _: list_weight(name, weights) / (k + rank), limit)


def relative_score_fusion(
    lists: Mapping[str, Sequence[Scored]], weights: Mapping[str, float] | None = None, *,
    limit: int | None = None,
) -> list[Hit]:
    """Relative score fusion: ``score(d) = sum over l of w_l * (s_l(d) - min_l) / (max_l - min_l)``.

    Each list's scores are min-max normalised on their own (``min_l``/``max_l`` over the items the list
    holds, each id at its first position), so the best item of every list gets ``w_l`` and the worst 0; when all
    of a list's scores are equal (or it holds one item) each gets ``w_l``. ``w_l`` is :func:`list_weight`
    (default 1.0). Scores must be "higher is better" (cosine similarities, BM25).

    Raises:
        ValueError: ``limit`` is negative, a weight is negative or not finite, or a score is not finite.
    """
    _check(limit, weights)
    bounds: dict[str, tuple[float, float]] = {}
    for name, ranked in lists.items():
        firsts: dict[str, float] = {}
        for item in ranked:
            score = float(item.score)
            if not math.isfinite(score):
                raise ValueError(f"list {name!r}: score {score!r} of {item.element.id} is not finite")
            firsts.setdefault(item.element.id, score)
        if firsts:
            bounds[name] = (min(firsts.values()), max(firsts.values()))

    def contribution(name: str, _rank: int, item: Ranked) -> float:
        low, high = bounds[name]
        weight = list_weight(name, weights)
        score = float(item.score)  # type: ignore[attr-defined]
        return weight if high == low else weight * (score - low) / (high - low)

    return _fuse(lists, contribution, limit)
