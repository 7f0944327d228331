"""Evaluation metrics on hand-computed rankings (every expected figure is worked out in the comment above it)."""

from __future__ import annotations

import math

import pytest

from mmrag.eval.metrics import (
    answer_contains,
    answer_exact,
    citation_precision,
    dcg,
    ndcg_at_k,
    normalize_answer,
    percentile,
    recall_at_k,
    reciprocal_rank,
)

LOG2_3 = math.log2(3)


def test_recall_counts_distinct_relevant_labels_in_the_top_k() -> None:
    labels = [None, "a", "a", None, "b", "c"]
    # top 3 hold "a" (twice: counted once) of {a, b, c} → 1/3; top 5 add "b" → 2/3; all → 3/3
    assert recall_at_k(labels, {"a", "b", "c"}, 3) == pytest.approx(1 / 3)
    assert recall_at_k(labels, {"a", "b", "c"}, 5) == pytest.approx(2 / 3)
    assert recall_at_k(labels, {"a", "b", "c"}, 10) == 1.0
    assert recall_at_k([None, None], {"a"}, 2) == 0.0
    assert recall_at_k(["x"], {"a"}, 1) == 0.0  # a label outside the relevant set does not count
    with pytest.raises(ValueError):
        recall_at_k(labels, {"a"}, 0)


def test_reciprocal_rank_is_one_over_the_first_relevant_rank_within_k() -> None:
    assert reciprocal_rank([None, None, 0, 1]) == pytest.approx(1 / 3)
    assert reciprocal_rank([0]) == 1.0
    assert reciprocal_rank([None, None, 0], k=2) == 0.0
    assert reciprocal_rank([]) == 0.0


def test_ndcg_with_several_relevant_items() -> None:
    # relevant {a, b}; ranking [None, a, None, b]: DCG@4 = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    expected = (1 / LOG2_3 + 1 / math.log2(5)) / (1 + 1 / LOG2_3)
    assert ndcg_at_k([None, "a", None, "b"], {"a", "b"}, 4) == pytest.approx(expected)
    # cut at k = 2: only "a" counts; IDCG@2 is still 1 + 1/log2(3)
    assert ndcg_at_k([None, "a", None, "b"], {"a", "b"}, 2) == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 5) == pytest.approx(1.0)


def test_ndcg_counts_a_repeated_label_once() -> None:
    # [a, a, b]: the second "a" is a duplicate (gain 0) → DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(["a", "a", "b"], {"a", "b"}, 3) == pytest.approx(1.5 / (1 + 1 / LOG2_3))


def test_ndcg_averages_gains_over_tied_scores() -> None:
    # gains [1, 0, 1] with scores [3, 2, 2]: rank 1 alone → 1; ranks 2-3 tie, mean gain 0.5 →
    # 0.5 * (1/log2(3) + 1/log2(4)); IDCG = 1 + 1/log2(3)  → 0.959860...
    tied = ndcg_at_k(["a", None, "b"], {"a", "b"}, 3, scores=[3.0, 2.0, 2.0])
    assert tied == pytest.approx((1 + 0.5 * (1 / LOG2_3 + 0.5)) / (1 + 1 / LOG2_3))
    assert tied == pytest.approx(0.9598603945740939)
    # the same items in the other tied order give the same figure (that is the point of tie handling)
    assert ndcg_at_k(["a", "b", None], {"a", "b"}, 3, scores=[3.0, 2.0, 2.0]) == pytest.approx(tied)
    # without scores, order decides: [a, b, None] is ideal
    assert ndcg_at_k(["a", "b", None], {"a", "b"}, 3) == pytest.approx(1.0)
    # a tie group cut by k: ranks 1-2 tie (mean gain 0.5), only rank 1 is inside k=1 → 0.5 / 1
    assert dcg([0.0, 1.0], 1, scores=[1.0, 1.0]) == pytest.approx(0.5)


def test_ndcg_without_relevant_items_is_zero_and_lengths_must_agree() -> None:
    assert ndcg_at_k([None], set(), 3) == 0.0
    with pytest.raises(ValueError):
        dcg([1.0, 0.0], 2, scores=[1.0])


def test_citation_precision() -> None:
    assert citation_precision([True, False, True, True]) == 0.75
    assert citation_precision([]) is None


@pytest.mark.parametrize(("text", "normal"), [
    ("The  Answer!", "answer"),
    ("p-value = 0.0096.", "p value 0.0096"),
    ("50,000 men", "50,000 men"),
    ("Grünen", "grunen"),
    ("an apple, a pear", "apple pear"),
])
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_answer_exact_and_contains() -> None:
    assert answer_exact("  PCRE2. ", ["pcre2"])
    assert not answer_exact("It uses PCRE2", ["PCRE2"])
    assert answer_contains("It uses PCRE2 [1]", ["PCRE2"])
    assert answer_contains("f(x) = 1.8696, p-value = 0.0096", ["0.0096"])
    assert not answer_contains("p-value = 0.00961", ["0.0096"])  # word boundaries: no partial numbers
    assert not answer_contains("1071", ["107"])
    assert answer_contains("fifty thousand men", ["50,000", "fifty thousand"])  # any alias
    assert not answer_contains("anything", [""])


def test_percentile_interpolates_linearly() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    # sorted 1,2,3,4: p50 at position 1.5 → 2.5; p95 at 2.85 → 3.85; p0 → 1; p100 → 4
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)
