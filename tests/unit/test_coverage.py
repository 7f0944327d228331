"""Sub-question coverage after fusion: hand-built rankings, every position checked."""

from __future__ import annotations

from mmrag.answers import Hit
from mmrag.elements import Element
from mmrag.retrievers.coverage import cover_sub_questions, sub_question_of
from mmrag.retrievers.fusion import reciprocal_rank_fusion, weighted_reciprocal_rank_fusion
from mmrag.stores.base import ScoredRecord


def _r(name: str) -> ScoredRecord:
    return ScoredRecord(Element("text", "/d/doc.pdf", text=name, page=1), 1.0)


A, B, C, D, E, F = (_r(n) for n in "ABCDEF")


def _texts(hits: list[Hit]) -> list[str]:
    return [h.element.text for h in hits]


def test_sub_question_of() -> None:
    assert sub_question_of("bm25-code:q2") == "q2" and sub_question_of("dense:q10") == "q10"
    assert sub_question_of("dense") == ""


def test_the_part_only_one_sub_question_finds_is_moved_into_the_top() -> None:
    # The whole question (q1) and its second part (q3) agree on A, B, C, D; the first part (q2) alone finds E.
    lists = {"dense:q1": [A, B, C, D], "bm25:q1": [A, C, B, D], "dense:q2": [E, F], "bm25:q2": [E, A],
             "dense:q3": [A, B, C, D], "bm25:q3": [A, B, D, C]}
    fused = reciprocal_rank_fusion(lists)
    assert _texts(fused)[:4] == ["A", "B", "C", "D"] and _texts(fused).index("E") == 4  # plain RRF: E 5th
    covered = cover_sub_questions(fused, lists)
    assert _texts(covered) == ["A", "E", "B", "C", "D", "F"]  # q1's and q3's best (A), q2's best (E), the rest
    assert covered[1] is fused[4]  # the same hit, score and lists kept
    assert _texts(cover_sub_questions(fused, lists, limit=3)) == ["A", "E", "B"]
    assert _texts(fused)[:4] == ["A", "B", "C", "D"]  # the input is not changed


def test_the_fused_best_stays_first_and_bests_follow_in_fused_order() -> None:
    # q1's own best is B, q2's is C, q3's is D; A is first only when everything is fused.
    lists = {"dense:q1": [B, A], "dense:q2": [C, A], "dense:q3": [D, A]}
    fused = reciprocal_rank_fusion(lists)
    assert _texts(fused) == ["A", "B", "C", "D"]
    assert _texts(cover_sub_questions(fused, lists)) == ["A", "B", "C", "D"]
    cut = fused[:2]  # a cut fused list: the bests it lacks come after the ones it holds, in sub-question order
    assert _texts(cover_sub_questions(cut, lists)) == ["A", "B", "C", "D"]


def test_a_single_question_keeps_its_ranking() -> None:
    lists = {"dense:q1": [A, B, C], "bm25:q1": [C, B, A], "bm25-code:q1": [C]}
    fused = reciprocal_rank_fusion(lists)
    assert cover_sub_questions(fused, lists) == fused
    assert cover_sub_questions([], {}) == []


def test_lists_the_weights_turn_off_name_no_best_and_weights_pick_each_best() -> None:
    # q2 is found only by the image list, which the weights turn off: it must not pull X into the top.
    lists = {"dense:q1": [D, A, C, B], "image:q2": [E], "dense:q3": [A, C], "bm25:q3": [C, A]}
    weights = {"image": 0.0, "bm25": 2.0}
    fused = weighted_reciprocal_rank_fusion(lists, weights)
    assert _texts(fused) == ["C", "A", "D", "B", "E"] and fused[-1].score == 0.0
    covered = cover_sub_questions(fused, lists, weights=weights)
    assert _texts(covered) == ["C", "D", "A", "B", "E"]  # q1's best D moves up; q3's best is C under the weights
    assert _texts(cover_sub_questions(fused, lists)) == ["C", "A", "D", "E", "B"]  # unweighted: E counted
