"""Weighted RRF and relative score fusion on hand-computed examples (weights per list and per kind, ties)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mmrag.answers import Hit
from mmrag.elements import Element
from mmrag.retrievers.fusion import (
    list_weight,
    reciprocal_rank_fusion,
    relative_score_fusion,
    weighted_reciprocal_rank_fusion,
)
from mmrag.stores.base import ScoredRecord


def _el(name: str, kind: str = "text") -> Element:
    return Element(kind, "doc.pdf", text=f"content of {name}", page=1)  # type: ignore[arg-type]


A, B, C, D = (_el(n) for n in "abcd")
IMG = _el("figure", "image")
NAMES = {A.id: "A", B.id: "B", C.id: "C", D.id: "D", IMG.id: "IMG"}


def _recs(*pairs: tuple[Element, float]) -> list[ScoredRecord]:
    return [ScoredRecord(el, score, text="") for el, score in pairs]


def _names(hits: Sequence[Hit]) -> list[str]:
    return [NAMES[h.element.id] for h in hits]


def test_list_weight_by_name_then_by_kind_then_one() -> None:
    weights = {"image": 2.0, "image:q2": 3.0}
    assert list_weight("image:q1", weights) == 2.0
    assert list_weight("image:q2", weights) == 3.0  # the exact list name wins over its kind
    assert list_weight("dense:q1", weights) == 1.0
    assert list_weight("dense:q1", None) == 1.0


def test_weighted_rrf_image_counts_twice() -> None:
    lists = {"dense:q1": _recs((A, 0.9), (IMG, 0.8)), "image:q1": _recs((IMG, 0.3), (B, 0.2))}
    plain = reciprocal_rank_fusion(lists)
    # Unweighted: IMG = 1/62 + 1/61; A = 1/61; B = 1/62.
    assert _names(plain) == ["IMG", "A", "B"]
    hits = weighted_reciprocal_rank_fusion(lists, {"image": 2.0, "dense": 0.5})
    # IMG = 0.5/62 + 2/61 = 0.0408...; B = 2/62 = 0.0322...; A = 0.5/61 = 0.0081...
    assert _names(hits) == ["IMG", "B", "A"]
    assert [h.score for h in hits] == pytest.approx([0.5 / 62 + 2 / 61, 2 / 62, 0.5 / 61], rel=1e-12)
    assert hits[0].lists == ("dense:q1", "image:q1")


def test_weighted_rrf_without_weights_is_rrf_and_ties_keep_first_seen_order() -> None:
    lists = {"dense:q1": _recs((A, 1.0), (B, 0.5)), "bm25:q1": _recs((B, 9.0), (A, 3.0))}
    # A = 1/61 + 1/62 = B exactly: a tie, so A (seen first) leads.
    assert _names(weighted_reciprocal_rank_fusion(lists, None)) == ["A", "B"]
    assert [h.score for h in weighted_reciprocal_rank_fusion(lists, {})] == [h.score for h in
                                                                           reciprocal_rank_fusion(lists)]
    # Weighting bm25 by 2 breaks the tie: B = 1/62 + 2/61 > A = 1/61 + 2/62.
    assert _names(weighted_reciprocal_rank_fusion(lists, {"bm25": 2})) == ["B", "A"]


def test_weight_zero_and_bad_weights() -> None:
    lists = {"dense:q1": _recs((A, 1.0)), "image:q1": _recs((B, 1.0))}
    hits = weighted_reciprocal_rank_fusion(lists, {"image": 0.0})
    assert _names(hits) == ["A", "B"] and hits[1].score == 0.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight"):
            weighted_reciprocal_rank_fusion(lists, {"image": bad})
    with pytest.raises(ValueError, match="k must be"):
        weighted_reciprocal_rank_fusion(lists, None, 0)


def test_relative_score_fusion_hand_computed() -> None:
    lists = {
        "dense:q1": _recs((A, 0.9), (B, 0.7), (C, 0.5)),  # min 0.5, max 0.9: A 1.0, B 0.5, C 0.0
        "bm25:q1": _recs((C, 12.0), (D, 6.0), (B, 3.0)),  # min 3, max 12: C 1.0, D 1/3, B 0.0
    }
    hits = relative_score_fusion(lists)
    # A = 1.0; B = 0.5 + 0 = 0.5; C = 0 + 1 = 1.0 (tie with A: A seen first); D = 1/3
    assert _names(hits) == ["A", "C", "B", "D"]
    assert [h.score for h in hits] == pytest.approx([1.0, 1.0, 0.5, 1 / 3], rel=1e-12)
    weighted = relative_score_fusion(lists, {"bm25": 2.0})
    # A = 1.0; B = 0.5; C = 2.0; D = 2/3
    assert _names(weighted) == ["C", "A", "D", "B"]
    assert [h.score for h in weighted] == pytest.approx([2.0, 1.0, 2 / 3, 0.5], rel=1e-12)


def test_relative_score_fusion_equal_scores_single_items_duplicates_and_limit() -> None:
    lists = {"dense:q1": _recs((A, 0.4), (B, 0.4)), "image:q1": _recs((IMG, 0.2)),
             "bm25:q1": _recs((D, 5.0), (D, 1.0), (C, 1.0))}
    hits = relative_score_fusion(lists, {"image": 3.0})
    # dense all equal: A 1, B 1; image single item: IMG 3; bm25 (D first at 5.0, C 1.0): D 1, C 0
    assert _names(hits) == ["IMG", "A", "B", "D", "C"]
    assert [h.score for h in hits] == [3.0, 1.0, 1.0, 1.0, 0.0]
    assert _names(relative_score_fusion(lists, {"image": 3.0}, limit=2)) == ["IMG", "A"]
    assert relative_score_fusion({}) == [] and relative_score_fusion({"dense:q1": []}) == []
    with pytest.raises(ValueError, match="not finite"):
        relative_score_fusion({"dense:q1": _recs((A, float("nan")))})


def test_inputs_are_not_mutated() -> None:
    dense = _recs((A, 0.9), (B, 0.1))
    lists = {"dense:q1": dense}
    before = list(dense)
    relative_score_fusion(lists, {"dense": 2})
    weighted_reciprocal_rank_fusion(lists, {"dense": 2})
    assert dense == before and list(lists) == ["dense:q1"]
