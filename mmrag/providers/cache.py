"""A content-addressed sqlite cache of model outputs, so re-ingesting never pays twice for the same input.

Keys are SHA-256 over (kind, model key, content hash); the model key names everything that changes the output
(model id, dimensions, normalisation, prompt version, max tokens), so changing any of them misses. Vectors are
stored as float32 bytes, captions as text. The file lives at ``settings.home / "cache" / "models.sqlite"``.
"""

from __future__ import annotations

import array
import json
import logging
import sqlite3
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from mmrag._sqlite import connect_wal
from mmrag.elements import Element, content_hash
from mmrag.errors import StoreError
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY, Captioner, ImageEmbedder

if TYPE_CHECKING:
    from mmrag.providers.local.ocr import OcrEngine, OcrResult

__all__ = [
    "CachedCaptioner",
    "CachedEmbeddings",
    "CachedImageEmbedder",
    "CachedOcrEngine",
    "ModelCache",
    "cache_key",
    "default_model_key",
]

_BATCH = 500
logger = logging.getLogger(__name__)


def default_model_key(model: object) -> str:
    """``model.cache_key`` if the model defines one (mmrag's providers do), else its ``model_id`` and dimensions."""
    key = getattr(model, "cache_key", None)
    if isinstance(key, str) and key:
        return key
    name = str(getattr(model, "model_id", type(model).__name__))
    dims = getattr(model, "dimensions", None)
    return f"{name}|dims={dims}" if dims is not None else name


def cache_key(kind: str, model_key: str, content: str) -> str:
    """The cache key of one model output: ``content`` is the input's content hash (or the input itself)."""
    return content_hash(kind, model_key, content)


def _pack(vector: Sequence[float]) -> bytes:
    data = array.array("f", vector)
    if sys.byteorder != "little":  # pragma: no cover - the file format is little-endian everywhere
        data.byteswap()
    return data.tobytes()


def _unpack(blob: bytes) -> list[float]:
    data = array.array("f")
    data.frombytes(blob)
    if sys.byteorder != "little":  # pragma: no cover
        data.byteswap()
    return data.tolist()


def _f32(vector: Sequence[float]) -> list[float]:
    """``vector`` rounded to float32, as it will come back from the cache: cached and fresh results are equal."""
    return _unpack(_pack(vector))


