"""Video and audio files: shots, deduplicated keyframes, timed transcript, limits and bad input.

The videos are made here (mmrag.testing.media): a slideshow of the sample images with PyAV and, where Debian's
espeak-ng is installed, a spoken sentence as the audio track. The one video under tests/data, the golden set's
``video/talk.mp4``, is tested in tests/unit/test_sample_video.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.answers import Answer, Citation, Hit, breadcrumb, clock_span, source_link
from mmrag.elements import Element
from mmrag.parsers.mime import sniff_mime
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.sources import SUPPORTED_SUFFIXES, parse_source, parse_sources
from mmrag.parsers.transcribe import Word, chunk_words, transcriber_for

av = pytest.importorskip("av", reason="video tests need PyAV: pip install 'mmrag[video]'")
pytest.importorskip("scenedetect", reason="video tests need PySceneDetect: pip install 'mmrag[video]'")

from mmrag.testing.media import slideshow, speak  # noqa: E402  (needs av, checked above)

DATA = Path(__file__).parents[1] / "data"
SLIDES = [DATA / "images" / "img_031.png", DATA / "images" / "img_029.png", DATA / "ocr" / "img_034_1000px.png"]
SENTENCE = "The quarterly revenue grew by twelve percent in the northern region"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """talk.mp4: slides 1, 2, 3 for 3 s each, then slide 1 again for 2 s; speech from 1 s when espeak-ng exists."""
    folder = tmp_path_factory.mktemp("media")
    wav = speak(SENTENCE, folder / "speech.wav", pause_before=1.0)
    plan = [(SLIDES[0], 3.0), (SLIDES[1], 3.0), (SLIDES[2], 3.0), (SLIDES[0], 2.0)]
    return {"talk": slideshow(folder / "talk.mp4", plan, audio=wav),
            "silent": slideshow(folder / "silent.mkv", [(SLIDES[1], 2.0)], codec="mpeg4"),
            **({"wav": wav} if wav else {})}


@pytest.fixture(scope="module")
def talk(media: dict[str, Path]) -> Any:
    result = parse_source(str(media["talk"]))
    assert result.ok, result.error
    return result


def _frames(result: Any) -> list[Element]:
    return sorted((e for e in result.elements if e.kind == "image"), key=lambda e: e.metadata["start"])


def test_shots_are_the_slide_changes_and_a_repeated_slide_is_kept_once(talk: Any) -> None:
    frames = _frames(talk)
    assert [(f.metadata["start"], f.metadata["end"]) for f in frames] == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]
    assert frames[0].metadata["also_at"] == [[9.0, 11.0]]  # slide 1 shown again: one element, both times
    assert all(f.mime_type == "image/jpeg" and f.metadata["media"] == "video" for f in frames)
    assert talk.mime_type == "video/mp4" and talk.warnings == ()


def test_each_frame_is_nearest_to_the_slide_it_shows(talk: Any) -> None:
    from mmrag.providers.local.local_image import describe

    frames = _frames(talk)
    for n, slide in enumerate(SLIDES):
        query = describe(slide.read_bytes())
        scores = [float(describe(f.data or b"") @ query) for f in frames]
        assert max(range(len(scores)), key=scores.__getitem__) == n, scores


def test_a_spoken_sentence_comes_back_as_timed_words(talk: Any, media: dict[str, Path]) -> None:
    if "wav" not in media:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    texts = [e for e in talk.elements if e.kind == "text"]
    assert len(texts) == 1, [e.text for e in texts]
    words = set(texts[0].text.split())
    # pocketsphinx gets about half of espeak's words (bench/video.py measures it); these are the ones it keeps.
    assert len(words & {"quarterly", "revenue", "northern", "region"}) >= 3, texts[0].text
    assert 0.5 <= texts[0].metadata["start"] <= 2.0 and 4.0 <= texts[0].metadata["end"] <= 7.0
    assert texts[0].metadata["speech"] == "pocketsphinx"


def test_audio_files_give_a_transcript_only(media: dict[str, Path]) -> None:
    if "wav" not in media:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    result = parse_source(str(media["wav"]))
    assert result.ok and result.mime_type == "audio/wav", result.error
    assert [e.kind for e in result.elements] == ["text"] and result.elements[0].metadata["media"] == "audio"


def test_a_video_without_audio_and_transcriber_off(media: dict[str, Path]) -> None:
    silent = parse_source(str(media["silent"]))
    assert silent.ok and silent.mime_type == "video/x-matroska" and [e.kind for e in silent.elements] == ["image"]
    quiet = parse_source(str(media["talk"]), ParseOptions(transcriber="off"))
    assert quiet.ok and {e.kind for e in quiet.elements} == {"image"}


def test_corrupt_and_truncated_files_fail_alone(media: dict[str, Path], tmp_path: Path) -> None:
    data = media["talk"].read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])  # the index (moov) of this file is at its end
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8)
    results = list(parse_sources([truncated, garbage, media["silent"]]))
    assert [r.ok for r in results] == [False, False, True]
    assert results[0].error == "not a readable video or audio file (Invalid data found when processing input)"
    assert results[1].error and results[1].mime_type == "video/x-matroska"  # by its bytes (EBML), not its name


def test_a_file_cut_short_keeps_what_came_before_and_says_so(tmp_path: Path) -> None:
    video = slideshow(tmp_path / "cut.mkv", [(s, 3.0) for s in SLIDES], codec="mpeg4")  # Matroska: no index needed
    data = video.read_bytes()
    (tmp_path / "short.mkv").write_bytes(data[: len(data) // 2])
    result = parse_source(str(tmp_path / "short.mkv"), ParseOptions(transcriber="off"))
    assert result.ok, result.error
    starts = [e.metadata["start"] for e in _frames(result)]
    assert starts[:2] == [0.0, 3.0] and all(e.metadata["end"] < 8.0 for e in result.elements)
    assert any("the file looks truncated" in w for w in result.warnings), result.warnings


def test_duration_and_frame_caps(media: dict[str, Path]) -> None:
    long = parse_source(str(media["talk"]), ParseOptions(max_media_seconds=5, transcriber="off"))
    assert not long.ok and long.error and "over the 0:05 cap (max_media_seconds)" in long.error
    few = parse_source(str(media["talk"]), ParseOptions(max_video_frames=1, transcriber="off"))
    assert few.ok and len(_frames(few)) == 1
    assert any("kept the first 1 distinct frames, skipped 2 more (max_video_frames)" in w for w in few.warnings)


def test_media_types_by_content_and_name() -> None:
    assert {".mp4", ".mov", ".webm", ".mkv", ".wav", ".mp3", ".m4a"} <= SUPPORTED_SUFFIXES
    assert sniff_mime(b"\0\0\0\x18ftypisom\0\0\0\0") == "video/mp4"
    assert sniff_mime(b"\0\0\0\x14ftypqt  \0\0\0\0") == "video/quicktime"
    assert sniff_mime(b"\0\0\0\x1cftypM4A \0\0\0\0") == "audio/mp4"
    assert sniff_mime(b"RIFF\0\0\0\0WAVEfmt ") == "audio/wav"
    assert sniff_mime(b"ID3\x04\0") == "audio/mpeg"
    assert sniff_mime(b"\0\1\2\3", name="clip.MOV") == "video/quicktime"


def test_transcriber_setting_and_chunks_by_time(tmp_path: Path) -> None:
    assert transcriber_for("off") is None and transcriber_for("pocketsphinx") is not None
    with pytest.raises(Exception, match="faster-whisper model folder"):
        transcriber_for(str(tmp_path / "no-such-model"))
    words = [Word("a", 0.0, 0.5), Word("b", 0.6, 1.0), Word("c", 5.0, 5.5), Word("d", 5.6, 40.0)]
    assert list(chunk_words(words, pause=2.0, max_seconds=30)) == [("a b", 0.0, 1.0), ("c", 5.0, 5.5),
                                                                    ("d", 5.6, 40.0)]


def _frame(source: str, start: float, end: float) -> Element:
    return Element(kind="text", source=source, text="revenue", metadata={"start": start, "end": end})


def test_citations_to_the_second() -> None:
    e = _frame("/talks/talk.mp4", 751.4, 767.9)
    assert clock_span(751.4, 767.9) == "12:31–12:47" and clock_span(3723, 3724.2) == "1:02:03–1:02:04"
    assert breadcrumb(e) == "talk.mp4 @ 12:31–12:47"
    assert source_link(e) == "file:///talks/talk.mp4#t=751"
    hit = Hit(e, 1.0).to_dict()
    assert (hit["start"], hit["end"], hit["source_uri"]) == (751.4, 767.9, "file:///talks/talk.mp4#t=751")
    citation = Citation.for_element(1, e)
    assert citation.to_dict()["start"] == 751.4 and citation.section == "talk.mp4 @ 12:31–12:47"
    plain = Citation.for_element(2, Element(kind="text", source="/a.pdf", text="x", page=2))
    assert (plain.start, plain.end) == (None, None) and Hit(Element(kind="text", source="a", text="x"), 1).to_dict()[
        "start"] is None


def test_cli_prints_the_time_of_a_cited_stretch() -> None:
    import click

    from mmrag.cli._ask import print_sources

    e = _frame("talk.mp4", 751.0, 767.0)
    answer = Answer("q", "revenue [1]", "extractive", citations=(Citation.for_element(1, e),))

    @click.command()
    def show() -> None:
        print_sources(answer)

    out = CliRunner().invoke(show).output
    assert "[1] talk.mp4 @ 12:31–12:47 (text)" in out
    assert json.loads(json.dumps(answer.to_dict()))["citations"][0]["end"] == 767.0


@pytest.mark.integration  # the Nova block starts the loopback Bedrock emulator on 127.0.0.1
def test_the_python_blocks_of_docs_video_md_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As tests/e2e/test_readme.py runs them (it needs the quickstart collection): in a folder with tests/data."""
    import re

    root = Path(__file__).parents[2]
    blocks = re.findall(r"```python\n(.*?)```", (root / "docs" / "video.md").read_text(), flags=re.S)
    assert blocks
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(DATA, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/video.md", "exec"), {})
    assert (tmp_path / "talk.mp4").is_file() and (tmp_path / "clip.mp4").is_file()


def test_a_whisper_model_folder_is_loaded_locally_and_its_word_times_kept(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """faster-whisper itself is faked (its outputs only): no model ships with mmrag and none is downloaded."""
    import sys
    import types

    import numpy as np

    seen: dict[str, Any] = {}

    class FakeWhisperModel:
        def __init__(self, path: str, **kwargs: Any) -> None:
            seen.update(path=path, **kwargs)

        def transcribe(self, audio: Any, **kwargs: Any) -> tuple[Any, None]:
            seen.update(samples=len(audio), dtype=str(audio.dtype), peak=float(np.abs(audio).max()), **kwargs)
            w = types.SimpleNamespace
            return iter([w(words=[w(word=" Revenue", start=0.5, end=0.9), w(word=" grew.", start=0.9, end=1.3)]),
                         w(words=[w(word=" ", start=1.3, end=1.4)])]), None

    monkeypatch.setitem(sys.modules, "faster_whisper", types.SimpleNamespace(WhisperModel=FakeWhisperModel))
    model = tmp_path / "faster-whisper-tiny"
    model.mkdir()
    (model / "model.bin").write_bytes(b"weights")
    transcriber = transcriber_for(str(model))
    assert transcriber is not None and transcriber.name == "faster-whisper"
    pcm = [np.full(16_000, 16384, dtype="<i2").tobytes(), np.zeros(8_000, dtype="<i2").tobytes()]
    words = list(transcriber.transcribe(pcm))
    assert words == [Word("Revenue", 0.5, 0.9), Word("grew.", 0.9, 1.3)]
    assert seen["path"] == str(model) and seen["local_files_only"] is True and seen["word_timestamps"] is True
    assert (seen["samples"], seen["dtype"], seen["peak"]) == (24_000, "float32", 0.5)


def test_raw_frames_do_not_outlive_their_shot() -> None:
    """Memory stays flat with the length: each shot's frame is encoded and compared when the shot ends."""
    import numpy as np

    from mmrag.parsers.video import _BUFFER, _detector, _Distinct, _Frames

    rng = np.random.default_rng(7)
    pictures = [rng.integers(0, 255, (72, 128, 3), dtype=np.uint8) for _ in range(2)]
    frames = _Frames(3600.0, detector=_detector("t"), keep=_Distinct(10))
    for second in range(120):  # 40 shots of 3 s, alternating two pictures
        picture = pictures[second // 3 % 2]
        for half in (0.0, 0.5):
            frames.add(second + half, picture[:, :, ::-1].copy(), picture)
    distinct = frames.finish(120.0)
    assert len(distinct.kept) == 2 and all(isinstance(data, bytes) for _, _, data in distinct.kept)
    assert len(distinct.kept[0][1]["also_at"]) == 19 and len(frames.samples) <= _BUFFER
