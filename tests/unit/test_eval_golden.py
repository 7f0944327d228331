"""The golden JSONL format: parsing, evidence matching, and bad lines reported with their line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmrag.elements import Element
from mmrag.errors import NotFoundError
from mmrag.eval.golden import Expected, load_golden, parse_golden, source_matches

GOOD = {"id": "q1", "question": "What is the rseed?", "modality": "text",
        "expected": [{"source": "pdf/vcd.pdf", "page": 1, "contains": "rseed <- 1071"}], "answer": 1071}


def _element(text: str = "> rseed <- 1071\nFurthermore", source: str = "/x/tests/data/pdf/vcd.pdf",
             page: int | None = 1, kind: str = "text") -> Element:
    return Element(kind=kind, text=text, source=source, page=page)  # type: ignore[arg-type]


def test_a_good_line_parses_with_defaults() -> None:
    golden = parse_golden([json.dumps(GOOD)])
    assert golden.problems == ()
    (q,) = golden.questions
    assert q.id == "q1" and q.modality == ("text",) and q.match == "any" and q.answer == "1071" and q.line == 1
    assert q.expected == (Expected("pdf/vcd.pdf", 1, None, "rseed <- 1071"),)
    assert q.answers == ("1071",)


def test_malformed_lines_are_reported_with_their_numbers_and_the_rest_is_kept() -> None:
    lines = [
        json.dumps(GOOD),
        "",  # blank: skipped, still counted
        '{"id": "q2", "question": "broken"',  # line 3: not JSON
        json.dumps({"id": "q3", "question": "no evidence"}),  # line 4
        json.dumps({**GOOD, "id": "q4", "expected": [{"source": "a.pdf", "page": 0}]}),  # line 5: page 0
        json.dumps({**GOOD, "id": "q1"}),  # line 6: duplicate id
        json.dumps({**GOOD, "id": "q7", "modality": ["table", "multi-hop"], "match": "all"}),  # line 7: fine
        json.dumps({**GOOD, "id": "q8", "colour": "red"}),  # line 8: unknown key
    ]
    golden = parse_golden(lines)
    assert [q.id for q in golden.questions] == ["q1", "q7"]
    assert golden.questions[1].modality == ("table", "multi-hop") and golden.questions[1].match == "all"
    problems = {p.line: p.message for p in golden.problems}
    assert sorted(problems) == [3, 4, 5, 6, 8]
    assert "not valid JSON" in problems[3]
    assert "'expected'" in problems[4]
    assert "page" in problems[5]
    assert "duplicate id 'q1' (first on line 1)" in problems[6]
    assert "colour" in problems[8]
    assert str(golden.problems[0]).startswith("line 3: ")


def test_load_golden_resolves_query_images_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_text(json.dumps({**GOOD, "query_image": "q/a.png"}) + "\nnot json\n", encoding="utf-8")
    golden = load_golden(path)
    assert golden.questions[0].query_image == tmp_path / "q" / "a.png"
    assert [p.line for p in golden.problems] == [2]
    with pytest.raises(NotFoundError, match="does not exist"):
        load_golden(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(("expected", "actual", "ok"), [
    ("vcd.pdf", "/home/u/tests/data/pdf/vcd.pdf", True),
    ("pdf/vcd.pdf", "/home/u/tests/data/pdf/vcd.pdf", True),
    ("tests/data/pdf/vcd.pdf", "tests/data/pdf/vcd.pdf", True),
    ("dvcd.pdf", "/home/u/vcd.pdf", False),
    ("f/vcd.pdf", "/home/u/pdf/vcd.pdf", False),  # a suffix must start on a path boundary
    ("intro.html", "https://example.org/docs/intro.html#regex", True),
    ("vcd.pdf", "/home/u/vcd.pdf.bak", False),
])
def test_sources_match_by_file_name_or_path_suffix(expected: str, actual: str, ok: bool) -> None:
    assert source_matches(expected, actual) is ok


def test_expected_matches_on_page_kind_and_contains() -> None:
    element = _element()
    assert Expected("vcd.pdf", 1, "text", "RSEED   <- 1071").matches(element)  # case and spaces ignored
    assert not Expected("vcd.pdf", 2).matches(element)
    assert not Expected("vcd.pdf", kind="table").matches(element)
    assert not Expected("vcd.pdf", contains="rseed <- 1072").matches(element)
    captioned = Element(kind="image", text="", source="/d/fig.png", metadata={"caption": "SSL Protocol Stack"})
    assert Expected("fig.png", contains="protocol stack").matches(captioned)
