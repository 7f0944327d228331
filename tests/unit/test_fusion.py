"""Reciprocal rank fusion: hand-computed scores, ties, duplicates, purity, and a brute-force reference."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import pytest

from mmrag.answers import Hit
from mmrag.elements import Element
from mmrag.retrievers.fusion import RRF_K, Ranked, reciprocal_rank_fusion
from mmrag.stores.base import ScoredRecord


def _el(name: str, kind: str = "text") -> Element:
    return Element(kind, "doc.pdf", text=f"content of {name}", page=1)  # type: ignore[arg-type]


A, B, C, D, E = (_el(n) for n in "abcde")
IMG = _el("figure", "image")
NAMES = {A.id: "A", B.id: "B", C.id: "C", D.id: "D", E.id: "E", IMG.id: "IMG"}


def _recs(*elements: Element, start: float = 1.0) -> list[ScoredRecord]:
    # Scores go down with rank, on an arbitrary scale: RRF must ignore them.
    return [ScoredRecord(el, start - i * 0.1, text=f"t{i}") for i, el in enumerate(elements)]


def _names(hits: Sequence[Hit]) -> list[str]:
    return [NAMES[h.element.id] for h in hits]


def test_two_lists_hand_computed() -> None:
    lists = {"dense:q1": _recs(A, B, C), "bm25:q1": _recs(B, D, A)}
    hits = reciprocal_rank_fusion(lists)
    # A: 1/(60+1) + 1/(60+3) = 1/61 + 1/63 = 0.016393... + 0.015873... = 0.032266...
    # B: 1/(60+2) + 1/(60+1) = 1/62 + 1/61 = 0.016129... + 0.016393... = 0.032522...  -> B first
    # C: 1/(60+3)            = 1/63 = 0.015873...
    # D: 1/(60+2)            = 1/62 = 0.016129...                                    -> D before C
    assert _names(hits) == ["B", "A", "D", "C"]
    assert [h.score for h in hits] == pytest.approx([1 / 62 + 1 / 61, 1 / 61 + 1 / 63, 1 / 62, 1 / 63], abs=0)
    assert hits[0].lists == ("dense:q1", "bm25:q1")
    assert hits[2].lists == ("bm25:q1",)
    assert all(isinstance(h, Hit) for h in hits)


def test_small_k_changes_the_order() -> None:
    lists = {"x": _recs(A, B, C), "y": _recs(C, B, A), "z": _recs(A)}
    # k=1: A = 1/2 + 1/4 + 1/2 = 1.25; B = 1/3 + 1/3 = 0.6667; C = 1/4 + 1/2 = 0.75
    hits = reciprocal_rank_fusion(lists, k=1)
    assert _names(hits) == ["A", "C", "B"]
    assert [h.score for h in hits] == [1.25, 0.75, pytest.approx(2 / 3)]
    assert hits[0].lists == ("x", "y", "z")


def test_default_k_is_60() -> None:
    assert RRF_K == 60
    (hit,) = reciprocal_rank_fusion({"only": _recs(A)})
    assert hit.score == 1 / 61  # rank 1, 1-based: 1/(60 + 1)


def test_ties_keep_first_seen_order_across_lists() -> None:
    # Mirror images: A = 1/61 + 1/62 = B; C = 1/63 + 1/64 = D. Every pair ties.
    lists = {"dense:q1": _recs(A, B, C, D), "bm25:q1": _recs(B, A, D, C)}
    assert _names(reciprocal_rank_fusion(lists)) == ["A", "B", "C", "D"]
    swapped = {"bm25:q1": lists["bm25:q1"], "dense:q1": lists["dense:q1"]}
    assert _names(reciprocal_rank_fusion(swapped)) == ["B", "A", "D", "C"]


def test_ties_are_exact_whatever_the_summation_order() -> None:
    # A has ranks (1, 2, 3) and B ranks (3, 2, 1): the same multiset, so the same score bit for bit. With k=2 the
    # naive left-to-right float sums differ: 1/3 + 1/4 + 1/5 = 0.7833333333333332, 1/5 + 1/4 + 1/3 = ...333.
    assert 1 / 3 + 1 / 4 + 1 / 5 != 1 / 5 + 1 / 4 + 1 / 3
    lists = {"l1": _recs(A, C, B), "l2": _recs(E, A), "l3": _recs(D, B), "l4": _recs(B, C, A)}
    hits = reciprocal_rank_fusion(lists, k=2)
    # A: l1 rank 1, l2 rank 2, l4 rank 3 -> 1/3 + 1/4 + 1/5 = 47/60
    # B: l1 rank 3, l3 rank 2, l4 rank 1 -> 1/5 + 1/4 + 1/3 = 47/60   (tie; A seen first)
    # C: l1 rank 2, l4 rank 2            -> 1/4 + 1/4 = 1/2
    # E: l2 rank 1 -> 1/3;  D: l3 rank 1 -> 1/3                        (tie; E seen first, in l2)
    assert _names(hits) == ["A", "B", "C", "E", "D"]
    assert hits[0].score == hits[1].score == pytest.approx(47 / 60)
    assert hits[2].score == 0.5
    assert hits[3].score == hits[4].score == 1 / 3


def test_duplicates_across_sub_questions_and_modalities() -> None:
    lists = {
        "dense:q1": _recs(A, B),
        "bm25:q1": _recs(B, C),
        "dense:q2": _recs(C, A),
        "bm25:q2": [],
        "image:q2": _recs(IMG, A),
    }
    hits = reciprocal_rank_fusion(lists)
    by_name = {NAMES[h.element.id]: h for h in hits}
    # A: dense:q1 rank 1, dense:q2 rank 2, image:q2 rank 2 -> 1/61 + 1/62 + 1/62
    # B: dense:q1 rank 2, bm25:q1 rank 1                     -> 1/62 + 1/61
    # C: bm25:q1 rank 2, dense:q2 rank 1                     -> 1/62 + 1/61  (ties with B; B seen first)
    # IMG: image:q2 rank 1                                   -> 1/61
    assert _names(hits) == ["A", "B", "C", "IMG"]
    assert by_name["A"].score == pytest.approx(1 / 61 + 2 / 62)
    assert by_name["A"].lists == ("dense:q1", "dense:q2", "image:q2")
    assert by_name["C"].lists == ("bm25:q1", "dense:q2")
    assert by_name["IMG"].lists == ("image:q2",) and by_name["IMG"].element.kind == "image"


def test_duplicate_id_inside_one_list_counts_once_at_its_best_rank() -> None:
    # A at ranks 1 and 3 of the same list: counts once, at rank 1. B keeps rank 2 (positions are not compacted).
    hits = reciprocal_rank_fusion({"dense:q1": _recs(A, B, A, C)})
    assert _names(hits) == ["A", "B", "C"]
    # A = 1/61; B = 1/62; C = 1/64 (its own position, 4)
    assert [h.score for h in hits] == [1 / 61, 1 / 62, 1 / 64]
    assert hits[0].lists == ("dense:q1",)


def test_accepts_hits_and_ignores_their_scores_and_lists() -> None:
    earlier = [Hit(B, 99.0, ("old",)), Hit(A, 0.001, ("older",))]
    hits = reciprocal_rank_fusion({"fused:q1": earlier, "bm25:q2": _recs(A)})
    # B = 1/61; A = 1/62 + 1/61
    assert _names(hits) == ["A", "B"]
    assert hits[0].lists == ("fused:q1", "bm25:q2") and hits[1].lists == ("fused:q1",)


def test_first_met_element_is_kept() -> None:
    detached = A.detach("objects/a")  # same id, another object
    assert detached.id == A.id and detached is not A
    (hit,) = reciprocal_rank_fusion({"one": [ScoredRecord(detached, 0.5)], "two": _recs(A)})
    assert hit.element is detached


def test_empty_inputs() -> None:
    assert reciprocal_rank_fusion({}) == []
    assert reciprocal_rank_fusion({"dense:q1": [], "bm25:q1": ()}) == []
    assert _names(reciprocal_rank_fusion({"dense:q1": [], "bm25:q1": _recs(C)})) == ["C"]


def test_limit() -> None:
    lists = {"dense:q1": _recs(A, B, C, D), "bm25:q1": _recs(D, C)}
    full = reciprocal_rank_fusion(lists)
    assert len(full) == 4
    assert reciprocal_rank_fusion(lists, limit=2) == full[:2]
    assert reciprocal_rank_fusion(lists, limit=0) == []
    assert reciprocal_rank_fusion(lists, limit=10) == full
    with pytest.raises(ValueError, match="limit"):
        reciprocal_rank_fusion(lists, limit=-1)


@pytest.mark.parametrize("k", [0, -1, -60, False])
def test_k_must_be_positive(k: int) -> None:
    with pytest.raises(ValueError, match="k must be a positive"):
        reciprocal_rank_fusion({"dense:q1": _recs(A)}, k=k)


def _snapshot(lists: Mapping[str, Sequence[Any]]) -> list[tuple[Any, ...]]:
    # Elements hold a read-only mappingproxy that copy.deepcopy cannot copy, so compare a structural snapshot.
    return [
        (name, type(seq), len(seq),
         [(type(x), x.element.to_dict(), x.element.data, x.score, getattr(x, "text", None), getattr(x, "lists", None))
          for x in seq])
        for name, seq in lists.items()
    ]


def test_inputs_are_not_mutated() -> None:
    dense = _recs(A, B, A, C)
    bm25 = [Hit(D, 3.0, ("x",)), Hit(B, 1.0)]
    image = (ScoredRecord(IMG, 0.2),)
    lists: dict[str, Sequence[Ranked]] = {"dense:q1": dense, "bm25:q1": bm25, "image:q2": image}
    before = _snapshot(lists)
    ids_before = [[id(x) for x in seq] for seq in lists.values()]
    first = reciprocal_rank_fusion(lists, limit=3)
    second = reciprocal_rank_fusion(lists, limit=3)
    assert first == second
    assert _snapshot(lists) == before
    assert [[id(x) for x in seq] for seq in lists.values()] == ids_before
    assert list(lists) == ["dense:q1", "bm25:q1", "image:q2"] and lists["dense:q1"] is dense


# -- property-style: against a brute-force reference in exact arithmetic ------------------------------------------
def _reference(lists: Mapping[str, Sequence[Ranked]], k: int) -> list[tuple[str, Fraction, tuple[str, ...]]]:
    """Straight from the definition, with exact fractions and an explicit (score desc, first seen) sort key."""
    first_seen: list[str] = []
    for seq in lists.values():
        for item in seq:
            if item.element.id not in first_seen:
                first_seen.append(item.element.id)
    out = []
    for doc_id in first_seen:
        score, names = Fraction(0), []
        for name, seq in lists.items():
            ranks = [r for r, item in enumerate(seq, start=1) if item.element.id == doc_id]
            if ranks:
                score += Fraction(1, k + min(ranks))
                names.append(name)
        out.append((doc_id, score, tuple(names)))
    out.sort(key=lambda row: (-row[1], first_seen.index(row[0])))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force_reference(seed: int) -> None:
    rng = random.Random(seed)
    pool = [_el(f"doc{i}", rng.choice(["text", "table", "image"])) for i in range(rng.randint(1, 25))]
    lists: dict[str, list[ScoredRecord]] = {}
    for q in range(rng.randint(1, 3)):
        for space in ("dense", "bm25", "image"):
            if rng.random() < 0.8:
                # Sampling with replacement: duplicates inside one list happen.
                picked = [rng.choice(pool) for _ in range(rng.randint(0, 12))]
                lists[f"{space}:q{q + 1}"] = [ScoredRecord(el, rng.uniform(-1, 1)) for el in picked]
    k = rng.choice([1, 2, 5, 60, 1000])
    limit = rng.choice([None, 0, 1, 3, 100])
    expected = _reference(lists, k)[:limit]
    hits = reciprocal_rank_fusion(lists, k, limit=limit)
    assert [h.element.id for h in hits] == [doc_id for doc_id, _, _ in expected]
    assert [h.lists for h in hits] == [names for _, _, names in expected]
    for hit, (_, score, _) in zip(hits, expected, strict=True):
        # Each 1/(k + rank) is rounded once and fsum adds them exactly: within a couple of ulps of the true sum.
        assert hit.score == pytest.approx(float(score), rel=1e-15, abs=0)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert len({h.element.id for h in hits}) == len(hits)