def _open_read_only(path: Path) -> sqlite3.Connection | None:
    """``path`` opened with ``mode=ro`` (no file is created, nothing is written), or None when it cannot be read."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                             isolation_level=None)
        db.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
    except sqlite3.Error as e:
        logger.debug("%s: model cache not readable (%s): running without it", path, e)
        return None
    return db


_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"


class ModelCache:
    """sqlite (WAL) key-value cache of vectors and texts; safe to share between threads.

    Args:
        path: the database file; its folder is created (unless ``read_only``).
        read_only: for commands that must not write (search, ask): the file is opened read-only, stores are
            dropped, and a cache that is missing or cannot be read (a full disk, a read-only folder) is simply
            empty.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if read_only:
            self._db = _open_read_only(self.path)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = connect_wal(self.path, _SCHEMA)
        except sqlite3.Error as e:
            from mmrag._disk import as_disk_full

            full = as_disk_full(e, self.path)
            if full is not None:
                raise full from e
            raise StoreError(f"{self.path}: cannot open the model cache ({e}); it holds only model outputs, so "
                             "moving it aside is safe: mmrag then starts a new cache") from e

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return 0
            return int(self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def _get(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            if self._db is None:
                return found
            try:
                for i in range(0, len(unique), _BATCH):
                    part = unique[i : i + _BATCH]
                    marks = ",".join("?" * len(part))
                    found.update(self._db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", part))
            except sqlite3.Error as e:
                if not self.read_only:
                    raise
                logger.debug("%s: model cache not readable (%s): computing instead", self.path, e)
        return found

    def _put(self, rows: Iterable[tuple[str, Any]]) -> None:
        rows = list(rows)
        if not rows or self.read_only:
            return
        with self._lock:
            assert self._db is not None
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_vectors(self, keys: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors of the keys that are present."""
        return {k: _unpack(v) for k, v in self._get(keys).items()}

    def put_vectors(self, items: Mapping[str, Sequence[float]]) -> None:
        """Store vectors (as float32)."""
        self._put((k, _pack(v)) for k, v in items.items())

    def get_texts(self, keys: Sequence[str]) -> dict[str, str]:
        """Stored texts of the keys that are present."""
        return {k: bytes(v).decode("utf-8") for k, v in self._get(keys).items()}

    def put_texts(self, items: Mapping[str, str]) -> None:
        """Store texts."""
        self._put((k, v.encode("utf-8")) for k, v in items.items())


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def count(self, hits: int, misses: int) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses


class _Counted:
    """``hits`` and ``misses`` of a caching wrapper, from its thread-safe ``counters``."""

    counters: _Counters

    @property
    def hits(self) -> int:
        return self.counters.hits

    @property
    def misses(self) -> int:
        return self.counters.misses


class CachedEmbeddings(_Counted, Embeddings):
    """An ``Embeddings`` that asks ``inner`` only for texts not in the cache.

    Vectors are float32 precision (how they are stored), on a miss as on a hit.

    Args:
        inner: the real embeddings.
        cache: the store.
        model_key: everything that changes ``inner``'s output; default :func:`default_model_key` (``cache_key``).
    """

    def __init__(self, inner: Embeddings, cache: ModelCache, model_key: str | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.model_key = model_key or default_model_key(inner)
        self.model_id = str(getattr(inner, "model_id", type(inner).__name__))
        self.dimensions: int | None = getattr(inner, "dimensions", None)  # None: known after the first call
        self.counters = _Counters()

    def _lookup(self, texts: Sequence[str]) -> tuple[list[str], dict[str, list[float]], list[str]]:
        keys = [cache_key("text-embedding", self.model_key, content_hash(t)) for t in texts]
        found = self.cache.get_vectors(keys)
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        n_missing = sum(1 for k in keys if k not in found)
        self.counters.count(len(keys) - n_missing, n_missing)
        return keys, found, missing

    def _store(self, keys: list[str], found: dict[str, list[float]], missing: list[str],
               vectors: list[list[float]]) -> None:
        fresh = {cache_key("text-embedding", self.model_key, content_hash(t)): _f32(v)
                 for t, v in zip(missing, vectors, strict=True)}
        self.cache.put_vectors(fresh)
        found.update(fresh)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        keys, found, missing = self._lookup(texts)
        if missing:
            self._store(keys, found, missing, self.inner.embed_documents(missing))
        return [found[k] for k in keys]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        keys, found, missing = self._lookup(texts)
        if missing:
            self._store(keys, found, missing, await self.inner.aembed_documents(missing))
        return [found[k] for k in keys]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


class CachedImageEmbedder(_Counted):
    """An :class:`~mmrag.providers.base.ImageEmbedder` that asks ``inner`` only for inputs not in the cache.

    Args:
        inner: the real image embedder.
        cache: the store.
        model_key: everything that changes ``inner``'s output; default :func:`default_model_key` (``cache_key``).
    """

    def __init__(self, inner: ImageEmbedder, cache: ModelCache, model_key: str | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.model_key = model_key or default_model_key(inner)
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.supports_text_queries = inner.supports_text_queries
        self.counters = _Counters()

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        return self._embed(images, captions, None)

    def embed_images_by_kind(self, images: Sequence[bytes], kinds: Sequence[str],
                             captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """:meth:`embed_images` for an inner model that reads images by element kind (Nova: page renders as
        ``DOCUMENT_IMAGE``; the kind is then part of the key); other models ignore the kinds."""
        if len(kinds) != len(images):
            raise ValueError(f"got {len(images)} images but {len(kinds)} kinds")
        return self._embed(images, captions, kinds if hasattr(self.inner, "embed_images_by_kind") else None)

    def _embed(self, images: Sequence[bytes], captions: Sequence[str | None] | None,
               kinds: Sequence[str] | None) -> list[list[float]]:
        caps: list[str | None] = list(captions) if captions is not None else [None] * len(images)
        if len(caps) != len(images):
            raise ValueError(f"got {len(images)} images but {len(caps)} captions")
        marks = [f"kind={k}" for k in kinds] if kinds is not None else [None] * len(images)
        keys = [
            cache_key("image-embedding", self.model_key,
                      content_hash(content_hash(img), c or "", *([m] if m else [])))
            for img, c, m in zip(images, caps, marks, strict=True)
        ]
        found = self.cache.get_vectors(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        first = {keys[i]: i for i in reversed(todo)}  # the same input twice in one batch is sent once
        idx = sorted(first.values())
        self.counters.count(len(keys) - len(todo), len(todo))
        if idx:
            if kinds is not None:
                vectors = self.inner.embed_images_by_kind(  # type: ignore[attr-defined]
                    [images[i] for i in idx], [kinds[i] for i in idx], [caps[i] for i in idx])
            else:
                vectors = self.inner.embed_images([images[i] for i in idx], [caps[i] for i in idx])
            fresh = {keys[i]: _f32(v) for i, v in zip(idx, vectors, strict=True)}
            self.cache.put_vectors(fresh)
            found.update(fresh)
        return [found[k] for k in keys]

    def embed_image_queries(self, images: Sequence[bytes]) -> list[list[float]]:
        """Query images (image→image search): the inner model's query embedding where it has one (Nova embeds
        queries with a retrieval purpose), else the index embedding. Not cached: queries are one-offs."""
        query = getattr(self.inner, "embed_image_queries", None)
        return list(query(images)) if query is not None else self.embed_images(images)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [cache_key("image-space-text", self.model_key, content_hash(t)) for t in texts]
        found = self.cache.get_vectors(keys)
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        self.counters.count(sum(1 for k in keys if k in found), sum(1 for k in keys if k not in found))
        if missing:
            fresh = {
                cache_key("image-space-text", self.model_key, content_hash(t)): _f32(v)
                for t, v in zip(missing, self.inner.embed_texts(missing), strict=True)
            }
            self.cache.put_vectors(fresh)
            found.update(fresh)
        return [found[k] for k in keys]


_BLOCKED = "\x00blocked:"  # cached in place of a caption that Bedrock's content filter or a guardrail stopped


class CachedCaptioner(_Counted):
    """A :class:`~mmrag.providers.base.Captioner` that asks ``inner`` only for elements not in the cache.

    The key covers the element's kind, its content (image bytes or table markdown) and its context text (which
    is part of the prompt). Failed elements (returned unchanged) are not cached, so the next run retries them.

    Args:
        inner: the real captioner (``model_id`` is read from it for ``caption_model``).
        cache: the store.
        model_key: everything that changes ``inner``'s output; default :func:`default_model_key` (``cache_key``).
    """

    _KINDS = ("image", "page", "table")

    def __init__(self, inner: Captioner, cache: ModelCache, model_key: str | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.model_key = model_key or default_model_key(inner)
        self.model_id = str(getattr(inner, "model_id", model_key))
        self.counters = _Counters()

    def _key(self, element: Element) -> str:
        return cache_key("caption", self.model_key, content_hash(element.kind, element.content_hash, element.text))

    @staticmethod
    def _slot(element: Element) -> str:
        return SUMMARY_KEY if element.kind == "table" else CAPTION_KEY

    def _ocr_key(self, element: Element) -> str:
        # The full OCR text of a scanned page (``ocr_text``; the caption holds only its start), kept beside it.
        return cache_key("caption-ocr-text", self.model_key,
                         content_hash(element.kind, element.content_hash, element.text))

    def _split(self, elements: Sequence[Element]) -> tuple[list[Element], list[int], list[str]]:
        out = list(elements)
        todo = [i for i, e in enumerate(out) if e.kind in self._KINDS]
        keys = [self._key(out[i]) for i in todo]
        found = self.cache.get_texts(keys)
        scanned = {i: self._ocr_key(out[i]) for i in todo if out[i].metadata.get("needs_ocr")}
        ocr_found = self.cache.get_texts(list(scanned.values())) if scanned else {}
        missing: list[int] = []
        for i, key in zip(todo, keys, strict=True):
            if key in found and (i not in scanned or scanned[i] in ocr_found):
                e = out[i]
                extra = {self._slot(e): found[key], "caption_model": self.model_id}
                if found[key].startswith(_BLOCKED):  # a caption Bedrock filtered: final, not asked again
                    extra = {"caption_blocked": found[key][len(_BLOCKED):], "caption_model": self.model_id}
                if i in scanned:
                    extra["ocr_text"] = ocr_found[scanned[i]]
                out[i] = replace(e, metadata={**e.metadata, **extra})
            else:
                missing.append(i)
        self.counters.count(len(todo) - len(missing), len(missing))
        return out, missing, keys

    def _merge(self, out: list[Element], missing: list[int], results: list[Element]) -> list[Element]:
        fresh: dict[str, str] = {}
        for i, element in zip(missing, results, strict=True):
            out[i] = element
            text = element.metadata.get(self._slot(element))
            if element.metadata.get("caption_blocked"):
                text = _BLOCKED + str(element.metadata["caption_blocked"])
            if isinstance(text, str) and text:
                fresh[self._key(element)] = text
                ocr_text = element.metadata.get("ocr_text")
                if element.metadata.get("needs_ocr") and isinstance(ocr_text, str):
                    fresh[self._ocr_key(element)] = ocr_text
        self.cache.put_texts(fresh)
        return out

    def caption(self, elements: Sequence[Element]) -> list[Element]:
        out, missing, _ = self._split(elements)
        if not missing:
            return out
        return self._merge(out, missing, self.inner.caption([out[i] for i in missing]))

    async def acaption(self, elements: Sequence[Element]) -> list[Element]:
        """Async :meth:`caption`; uses ``inner.acaption`` when it has one."""
        out, missing, _ = self._split(elements)
        if not missing:
            return out
        batch = [out[i] for i in missing]
        acaption = getattr(self.inner, "acaption", None)
        if acaption is not None:
            results: list[Element] = await acaption(batch)
        else:
            import asyncio

            results = await asyncio.to_thread(self.inner.caption, batch)
        return self._merge(out, missing, results)


class CachedOcrEngine(_Counted):
    """An :class:`~mmrag.providers.local.ocr.OcrEngine` that reads each distinct image once.

    Results are kept by image content hash and the engine's ``cache_key`` (engine, models, thresholds): in
    ``cache`` when given (across runs), and in memory for this process either way, so an image that arrives
    twice (an HTML page's picture and the same file ingested on its own) is read once even with the cache off.
    Concurrent reads of the same image wait for the first one instead of reading it again. Errors are not kept.

    Args:
        inner: the real engine.
        cache: the store, or None for the in-process memo only (``MMRAG_CACHE=0``).
        memo_size: results kept in memory (the most recent ones).
    """

    def __init__(self, inner: OcrEngine, cache: ModelCache | None = None, memo_size: int = 512) -> None:
        self.inner = inner
        self.cache = cache
        self.memo_size = memo_size
        self.name = inner.name
        self.counters = _Counters()
        self._memo: dict[str, OcrResult] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        warm_up = getattr(self.inner, "warm_up", None)
        if warm_up is not None:
            warm_up()

    def _key(self, image: bytes) -> str:
        return cache_key("ocr", default_model_key(self.inner), content_hash(image))

    def read(self, image: bytes) -> OcrResult:
        key = self._key(image)
        while True:
            with self._lock:
                if key in self._memo:
                    self.counters.count(1, 0)
                    return self._memo[key]
                event = self._inflight.get(key)
                if event is None:
                    event = self._inflight[key] = threading.Event()
                    break
            event.wait()  # another thread is reading this image: take its result (or read it if that failed)
        try:
            result = self._stored(key)
            if result is None:
                self.counters.count(0, 1)
                result = self.inner.read(image)
                self.name = self.inner.name
                if self.cache is not None:  # under the engine that really read it (RapidOCR may fall back to v4)
                    self.cache.put_texts({self._key(image): _ocr_json(result)})
            else:
                self.counters.count(1, 0)
            with self._lock:
                self._memo[key] = result
                while len(self._memo) > self.memo_size:
                    self._memo.pop(next(iter(self._memo)))
            return result
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()

    def _stored(self, key: str) -> OcrResult | None:
        if self.cache is None:
            return None
        found = self.cache.get_texts([key]).get(key)
        return _ocr_from_json(found) if found is not None else None


def _ocr_json(result: OcrResult) -> str:
    return json.dumps({"text": result.text, "engine": result.engine,
                       "lines": [[t, c, list(box)] for t, c, box in result.lines]}, ensure_ascii=False)


def _ocr_from_json(text: str) -> OcrResult | None:
    from mmrag.providers.local.ocr import OcrResult

    try:
        data = json.loads(text)
        lines = tuple((str(t), float(c), (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
                      for t, c, b in data["lines"])
        return OcrResult(text=str(data["text"]), lines=lines, engine=str(data["engine"]))
    except (ValueError, KeyError, TypeError, IndexError):  # an entry from another version: read the image again
        return None
