"""Golden splits, follow-ups and unanswerable questions; abstention scoring; the held-out golden set itself."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mmrag.answers import Answer
from mmrag.eval.golden import load_golden, parse_golden
from mmrag.eval.metrics import abstention
from mmrag.eval.runner import EvalReport, score
from mmrag.eval.usage import Usage
from mmrag.eval.variants import Run

HELDOUT = Path(__file__).resolve().parents[1] / "data_heldout"


def _line(**fields: object) -> str:
    return json.dumps({"id": "q", "question": "Q?", "expected": [{"source": "a.pdf"}], **fields})


def test_golden_split_history_and_unanswerable_lines() -> None:
    parsed = parse_golden([
        _line(id="a", split="dev", history=["Which family is Icelandic in?"]),
        json.dumps({"id": "b", "question": "Who maintains it?", "answerable": False, "split": "test"}),
        _line(id="c", split="train"),
        json.dumps({"id": "d", "question": "Q?", "expected": []}),
        json.dumps({"id": "e", "question": "Q?", "answerable": False, "answer": "x"}),
        _line(id="f", history="not a list"),
    ])
    assert [q.id for q in parsed.questions] == ["a", "b"]
    a, b = parsed.questions
    assert a.split == "dev" and a.history == ("Which family is Icelandic in?",) and a.answerable
    assert b.split == "test" and not b.answerable and b.expected == () and b.to_dict()["answerable"] is False
    messages = " ".join(p.message for p in parsed.problems)
    assert "'split' must be one of dev, test" in messages and "may be empty only with" in messages
    assert "has no 'answer'" in messages and "'history' must be a list" in messages


def test_abstention_figures() -> None:
    figures = abstention([(False, True), (False, False), (True, False), (True, True), (True, False), (True, None)])
    assert figures == {"abstention_recall": 0.5, "abstention_precision": 0.5, "false_abstention": 1 / 3}
    assert abstention([]) == {"abstention_recall": None, "abstention_precision": None, "false_abstention": None}


def _run(text: str, answered: bool) -> Run:
    return Run(("Q?",), (), Answer("Q?", text, "extractive", answered=answered), 0.1, Usage())


def test_score_counts_an_abstention_as_no_answer_and_reports_per_split() -> None:
    golden = parse_golden([
        _line(id="a", split="dev", answer="42"),
        json.dumps({"id": "u", "question": "Who?", "answerable": False, "split": "test"}),
    ]).questions
    answered = score(golden[0], "v", _run("It is 42 [1]", True), 5)
    abstained = score(golden[0], "v", _run("The sources do not say; closest: 42 [1]", False), 5)
    assert answered.answer_contains is True and answered.abstained is False
    assert abstained.answer_contains is False and abstained.abstained is True  # quoting 42 is no answer
    unanswerable = score(golden[1], "v", _run("The sources do not say", False), 5)
    assert unanswerable.recall is None and unanswerable.abstained is True and not unanswerable.answerable
    report = EvalReport(5, ("v",), (answered, unanswerable))
    assert report.splits == ("dev", "test")
    [test_all] = [r for r in report.summary("test") if r["modality"] == "all"]
    assert test_all["n"] == 1 and test_all["abstention_recall"] == 1.0
    assert "abstains (unanswerable)" in report.to_markdown(split="dev")


def test_the_heldout_golden_set_is_large_varied_split_and_points_at_shipped_documents() -> None:
    golden = load_golden(HELDOUT / "golden.jsonl")
    assert not golden.problems and len(golden.questions) >= 150
    splits = Counter(q.split for q in golden.questions)
    assert set(splits) == {"dev", "test"} and min(splits.values()) >= 70
    tags = Counter(t for q in golden.questions for t in q.modality)
    for tag in ("text", "table", "aggregate", "multi-hop", "bridge", "chart", "scanned", "follow-up", "unanswerable"):
        assert tags[tag] >= 5, tag
    assert all(q.history for q in golden.questions if "follow-up" in q.modality)
    assert all(not q.answerable for q in golden.questions if "unanswerable" in q.modality)
    sources = {e.source for q in golden.questions for e in q.expected}
    assert len(sources) >= 25 and all((HELDOUT / s).is_file() for s in sources)
    documents = [p for p in HELDOUT.rglob("*") if p.suffix in (".pdf", ".html")]
    assert len(documents) >= 25 and sum(p.stat().st_size for p in documents) < 20 * 2**20
    assert "## How the questions were made" in (HELDOUT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["split", "history", "answerable"])
def test_new_golden_keys_round_trip(name: str) -> None:
    value = {"split": "test", "history": ["Earlier?"], "answerable": False}[name]
    fields = {name: value} if name != "answerable" else {"answerable": False, "expected": []}
    [question] = parse_golden([json.dumps({"id": "x", "question": "Q?", "expected": [{"source": "a.pdf"}],
                                           **fields})]).questions
    assert question.to_dict()[name] == value
