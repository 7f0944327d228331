"""An offline image descriptor for image→image search: the local profile's image space (Pillow + numpy only).

It finds the same picture again after resizing, cropping, recolouring, mild blur or JPEG, grayscale,
small rotations, mirroring and added borders. It knows nothing about meaning: two different photos of
cats are not close. Text→image search in the local profile goes through captions/OCR text in the text space.

The vector concatenates weighted, separately normalised blocks (cosine similarity = weighted mean of the
blocks' cosines), all computed after trimming uniform borders:

* ``dct``: low-frequency DCT coefficients of the grayscale image (a perceptual hash kept as real numbers);
* ``hog``: gradient-orientation histograms on a 4x4 grid (HOG-like);
* ``glob``: a whole-image orientation histogram at two scales (survives crops that move the grid);
* ``colour``: hue/saturation/value histograms, weighted low because recolouring must not break matches.

Grayscale is the mean of R, G and B, which a channel swap leaves unchanged. Mirror invariance is exact:
``hog`` adds each cell's mirrored twin, ``dct`` keeps only the magnitude of horizontally odd frequencies.
Crops: ``dct`` and ``hog`` sum the features of the whole image and of its central region (60% of each
side) into the same slots (sum pooling), so a query that *is* the central region still shares a term with
its original. Histogram blocks are mean-centred before normalising, so their cosines are correlations.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache

import numpy as np
import numpy.typing as npt

from mmrag.errors import ConfigError

__all__ = ["LocalImageEmbedder"]

F32 = npt.NDArray[np.float32]

_WORK_PX = 160  # images are reduced to this long edge before anything else: speed, and blur/JPEG noise fades
_DCT_N = 32
_DCT_K = 8
_GRID = 4
_BINS = 8
_HOG_PX = 64
_SCALES = (1.0, 0.6)  # side fractions of the central regions whose features are summed (1.0: whole image)
_TRIM_TOL = 24.0  # max deviation (0-255) of a border pixel from the border colour
_TRIM_FRACTION = 0.97  # share of a row/column's pixels that must match for it to count as border
_TRIM_MAX = 0.3  # never trim more than this fraction of a side

# Block weights: how much each block's cosine counts in the final cosine similarity. Chosen on the corpus's
# image→image queries (tests/unit/test_local_image.py): the grid of orientation histograms separates best;
# DCT coefficients are exact for rescaled copies but shift under crops; colour must survive recolouring.
_WEIGHTS = {"dct": 0.5, "hog": 1.5, "glob": 0.5, "colour": 0.25}


@cache
def _dct_matrix(n: int) -> F32:
    """Orthonormal DCT-II matrix: ``C @ x`` is the DCT of a length-n signal."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    out: F32 = c.astype(np.float32)
    return out


def _centred(v: F32) -> F32:
    """Mean-free and unit length: cosine of two such vectors is their Pearson correlation. Histograms are
    all-positive, so their plain cosines crowd near 1 for any pair of images; centring spreads them out."""
    return _unit(v - v.mean())


def _unit(v: F32) -> F32:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 1e-12 else np.zeros_like(v)


def _load(data: bytes) -> F32:
    """Decode to an RGB float array whose long edge is at most ``_WORK_PX``."""
    from PIL import Image, ImageOps  # here, not at the top: `mmrag ask` loads this module but reads no image

    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", (_WORK_PX * 2, _WORK_PX * 2))  # JPEG: decode at a reduced scale, much faster
        img: Image.Image = ImageOps.exif_transpose(opened)
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:  # flatten onto white, as viewers do
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        else:
            img = img.convert("RGB")
        factor = max(img.size) // (_WORK_PX * 2)
        if factor > 1:
            img = img.reduce(factor)
        img.thumbnail((_WORK_PX, _WORK_PX), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.float32)


def _trim(rgb: F32) -> F32:
    """Remove uniform borders (letterboxing, frames, padding), each side against its own outermost colour."""
    h, w = rgb.shape[:2]

    def run(lines: F32, limit: int) -> int:
        colour = np.median(lines[0], axis=0)
        close = (np.abs(lines[:limit] - colour).max(axis=-1) <= _TRIM_TOL).mean(axis=1) >= _TRIM_FRACTION
        n = int(np.argmin(close)) if not close.all() else limit
        return min(n + 1, limit) if n else 0  # one more: the row where resampling blended border and picture

    top = run(rgb, int(h * _TRIM_MAX))
    bottom = run(rgb[::-1], int(h * _TRIM_MAX))
    left = run(rgb.transpose(1, 0, 2), int(w * _TRIM_MAX))
    right = run(rgb.transpose(1, 0, 2)[::-1], int(w * _TRIM_MAX))
    return rgb[top : h - bottom, left : w - right]


def _resize(gray: F32, size: int) -> F32:
    from PIL import Image

    return np.array(Image.fromarray(gray, mode="F").resize((size, size), Image.Resampling.BILINEAR), np.float32)


def _centre(a: F32, fraction: float) -> F32:
    h, w = a.shape[:2]
    dh, dw = int(h * (1 - fraction) / 2), int(w * (1 - fraction) / 2)
    return a[dh : h - dh, dw : w - dw]


