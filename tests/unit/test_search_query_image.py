"""The query image of an image→image search: refused from its header, decoded once (by the embedder)."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from mmrag.errors import ParseError
from mmrag.retrievers.search import search_image


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buf, "PNG")
    return buf.getvalue()


class _Decoding:
    """An image embedder that decodes what it gets, as every real one does, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def embed_images(self, images: list[bytes]) -> list[list[float]]:
        self.calls += 1
        for data in images:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
        return [[1.0, 0.0] for _ in images]


def _providers(embedder: Any) -> Any:
    return SimpleNamespace(image_embedder=embedder)


def _collection() -> Any:
    return SimpleNamespace(image=SimpleNamespace(search=lambda vector, k, filter: []), objects=None)


def test_not_an_image_is_refused_before_the_embedder() -> None:
    embedder = _Decoding()
    with pytest.raises(ParseError, match=r"notes.txt: not an image \(no image format"):
        search_image(b"just some text", _providers(embedder), _collection(), name="notes.txt")
    assert embedder.calls == 0


def test_a_corrupt_body_fails_in_the_embedder_as_a_parse_error() -> None:
    truncated = _png()[:60]  # the header survives, the pixels do not
    embedder = _Decoding()
    with pytest.raises(ParseError, match="q.png: not a readable image"):
        search_image(truncated, _providers(embedder), _collection(), name="q.png")
    assert embedder.calls == 1  # the header passed: the one decode, in the embedder, failed


def test_a_good_image_reaches_the_index() -> None:
    embedder = _Decoding()
    assert search_image(_png(), _providers(embedder), _collection()) == []
    assert embedder.calls == 1
