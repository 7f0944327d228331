"""The OCR cache: each distinct image is read once per process, and once per content across runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.errors import ProviderError
from mmrag.providers.base import CAPTION_KEY
from mmrag.providers.cache import CachedOcrEngine, ModelCache
from mmrag.providers.local.local_caption import LocalCaptioner
from mmrag.providers.local.ocr import OcrResult


class _Engine:
    """Reads the byte length as text; fails on b"bad"; can hold its first read until released."""

    name = "fake-engine"
    cache_key = "fake-engine|v1"

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.reads: list[bytes] = []
        self.hold = hold
        self.started = threading.Event()
        self._lock = threading.Lock()

    def read(self, image: bytes) -> OcrResult:
        with self._lock:
            self.reads.append(image)
        self.started.set()
        if self.hold is not None:
            assert self.hold.wait(30)
        if image == b"bad":
            raise ProviderError("cannot decode the image for OCR")
        return OcrResult(text=f"n{len(image)}", lines=((f"n{len(image)}", 0.9, (1.0, 2.0, 3.0, 4.0)),),
                         engine=self.name)


def test_reads_once_per_process_without_a_store() -> None:
    inner = _Engine()
    ocr = CachedOcrEngine(inner)
    assert ocr.read(b"abc") == ocr.read(b"abc") == OcrResult("n3", (("n3", 0.9, (1.0, 2.0, 3.0, 4.0)),), "fake-engine")
    assert inner.reads == [b"abc"] and (ocr.hits, ocr.misses) == (1, 1)
    assert ocr.name == "fake-engine"


def test_results_survive_the_process_in_the_model_cache(tmp_path: Path) -> None:
    first = _Engine()
    CachedOcrEngine(first, ModelCache(tmp_path / "m.sqlite")).read(b"image-bytes")
    second = _Engine()
    again = CachedOcrEngine(second, ModelCache(tmp_path / "m.sqlite")).read(b"image-bytes")
    assert second.reads == [] and again.text == "n11" and again.lines[0][2] == (1.0, 2.0, 3.0, 4.0)

    class Other(_Engine):
        cache_key = "fake-engine|v2"  # another model or threshold: not served the old result

    other = Other()
    CachedOcrEngine(other, ModelCache(tmp_path / "m.sqlite")).read(b"image-bytes")
    assert other.reads == [b"image-bytes"]


def test_failures_are_not_kept(tmp_path: Path) -> None:
    inner = _Engine()
    ocr = CachedOcrEngine(inner, ModelCache(tmp_path / "m.sqlite"))
    for _ in range(2):
        with pytest.raises(ProviderError):
            ocr.read(b"bad")
    assert inner.reads == [b"bad", b"bad"]


def test_concurrent_reads_of_one_image_wait_for_the_first() -> None:
    hold = threading.Event()
    inner = _Engine(hold)
    ocr = CachedOcrEngine(inner)
    results: list[OcrResult] = []
    threads = [threading.Thread(target=lambda: results.append(ocr.read(b"same"))) for _ in range(3)]
    threads[0].start()
    assert inner.started.wait(30)  # the first read is under way...
    for t in threads[1:]:
        t.start()  # ...the others arrive while it runs
    hold.set()
    for t in threads:
        t.join(30)
    assert inner.reads == [b"same"] and [r.text for r in results] == ["n4"] * 3


def test_captioner_in_slices_reads_a_shared_image_once() -> None:
    inner = _Engine()
    captioner = LocalCaptioner(CachedOcrEngine(inner), max_workers=2)
    picture = b"the same picture bytes"
    size = {"width": 64, "height": 48}
    page_copy = Element(kind="image", source="page.html", text="Figure 1 alt text", data=picture, metadata=size)
    file_copy = Element(kind="image", source="figure.png", data=picture, metadata=size)
    out = captioner.caption([page_copy]) + captioner.caption([file_copy])  # two batches, as ingest sends them
    assert inner.reads == [picture]
    assert out[0].metadata[CAPTION_KEY] == out[1].metadata[CAPTION_KEY] == f"Text in the image (OCR): n{len(picture)}"


def test_factory_wires_the_ocr_cache(tmp_path: Path) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    from mmrag.providers.factory import build_providers

    providers = build_providers(Settings(home=tmp_path, profile="local", ocr="rapidocr", cache=True))
    ocr = providers.captioner.inner.ocr  # type: ignore[attr-defined]
    assert isinstance(ocr, CachedOcrEngine) and ocr.cache is not None
    assert ocr.name.startswith("rapidocr-")
    uncached = build_providers(Settings(home=tmp_path / "b", profile="local", ocr="rapidocr", cache=False))
    ocr = uncached.captioner.ocr  # type: ignore[attr-defined]
    assert isinstance(ocr, CachedOcrEngine) and ocr.cache is None
