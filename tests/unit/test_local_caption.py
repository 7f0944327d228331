"""LocalCaptioner: OCR captions on real images and a scanned PDF page, deterministic table summaries."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mmrag.elements import Element
from mmrag.errors import ProviderError
from mmrag.parsers import parse_source
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY, Captioner
from mmrag.providers.local.local_caption import LocalCaptioner, summarize_table
from mmrag.providers.local.ocr import OcrResult, RapidOcrEngine

DATA = Path(__file__).parent.parent / "data"

pytest.importorskip("rapidocr_onnxruntime")


@pytest.fixture(scope="module")
def captioner() -> Iterator[LocalCaptioner]:
    """A captioner over one RapidOCR engine for the module: the models load once."""
    engine = RapidOcrEngine()
    engine.warm_up()
    yield LocalCaptioner(engine)


def _image(path: Path) -> Element:
    result = parse_source(str(path))
    assert result.ok and len(result.elements) == 1
    element: Element = result.elements[0]
    return element


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, format="PNG")
    return buf.getvalue()


class _FakeOcr:
    """Returns the image's byte length as text, fails on bytes starting with b"bad", records the threads used."""

    name = "fake"

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.reads: list[bytes] = []

    def read(self, image: bytes) -> OcrResult:
        self.threads.add(threading.current_thread().name)
        self.reads.append(image)
        if image.startswith(b"bad"):
            raise ProviderError("cannot decode the image for OCR")
        return OcrResult(text=f"n{len(image)}", lines=(), engine=self.name)


def test_is_a_captioner() -> None:
    assert isinstance(LocalCaptioner(None), Captioner)


def test_street_sign_caption(captioner: LocalCaptioner) -> None:
    el = _image(DATA / "ocr" / "img_027.jpg")
    [out] = captioner.caption([el])
    caption = out.metadata[CAPTION_KEY]
    assert caption.startswith("Text in the image (OCR): ")
    assert all(w in caption.upper() for w in ("NOTICE", "DOUBLE", "PARKING", "PROHIBITED"))
    assert out.metadata["caption_model"] == "local:ocr-rapidocr-ppocrv5"
    assert out.id == el.id and out.text == el.text and out.data == el.data
    assert out.metadata["width"] == 800 and "ocr_text" not in out.metadata  # parser metadata kept; not a page


def test_chart_caption(captioner: LocalCaptioner) -> None:
    [out] = captioner.caption([_image(DATA / "images" / "img_029.png")])
    assert "setosa" in out.metadata[CAPTION_KEY] and "Predicted label" in out.metadata[CAPTION_KEY]


def test_scanned_pdf_page_becomes_searchable(captioner: LocalCaptioner) -> None:
    result = parse_source(str(DATA / "pdf" / "ocrmypdf-c03-29.pdf"))
    [page] = [el for el in result.elements if el.kind == "page"]
    assert page.metadata["needs_ocr"] and page.text == ""
    out = captioner.caption(result.elements)
    assert [el.id for el in out] == [el.id for el in result.elements]
    captioned = next(el for el in out if el.kind == "page")
    ocr_text = captioned.metadata["ocr_text"]
    for phrase in ("Miss Watson", "the widow", "no hooks", "I was a fool", "spiritual gifts"):
        assert phrase in ocr_text
    assert len(ocr_text.splitlines()) > 20  # one line per printed line, in reading order
    assert ocr_text.index("Miss Watson") < ocr_text.index("spiritual gifts")
    assert captioned.metadata[CAPTION_KEY].startswith("Text in the image (OCR): ")
    assert captioned.metadata["ocr_reason"] == "no text layer"


def test_no_text_found(captioner: LocalCaptioner) -> None:
    el = Element(kind="image", source="blank.png", data=_png((320, 200)), mime_type="image/png")
    [out] = captioner.caption([el])
    assert out.metadata[CAPTION_KEY] == "Image, 320×200 px; no text found by OCR."
    assert out.metadata["caption_model"] == "local:ocr-rapidocr-ppocrv5"