def _dct_block(gray: F32) -> F32:
    """Low-frequency DCT coefficients without DC, mirror-invariant (odd horizontal frequencies by magnitude)."""
    x = _resize(gray, _DCT_N)
    x -= x.mean()
    c = _dct_matrix(_DCT_N)
    coef = np.asarray((c @ x @ c.T)[:_DCT_K, :_DCT_K], dtype=np.float32)
    coef[:, 1::2] = np.abs(coef[:, 1::2])
    return _unit(coef.reshape(-1)[1:])


def _orientation_histograms(gray: F32, grid: int) -> F32:
    """Gradient-magnitude weighted, softly binned unsigned orientation histograms, shape (grid, grid, bins)."""
    g = _resize(gray, _HOG_PX)
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gy[1:-1, :] = g[2:, :] - g[:-2, :]
    mag = np.hypot(gx, gy)
    pos = (np.arctan2(gy, gx) % np.pi) * (_BINS / np.pi)  # bin centres at k*pi/BINS
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo).astype(np.float32)
    cell = _HOG_PX // grid
    rows = np.arange(_HOG_PX) // cell
    cell_index = (rows[:, None] * grid + rows[None, :]) * _BINS
    size = grid * grid * _BINS
    hist = np.bincount((cell_index + lo % _BINS).ravel(), (mag * (1 - frac)).ravel(), minlength=size)
    hist += np.bincount((cell_index + (lo + 1) % _BINS).ravel(), (mag * frac).ravel(), minlength=size)
    return hist.astype(np.float32).reshape(grid, grid, _BINS)


def _mirror_sum(hist: F32) -> F32:
    """``h + mirror(h)``: a horizontal flip swaps columns j↔grid-1-j and orientations k↔(-k mod bins)."""
    flipped = hist[:, ::-1, :][:, :, (-np.arange(_BINS)) % _BINS]
    return hist + flipped


def _hog_block(gray: F32) -> F32:
    h = _mirror_sum(_orientation_histograms(gray, _GRID))
    h = h / (np.linalg.norm(h, axis=-1, keepdims=True) + 1e-3 * float(h.sum()) / h[..., 0].size + 1e-6)
    return _centred(np.sqrt(h).reshape(-1))


def _glob_block(gray: F32) -> F32:
    parts = []
    for g in (gray, _centre(gray, _SCALES[-1])):
        h = _mirror_sum(_orientation_histograms(g, 1)).reshape(-1)
        parts.append(_centred(np.sqrt(h)))
    return _unit(np.concatenate(parts))


def _colour_block(rgb: F32) -> F32:
    from PIL import Image

    """Hue histogram (weighted by saturation) plus saturation and value histograms."""
    small = Image.fromarray(rgb.astype(np.uint8), mode="RGB").resize((32, 32), Image.Resampling.BILINEAR)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float32).reshape(-1, 3) / 255.0
    hue = np.bincount((hsv[:, 0] * 12).astype(np.int64) % 12, weights=hsv[:, 1], minlength=12)
    sat = np.bincount(np.minimum(hsv[:, 1] * 4, 3).astype(np.int64), minlength=4)
    val = np.bincount(np.minimum(hsv[:, 2] * 4, 3).astype(np.int64), minlength=4)
    return _centred(np.sqrt(np.concatenate([hue / 1024.0, sat / 1024.0, val / 1024.0]).astype(np.float32)))


def describe(data: bytes) -> F32:
    """The descriptor of one encoded image (any format Pillow reads), L2-normalised."""
    rgb = _trim(_load(data))
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:  # a tiny image left too little after trimming: keep it whole
        rgb = _load(data)
    gray = rgb.mean(axis=-1).astype(np.float32)
    regions = [_centre(gray, fraction) for fraction in _SCALES]
    blocks = {
        "dct": _unit(np.sum([_dct_block(r) for r in regions], axis=0)),
        "hog": _unit(np.sum([_hog_block(r) for r in regions], axis=0)),
        "glob": _glob_block(gray),
        "colour": _colour_block(rgb),
    }
    return _unit(np.concatenate([np.sqrt(np.float32(_WEIGHTS[k])) * v for k, v in blocks.items()]))


DIMENSIONS = (_DCT_K * _DCT_K - 1) + _GRID * _GRID * _BINS + 2 * _BINS + 20


class LocalImageEmbedder:
    """Image descriptor for finding the same picture again (near-duplicate image→image search), offline.

    Not a semantic model: it matches a picture to transformed copies of itself (resized, cropped, recoloured,
    blurred, JPEG-compressed, grayscale, slightly rotated, mirrored, framed), not to other pictures of the
    same kind of thing. Text queries cannot be placed in its space (``supports_text_queries`` is False).
    Pillow and numpy only; stateless and thread-safe.
    """

    model_id = "local:image-descriptor-v1"
    dimensions = DIMENSIONS
    supports_text_queries = False

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """One L2-normalised vector per encoded image.

        Args:
            images: encoded image files (PNG, JPEG, GIF, WebP... anything Pillow decodes).
            captions: ignored: this space holds pixels only (captions are searched in the text space).

        Raises:
            PIL.UnidentifiedImageError: an item is not a decodable image.
        """
        return [describe(data).tolist() for data in images]

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Unsupported: always raises :class:`~mmrag.errors.ConfigError`."""
        raise ConfigError(
            "the local image descriptor cannot embed text: in the local profile, text→image search goes through "
            "image captions/OCR text in the text space; for a joint text-image space set MMRAG_CLIP_MODEL to a "
            "CLIP model folder or use MMRAG_PROFILE=bedrock (Titan Multimodal Embeddings)"
        )
