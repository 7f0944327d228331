"""LocalImageEmbedder: image→image search over the corpus images must rank the original of each query first."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from mmrag.errors import ConfigError
from mmrag.providers.base import ImageEmbedder
from mmrag.providers.local.local_image import LocalImageEmbedder


def _encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _mirror_rotate(img: Image.Image) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(10, fillcolor="white")


def _recolour(img: Image.Image) -> Image.Image:
    img = ImageEnhance.Color(img).enhance(0.3)
    img = ImageEnhance.Brightness(img).enhance(1.3)
    img = ImageEnhance.Contrast(img).enhance(0.8)
    r, g, b = img.split()
    return Image.merge("RGB", (b, g, r))


def _blur_jpeg_crop(img: Image.Image) -> Image.Image:
    w, h = img.size
    img = img.crop((int(w * 0.2), 0, int(w * 0.8), h)).filter(ImageFilter.GaussianBlur(2))
    return Image.open(io.BytesIO(_encode(img, "JPEG", quality=30)))


def _chart_crop(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((0, 0, int(w * 0.6), int(h * 0.8)))


# The corpus's own derived queries (files) and the transforms of its SOURCES.md redone here with Pillow on
# the downscaled gallery copies (q03, q04, q05, q07: their files are not in the corpus).
FILE_QUERIES = [
    ("q01_crop.jpg", "img_002"),  # central 50% x 70% crop (cat head), JPEG q90
    ("q02_gray_small.png", "img_003"),  # grayscale, downscaled to 1/3
    ("q06_thumb_border.png", "img_020"),  # 128 px wide, 12 px black border
]
DERIVED_QUERIES = [
    ("q03_mirror_rotate", "img_016", _mirror_rotate),  # mirror + 10° rotation, white fill
    ("q04_recolour", "img_014", _recolour),  # desaturate 0.3, brighten 1.3, contrast 0.8, swap R and B
    ("q05_blur_jpeg_crop", "img_004", _blur_jpeg_crop),  # central 60% width, Gaussian blur r=2, JPEG q30
    ("q07_chart_crop", "img_030", _chart_crop),  # left 60% x top 80% of a bar chart
]


@pytest.fixture(scope="module")
def i2i_dir(data_dir: Path) -> Path:
    return data_dir / "i2i"


@pytest.fixture(scope="module")
def gallery(i2i_dir: Path) -> tuple[list[str], np.ndarray]:
    paths = sorted((i2i_dir / "gallery").glob("img_*.jpg"))
    assert len(paths) == 34
    vectors = LocalImageEmbedder().embed_images([p.read_bytes() for p in paths])
    return [p.stem for p in paths], np.array(vectors)


def _ranking(gallery: tuple[list[str], np.ndarray], query: bytes) -> list[str]:
    names, matrix = gallery
    scores = matrix @ np.array(LocalImageEmbedder().embed_images([query])[0])
    return [names[i] for i in np.argsort(-scores)]


@pytest.mark.parametrize("query_file,expected", FILE_QUERIES)
def test_corpus_queries_rank_original_first(
    gallery: tuple[list[str], np.ndarray], i2i_queries: Path, query_file: str, expected: str
) -> None:
    assert _ranking(gallery, (i2i_queries / query_file).read_bytes())[0] == expected


@pytest.mark.parametrize("name,expected,transform", DERIVED_QUERIES, ids=[q[0] for q in DERIVED_QUERIES])
def test_derived_queries_rank_original_first(
    gallery: tuple[list[str], np.ndarray], i2i_dir: Path, name: str, expected: str, transform: object
) -> None:
    assert callable(transform)
    original = Image.open(i2i_dir / "gallery" / f"{expected}.jpg").convert("RGB")
    assert _ranking(gallery, _encode(transform(original)))[0] == expected


def test_vectors_unit_length_and_protocol(gallery: tuple[list[str], np.ndarray]) -> None:
    embedder = LocalImageEmbedder()
    assert isinstance(embedder, ImageEmbedder)
    assert embedder.model_id == "local:image-descriptor-v1" and embedder.supports_text_queries is False
    _, matrix = gallery
    assert matrix.shape == (34, embedder.dimensions)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_exact_invariances(i2i_dir: Path) -> None:
    """Mirror and channel swaps give the same vector; captions are ignored; formats and modes are accepted."""
    embedder = LocalImageEmbedder()
    img = Image.open(i2i_dir / "gallery" / "img_018.jpg").convert("RGB")
    r, g, b = img.split()
    variants = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    vecs = np.array(embedder.embed_images([_encode(v) for v in variants], captions=["candies", None]))
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-5)
    swapped = np.array(embedder.embed_images([_encode(Image.merge("RGB", (g, b, r)))])[0])
    assert float(vecs[0] @ swapped) > 0.95  # only the low-weight hue histogram changes
    rgba = img.convert("RGBA")
    odd = [_encode(img.convert("P")), _encode(rgba), _encode(img, "WEBP"), _encode(Image.new("L", (1, 1)))]
    assert all(len(v) == embedder.dimensions for v in embedder.embed_images(odd))


def test_borders_are_trimmed(i2i_dir: Path) -> None:
    img = Image.open(i2i_dir / "gallery" / "img_013.jpg").convert("RGB")
    framed = Image.new("RGB", (img.width + 60, img.height + 30), "white")
    framed.paste(img, (30, 15))
    a, b = LocalImageEmbedder().embed_images([_encode(img), _encode(framed)])
    assert float(np.dot(a, b)) > 0.98


def test_embed_texts_explains_the_alternative() -> None:
    with pytest.raises(ConfigError, match="captions/OCR text in the text space"):
        LocalImageEmbedder().embed_texts(["a cat"])


def test_not_an_image_raises() -> None:
    from PIL import UnidentifiedImageError

    with pytest.raises(UnidentifiedImageError):
        LocalImageEmbedder().embed_images([b"not an image"])