def test_ocr_off_gives_an_honest_caption() -> None:
    el = _image(DATA / "ocr" / "img_027.jpg")
    page = Element(kind="page", source="scan.pdf", page=1, data=_png((100, 140)), metadata={"needs_ocr": True})
    out = LocalCaptioner(None).caption([el, page])
    assert out[0].metadata[CAPTION_KEY] == "Image, 800×600 px; OCR is off, no description available offline."
    assert out[1].metadata[CAPTION_KEY] == "Page render, 100×140 px; OCR is off, no description available offline."
    assert {o.metadata["caption_model"] for o in out} == {"local:none"}
    assert "ocr_text" not in out[1].metadata


def test_mixed_elements_keep_order_ids_and_bad_images(caplog: pytest.LogCaptureFixture) -> None:
    fake = _FakeOcr()
    elements = [
        Element(kind="text", source="a", text="plain text"),
        Element(kind="image", source="a", data=_png((40, 30)), metadata={"width": 40, "height": 30}),
        Element(kind="table", source="a", text="| x | y |\n|---|---|\n| 1 | 2 |"),
        Element(kind="image", source="a", data=b"bad bytes", metadata={"width": 5, "height": 5}),
        Element(kind="image", source="a", object_key="stored-elsewhere"),  # no data: nothing to read
        Element(kind="page", source="a", page=2, data=_png((50, 70)), metadata={"needs_ocr": True}),
        Element(kind="image", source="a", data=b"bad header, not an image"),
    ]
    with caplog.at_level(logging.WARNING, logger="mmrag.providers.local.local_caption"):
        out = LocalCaptioner(fake, max_workers=3).caption(elements)
    assert [o.id for o in out] == [e.id for e in elements]
    assert out[0] is elements[0] and out[4] is elements[4]
    assert out[1].metadata[CAPTION_KEY] == f"Text in the image (OCR): n{len(elements[1].data or b'')}"
    assert out[1].metadata["caption_model"] == "local:ocr-fake"
    assert out[2].metadata[SUMMARY_KEY] == "Table (1 row × 2 columns) with columns: x, y."
    assert out[3] == elements[3] and out[6] == elements[6]  # unreadable: unchanged, never dropped
    assert out[5].metadata["ocr_text"].startswith("n")
    assert len([r for r in caplog.records if "cannot caption" in r.getMessage()]) == 2
    assert all(name.startswith("mmrag-ocr") for name in fake.threads)  # read in the thread pool


def test_each_distinct_image_is_read_once() -> None:
    fake = _FakeOcr()
    logo, chart = _png((40, 30)), _png((300, 200))
    elements = [Element(kind="image", source=f"page{i}.html", text=f"context {i}", data=logo) for i in range(5)]
    elements += [Element(kind="image", source="a.html", data=chart),
                 Element(kind="image", source="b.html", data=b"bad"),
                 Element(kind="image", source="c.html", text="again", data=b"bad")]
    out = LocalCaptioner(fake, max_workers=1).caption(elements)
    assert len(chart) > len(logo) > len(b"bad")
    assert fake.reads == [chart, logo, b"bad"]  # each once (the logo is on five pages), the biggest first
    assert [o.metadata[CAPTION_KEY] for o in out[:5]] == [f"Text in the image (OCR): n{len(logo)}"] * 5
    assert out[6] == elements[6] and out[7] == elements[7]  # an unreadable image fails each of its elements


def test_rapidocr_runs_one_thread_per_call() -> None:
    engine = RapidOcrEngine()
    engine.warm_up()
    for stage in (engine._engine.text_det.infer, engine._engine.text_cls.infer, engine._engine.text_rec.session):
        options = stage.session.get_session_options()
        assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_caption_is_cut_and_whitespace_collapsed() -> None:
    class Wordy:
        name = "wordy"

        def read(self, image: bytes) -> OcrResult:
            return OcrResult(text="alpha   beta\n\n" + "word " * 1000, lines=(), engine=self.name)

    el = Element(kind="page", source="s.pdf", page=1, data=_png((10, 10)), metadata={"needs_ocr": True})
    [out] = LocalCaptioner(Wordy()).caption([el])
    caption = out.metadata[CAPTION_KEY]
    assert caption.startswith("Text in the image (OCR): alpha beta word word") and caption.endswith("…")
    assert len(caption) <= len("Text in the image (OCR): ") + 2001
    assert out.metadata["ocr_text"].startswith("alpha beta\nword word") and len(out.metadata["ocr_text"]) > 4000


