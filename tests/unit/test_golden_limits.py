"""Issue 23 item 7: a golden file cannot make eval read anything it likes, or without bound."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import cli
from mmrag.eval.golden import MAX_GOLDEN_BYTES, MAX_QUESTION_CHARS, load_golden

EXPECTED = [{"source": "a.pdf"}]


def _write(path: Path, *rows: dict[str, object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_text_fields_must_be_strings(tmp_path: Path) -> None:
    golden = load_golden(_write(tmp_path / "g.jsonl",
                                {"id": "q1", "question": 42, "expected": EXPECTED},
                                {"id": "q2", "question": "ok?", "expected": [{"source": 7}]},
                                {"id": 3, "question": "How many?", "expected": EXPECTED, "answer": 1071}))
    assert [q.id for q in golden.questions] == ["3"] and golden.questions[0].answer == "1071"
    assert [p.line for p in golden.problems] == [1, 2]
    assert "'question' must be a string, not int 42" in golden.problems[0].message


def test_question_length_is_capped(tmp_path: Path) -> None:
    golden = load_golden(_write(tmp_path / "g.jsonl",
                                {"id": "q1", "question": "why? " * MAX_QUESTION_CHARS, "expected": EXPECTED}))
    assert not golden.questions and "the limit is 2,000" in golden.problems[0].message


@pytest.mark.parametrize("image", ["http://169.254.169.254/latest/meta-data", "https://example.com/q.png",
                                   "../../etc/passwd", "/etc/passwd", "sub/../../outside.png", "file:///etc/passwd"])
def test_query_images_outside_the_folder_are_refused(tmp_path: Path, image: str) -> None:
    folder = tmp_path / "golden"
    folder.mkdir()
    golden = load_golden(_write(folder / "g.jsonl",
                                {"id": "i1", "question": "same picture?", "expected": EXPECTED, "query_image": image}))
    assert not golden.questions, golden.questions
    [problem] = golden.problems
    assert "query_image" in problem.message and ("URL" in problem.message or "outside" in problem.message)


def test_a_link_out_of_the_folder_is_refused_and_a_file_inside_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "golden"
    (folder / "queries").mkdir(parents=True)
    (folder / "queries" / "q.png").write_bytes(b"\x89PNG")
    os.symlink("/etc/passwd", folder / "queries" / "link.png")
    golden = load_golden(_write(folder / "g.jsonl",
                                {"id": "i1", "question": "q", "expected": EXPECTED, "query_image": "queries/q.png"},
                                {"id": "i2", "question": "q", "expected": EXPECTED, "query_image": "queries/link.png"}))
    assert [q.query_image for q in golden.questions] == [folder / "queries" / "q.png"]
    assert "outside" in golden.problems[0].message


def test_a_huge_golden_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as f:
        f.truncate(MAX_GOLDEN_BYTES + 1)  # sparse: costs no disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = CliRunner().invoke(cli, ["eval", "run", str(path)])
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.exit_code == 2, result.output
    assert "the limit is 8 MiB" in result.stderr and "Traceback" not in result.output
    if sys.platform == "linux":
        assert grown_kib < 8 * 1024  # refused before reading it


def test_a_huge_line_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    good = json.dumps({"id": "q2", "question": "ok?", "expected": EXPECTED})
    path.write_text('{"id": "q1", "question": "' + "x" * 200_000 + '"}\n' + good + "\n", encoding="utf-8")
    golden = load_golden(path)
    assert [q.id for q in golden.questions] == ["q2"]
    assert golden.problems[0].line == 1 and "the limit is 64,000" in golden.problems[0].message
