"""The content-addressed sqlite model cache and its wrappers, with fake models."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from langchain_core.embeddings import Embeddings

from mmrag.elements import Element
from mmrag.providers.base import Captioner, ImageEmbedder
from mmrag.providers.cache import (
    CachedCaptioner,
    CachedEmbeddings,
    CachedImageEmbedder,
    ModelCache,
    cache_key,
    default_model_key,
)


class FakeEmbeddings(Embeddings):
    def __init__(self, dims: int = 4) -> None:
        self.dimensions = dims
        self.model_id = "fake-text"
        self.seen: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen += texts
        return [[float(len(t)) + i / 10 for i in range(self.dimensions)] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class FakeImageEmbedder:
    model_id = "fake-image"
    dimensions = 3
    supports_text_queries = True

    def __init__(self) -> None:
        self.images = 0
        self.texts = 0

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        self.images += len(images)
        caps = captions or [None] * len(images)
        return [[float(len(img)), float(len(c or "")), 0.5] for img, c in zip(images, caps, strict=True)]

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return [[0.0, float(len(t)), 1.0] for t in texts]


class FakeCaptioner:
    model_id = "fake-captioner"
    cache_key = "fake-captioner|v1"

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.seen: list[Element] = []

    def caption(self, elements: Sequence[Element]) -> list[Element]:
        self.seen += elements
        out = []
        for e in elements:
            if e.text in self.fail or e.kind == "text":
                out.append(e)
            else:
                key = "summary" if e.kind == "table" else "caption"
                out.append(replace(e, metadata={**e.metadata, key: f"about {e.text}", "caption_model": self.model_id}))
        return out


def test_vectors_and_texts_round_trip(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache" / "models.sqlite")
    cache.put_vectors({"a": [0.5, -1.25, 3.0], "b": [0.1]})
    cache.put_texts({"c": "ünïcode caption"})
    assert cache.get_vectors(["a", "missing", "a"]) == {"a": [0.5, -1.25, 3.0]}
    assert abs(cache.get_vectors(["b"])["b"][0] - 0.1) < 1e-7  # stored as float32
    assert cache.get_texts(["c"]) == {"c": "ünïcode caption"}
    assert len(cache) == 3
    cache.close()
    reopened = ModelCache(tmp_path / "cache" / "models.sqlite")
    assert reopened.get_texts(["c"]) == {"c": "ünïcode caption"}
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_large_batches(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "m.sqlite")
    cache.put_vectors({f"k{i}": [float(i)] for i in range(1500)})
    found = cache.get_vectors([f"k{i}" for i in range(0, 1600, 2)])
    assert len(found) == 750 and found["k1498"] == [1498.0]


def test_thread_safe(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "m.sqlite")

    def work(n: int) -> None:
        for i in range(50):
            cache.put_vectors({f"{n}-{i}": [float(i)]})
            assert cache.get_vectors([f"{n}-{i}"]) == {f"{n}-{i}": [float(i)]}

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 400


def test_keys_depend_on_kind_model_and_content() -> None:
    base = cache_key("text-embedding", "m|dims=4", "h")
    assert base == cache_key("text-embedding", "m|dims=4", "h")
    assert len({base, cache_key("image-embedding", "m|dims=4", "h"), cache_key("text-embedding", "m|dims=8", "h"),
                cache_key("text-embedding", "m|dims=4", "h2")}) == 4
    assert default_model_key(FakeEmbeddings()) == "fake-text|dims=4"
    assert default_model_key(FakeCaptioner()) == "fake-captioner|v1"


def test_cached_embeddings_only_ask_for_misses(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "m.sqlite")
    inner = FakeEmbeddings()
    emb = CachedEmbeddings(inner, cache)
    first = emb.embed_documents(["one", "two", "one"])
    assert inner.seen == ["one", "two"] and (emb.hits, emb.misses) == (0, 3)
    assert emb.embed_documents(["two", "one", "three"]) == [first[1], first[0], emb.embed_query("three")]
    assert inner.seen == ["one", "two", "three"] and emb.hits == 3
    other = FakeEmbeddings(dims=8)
    CachedEmbeddings(other, cache).embed_documents(["one"])
    assert other.seen == ["one"]  # different dims, different key
    again = asyncio.run(CachedEmbeddings(FakeEmbeddings(), cache).aembed_documents(["one", "two"]))
    assert again == first[:2]


def test_cached_image_embedder(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "m.sqlite")
    inner = FakeImageEmbedder()
    emb = CachedImageEmbedder(inner, cache)
    assert isinstance(emb, ImageEmbedder) and emb.model_id == "fake-image" and emb.dimensions == 3
    vectors = emb.embed_images([b"aa", b"bbb", b"aa"], ["x", None, "x"])
    assert inner.images == 2 and vectors[0] == vectors[2]
    assert emb.embed_images([b"aa", b"bbb"], ["x", None]) == vectors[:2] and inner.images == 2
    emb.embed_images([b"aa"], ["a different caption"])
    assert inner.images == 3
    assert emb.embed_texts(["q", "q"]) == emb.embed_texts(["q"]) * 2 and inner.texts == 1


def test_cached_captioner_skips_hits_and_never_caches_failures(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "m.sqlite")
    inner = FakeCaptioner(fail={"broken"})
    captioner = CachedCaptioner(inner, cache)
    assert isinstance(captioner, Captioner)
    elements = [
        Element("image", "a.pdf", text="chart", data=b"png-1"),
        Element("table", "a.pdf", text="| a |"),
        Element("text", "a.pdf", text="plain"),
        Element("image", "a.pdf", text="broken", data=b"png-2"),
    ]
    first = captioner.caption(elements)
    assert first[0].metadata["caption"] == "about chart" and first[1].metadata["summary"] == "about | a |"
    assert first[2] is elements[2] and first[3] == elements[3]
    assert len(inner.seen) == 3 and captioner.misses == 3
    second = captioner.caption(elements)
    assert second[:3] == first[:3] and second[0].metadata["caption_model"] == "fake-captioner"
    assert len(inner.seen) == 4 and inner.seen[-1] == elements[3]  # only the failed one is asked again
    moved = Element("image", "b.pdf", text="chart", data=b"png-1")  # same bytes and context elsewhere: a hit
    assert captioner.caption([moved])[0].metadata["caption"] == "about chart" and len(inner.seen) == 4
    new_context = Element("image", "a.pdf", text="another context", data=b"png-1")
    captioner.caption([new_context])
    assert len(inner.seen) == 5
    assert asyncio.run(captioner.acaption(elements[:2])) == first[:2]


class FakeOcrCaptioner:
    """Like LocalCaptioner on a scanned page: a short caption plus the full OCR text in ``ocr_text``."""

    model_id = "fake-ocr"
    cache_key = "fake-ocr|v1"

    def __init__(self) -> None:
        self.seen = 0

    def caption(self, elements: Sequence[Element]) -> list[Element]:
        self.seen += len(elements)
        full = "scanned words " * 300
        return [replace(e, metadata={**e.metadata, "caption": "Text in the image (OCR): " + full[:50],
                                     **({"ocr_text": full} if e.metadata.get("needs_ocr") else {})})
                for e in elements]


def test_cached_captioner_keeps_the_full_ocr_text_of_scanned_pages(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "m.sqlite")
    page = Element("page", "scan.pdf", page=1, data=b"png-page", metadata={"needs_ocr": True})
    image = Element("image", "scan.pdf", text="fig", data=b"png-img")
    first = CachedCaptioner(FakeOcrCaptioner(), cache).caption([page, image])
    inner = FakeOcrCaptioner()
    again = CachedCaptioner(inner, cache).caption([page, image])  # a new run over the same cache
    assert inner.seen == 0
    assert again[0].metadata["ocr_text"] == first[0].metadata["ocr_text"] == "scanned words " * 300
    assert "ocr_text" not in again[1].metadata and again[1].metadata["caption"] == first[1].metadata["caption"]
    # A cache written before the OCR text was kept (caption only) asks again for the scanned page.
    old = ModelCache(tmp_path / "old.sqlite")
    captioner = CachedCaptioner(FakeOcrCaptioner(), old)
    old.put_texts({captioner._key(page): "Text in the image (OCR): scanned"})
    assert captioner.caption([page])[0].metadata["ocr_text"] == "scanned words " * 300
    assert captioner.counters.misses == 1