def test_table_summary_from_a_real_pdf_table() -> None:
    result = parse_source(str(DATA / "pdf" / "tabula-data.pdf"))
    mtcars = next(el for el in result.elements if el.kind == "table" and "mpg" in el.metadata["header"])
    [out] = LocalCaptioner(None).caption([mtcars])
    summary = out.metadata[SUMMARY_KEY]
    assert summary.startswith("Table (32 rows × 12 columns) with columns: mpg, cyl, disp, hp, drat, wt, qsec")
    assert "Rows (first column): Mazda RX4, Mazda RX4 Wag, Datsun 710, Hornet 4 Drive, Hornet Sportabout" in summary
    assert "and 27 more" in summary
    assert out.metadata["caption_model"] == "local:table-summary"
    assert out.id == mtcars.id and out.text == mtcars.text
    assert LocalCaptioner(None).caption([mtcars])[0].metadata[SUMMARY_KEY] == summary  # deterministic


def test_table_summary_with_context_and_only_markdown() -> None:
    text = ("Table 2: Seat numbers by party.\n\n| Party | Seats |\n|---|---|\n| Red | 10 |\n| Blue | 7 |\n"
            "| Green | 3 |")
    el = Element(kind="table", source="x.html", text=text)
    assert summarize_table(el) == ("Table (3 rows × 2 columns) with columns: Party, Seats. "
                                   "Rows ('Party' column): Red, Blue, Green. Context: Table 2: Seat numbers by party.")


def test_page_with_a_text_layer_is_not_read_by_ocr() -> None:
    fake = _FakeOcr()
    layer = Element(kind="page", source="doc.pdf", page=2, text="Results  of the\nsurvey", data=_png((300, 400)))
    scanned = Element(kind="page", source="scan.pdf", page=1, data=_png((300, 401)), metadata={"needs_ocr": True})
    out = LocalCaptioner(fake).caption([layer, scanned])
    assert fake.reads == [scanned.data]  # only the page without a usable text layer
    assert out[0].metadata[CAPTION_KEY] == "Page render, 300×400 px; text layer: Results of the survey"
    assert out[0].metadata["caption_model"] == "local:text-layer"
    assert out[1].metadata["ocr_text"] == f"n{len(scanned.data or b'')}"


def test_tiny_images_hold_no_text_and_are_not_read(captioner: LocalCaptioner) -> None:
    arrow = Element(kind="image", source="up.gif", data=_png((11, 11)))
    out = captioner.caption([arrow])
    assert out[0].metadata[CAPTION_KEY] == "Image, 11×11 px; no text found by OCR."
    assert captioner.ocr is not None and isinstance(captioner.ocr, RapidOcrEngine)


def test_vector_figure_with_its_labels_in_the_text_layer_is_not_read_by_ocr() -> None:
    fake = _FakeOcr()
    labels = {"figure": "vector", "text_layer": "OLS-based  CUSUM test\nTime"}
    labelled = Element(kind="image", source="doc.pdf", page=3, text="Figure 3: OLS-based CUSUM process",
                       data=_png((374, 232)), metadata=labels)
    outlined = Element(kind="image", source="doc.pdf", page=4, text="Figure 4", data=_png((374, 233)),
                       metadata={"figure": "vector"})  # labels drawn as paths: nothing in the text layer
    out = LocalCaptioner(fake).caption([labelled, outlined])
    assert fake.reads == [outlined.data]
    assert out[0].metadata[CAPTION_KEY] == "Text in the figure (PDF text layer): OLS-based CUSUM test Time"
    assert out[0].metadata["caption_model"] == "local:text-layer"
    assert out[1].metadata[CAPTION_KEY] == f"Text in the image (OCR): n{len(outlined.data or b'')}"


def test_captions_do_not_depend_on_which_read_finishes_first() -> None:
    import random
    import time

    class Jittery(_FakeOcr):
        def read(self, image: bytes) -> OcrResult:
            time.sleep(random.uniform(0, 0.02))  # reads finish in a different order every run
            return super().read(image)

    elements = [Element(kind="image", source=f"p{i}.html", text=f"context {i}", data=_png((20 + i, 20)))
                for i in range(24)]
    elements.append(Element(kind="image", source="bad.html", data=b"bad"))
    sequential = LocalCaptioner(_FakeOcr(), max_workers=1).caption(elements)
    for _ in range(3):
        assert LocalCaptioner(Jittery(), max_workers=4).caption(elements) == sequential
