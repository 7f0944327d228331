"""The semantic answer cache: a question close enough to one already answered, on the same data, gets that answer.

Opt-in (``MMRAG_ANSWER_CACHE=1`` or ``QueryOptions(answer_cache=True)``). :func:`with_answer_cache` wraps a query
chain; it does not change it. For each question:

1. the question is embedded with the collection's text model (served by the embedding cache when the retriever
   embeds the same question again);
2. the stored questions of the *same collection, same collection state* and *same options and model* are
   compared by cosine similarity; the best one at or above the threshold that also asks the same thing by its
   wording (:func:`same_terms`) is a hit: its answer is returned at once (streamed word by word, then the answer) as a
   :class:`CachedAnswer` carrying the matched question and the similarity;
3. otherwise the chain answers and the answer is stored under the state read *before* answering (an ingest
   that lands meanwhile makes it stale at once).

The collection state (:func:`collection_state`) is a hash of every committed source of the manifest (source,
fingerprint, element count, kinds, time of ingest) and every pending claim, so any ingest that changes the
collection, or a delete, changes it: older entries are never served and are dropped on the next write. The cache
lives in the collection's own folder (``MMRAG_HOME/<collection>/answer_cache.sqlite``) and every row also names
its collection, so no answer crosses collections; deleting a collection deletes its cache.

Why a wording check on top of the vectors: sentence embeddings put "Which cars have 6 cylinders?" and "Which cars
do not have 6 cylinders?" at cosine 0.98, and most near misses of the labelled pair set
(``tests/data/cache_pairs.jsonl``) above most true paraphrases, so similarity alone cannot tell them apart. A wrong
hit is worse than a miss, so :func:`same_terms` (the deterministic guard of :mod:`mmrag.chains._question_match`)
must also hold: after normalisation both questions have the same question type, negations, content words, names
and numbers (and their order when the question has a direction). ``bench/answer_cache.py`` reports it on the pair
set: no "different" pair served, two in three to three in four true paraphrases served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.answers import Answer, Citation, Hit
from mmrag.chains._question_match import same_question
from mmrag.elements import Element

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.runnables import Runnable, RunnableConfig

    from mmrag.stores.collection import Collection

__all__ = ["DEFAULT_THRESHOLD", "AnswerCache", "CachedAnswer", "collection_state", "same_terms", "with_answer_cache"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.85
"""Cosine similarity from which a stored question can be the same question (:func:`same_terms` decides). With
MiniLM on the labelled pairs (``bench/answer_cache.py``) true paraphrases have a median of 0.97 and 1 in 20 falls
below 0.85; near misses reach 1.00, so the threshold only keeps far-fetched matches out, it never decides alone.
Set ``MMRAG_ANSWER_CACHE_THRESHOLD`` for another text model."""

@dataclass(frozen=True, slots=True)
class CachedAnswer(Answer):
    """An answer served from the answer cache.

    Attributes:
        cached_question: the stored question it was first given to.
        similarity: cosine similarity of the two questions' embeddings.
    """

    cached_question: str = ""
    similarity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Answer.to_dict` plus ``cached: {"question", "similarity"}``."""
        out = Answer.to_dict(self)
        out["cached"] = {"question": self.cached_question, "similarity": round(self.similarity, 4)}
        return out


def collection_state(collection: Collection) -> str:
    """A token that changes whenever the collection's content does (any ingest that adds, updates or removes a
    source, or leaves a pending claim); equal tokens mean the same committed content. Read-only."""
    manifest = collection.manifest
    h = hashlib.sha256(collection.name.encode())
    for entry in manifest.sources():
        h.update(json.dumps([entry.source, entry.fingerprint, entry.elements, dict(sorted(entry.kinds.items())),
                             entry.ingested_at]).encode())
    for source in manifest.sources_with_pending():
        h.update(json.dumps(["pending", source, sorted(manifest.pending_ids(source))]).encode())
    return h.hexdigest()[:32]


def same_terms(a: str, b: str) -> bool:
    """Whether two questions ask the same thing by their wording, after normalisation: same question type (why,
    when, how, how many, yes/no...), same negations, same content words, names and numbers, and the same order of
    them when the question has a direction ("heavier than", "convert ... to"). Case, punctuation, contractions,
    stopwords, light suffixes, number words and a few synonyms (hp/horsepower, "how heavy"/weight) do not count.
    See :mod:`mmrag.chains._question_match`."""
    return same_question(a, b)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    collection TEXT NOT NULL, state TEXT NOT NULL, variant TEXT NOT NULL, question TEXT NOT NULL,
    vector TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (collection, state, variant, question)
);
"""


class AnswerCache:
    """Answers by (collection, collection state, variant), looked up by question similarity.

    Args:
        path: the sqlite file (created with its folder).
        collection: the collection whose answers it holds.
        embeddings: the text model questions are embedded with.
        threshold: cosine similarity from which a question is the same (default :data:`DEFAULT_THRESHOLD`).
    """

    def __init__(self, path: Path, collection: Collection, embeddings: Embeddings, *,
                 threshold: float | None = None) -> None:
        self.path, self.collection, self.embeddings = Path(path), collection, embeddings
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {self.threshold!r}")
        self._lock = threading.Lock()
        from mmrag._sqlite import open_sqlite

        self._db = open_sqlite(self.path, _SCHEMA, "answer cache")

    @classmethod
    def for_collection(cls, collection: Collection, embeddings: Embeddings, *,
                       threshold: float | None = None) -> AnswerCache:
        """The cache kept next to the collection's manifest (``MMRAG_HOME/<collection>/answer_cache.sqlite``)."""
        folder = collection.root or Path(".mmrag") / collection.name
        return cls(folder / "answer_cache.sqlite", collection, embeddings, threshold=threshold)

    def state(self) -> str:
        """The collection's current state token (:func:`collection_state`)."""
        return collection_state(self.collection)

    def lookup(self, question: str, variant: str = "", *, state: str | None = None,
               vector: Sequence[float] | None = None) -> CachedAnswer | None:
        """The stored answer to the closest same-state question at or above the threshold, else None."""
        state = state or self.state()
        vector = vector if vector is not None else self.embeddings.embed_query(question)
        with self._lock:
            rows = self._db.execute(
                "SELECT question, vector, answer FROM answers WHERE collection = ? AND state = ? AND variant = ?",
                (self.collection.name, state, variant)).fetchall()
        best: tuple[float, str, str] | None = None
        for stored, raw_vector, raw_answer in rows:
            similarity = _cosine(vector, json.loads(raw_vector))
            if similarity >= self.threshold and same_terms(question, stored) and (
                    best is None or similarity > best[0]):
                best = (similarity, stored, raw_answer)
        if best is None:
            return None
        similarity, stored, raw_answer = best
        logger.info("answer cache hit (%.3f): %r answered as %r", similarity, question, stored)
        return _cached(json.loads(raw_answer), question, stored, similarity)

    def store(self, question: str, answer: Answer, variant: str = "", *, state: str,
              vector: Sequence[float] | None = None) -> None:
        """Keep ``answer`` for ``question`` under ``state`` (the state read before answering); entries of other
        states of this collection are dropped (they can never be served again)."""
        vector = vector if vector is not None else self.embeddings.embed_query(question)
        row = (self.collection.name, state, variant, question, json.dumps([float(v) for v in vector]),
               json.dumps(_answer_dict(answer), ensure_ascii=False, default=str), time.time())
        with self._lock:
            self._db.execute("DELETE FROM answers WHERE collection = ? AND state != ?", (self.collection.name, state))
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def clear(self) -> None:
        """Forget every answer of this collection."""
        with self._lock:
            self._db.execute("DELETE FROM answers WHERE collection = ?", (self.collection.name,))

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM answers WHERE collection = ?",
                                    (self.collection.name,)).fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _answer_dict(answer: Answer) -> dict[str, Any]:
    return {"text": answer.text, "mode": answer.mode, "answered": answer.answered,
            "sub_questions": list(answer.sub_questions),
            "decomposition": answer.decomposition, "citations": [c.to_dict() for c in answer.citations],
            "hits": [{"score": h.score, "lists": list(h.lists), "element": {
                "id": h.element.id, "kind": h.element.kind, "source": h.element.source, "text": h.element.text,
                "page": h.element.page, "bbox": list(h.element.bbox) if h.element.bbox else None,
                "mime_type": h.element.mime_type, "object_key": h.element.object_key,
                "metadata": dict(h.element.metadata)}} for h in answer.hits]}


def _cached(data: Mapping[str, Any], question: str, stored: str, similarity: float) -> CachedAnswer:
    hits = tuple(Hit(Element.restore(**h["element"]), float(h["score"]), tuple(h["lists"])) for h in data["hits"])
    citations = tuple(Citation(**c) for c in data["citations"])
    return CachedAnswer(question, data["text"], data["mode"], tuple(data["sub_questions"]), citations, hits,
                        data.get("decomposition"), bool(data.get("answered", True)), cached_question=stored,
                        similarity=similarity)


def with_answer_cache(chain: Runnable[Any, Any], cache: AnswerCache, *, variant: str = "") -> Runnable[Any, Any]:
    """``chain`` behind ``cache``: same input and output (``str`` tokens, then the ``Answer``), run name
    ``answer_cache``. ``variant`` names what else decides an answer (options, model): answers of another variant
    are never served."""
    from langchain_core.runnables import RunnableGenerator

    from mmrag.chains.stages import stream_pieces

    def question_of(inputs: Mapping[str, Any] | str) -> str:
        text = inputs.get("question") if isinstance(inputs, Mapping) else inputs
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the question is empty")
        return text.strip()

    def answer(question: str, config: RunnableConfig) -> Iterator[Any]:
        state = cache.state()
        vector = cache.embeddings.embed_query(question)
        hit = cache.lookup(question, variant, state=state, vector=vector)
        if hit is not None:
            yield from stream_pieces(hit.text)
            yield hit
            return
        final: Answer | None = None
        for piece in chain.stream(question, config):
            if isinstance(piece, Answer):
                final = piece
            yield piece
        if final is not None and final.text.strip():
            cache.store(question, final, variant, state=state, vector=vector)

    def run(inputs: Iterator[Any], config: RunnableConfig) -> Iterator[Any]:
        yield from answer(question_of(_last(inputs)), config)

    async def arun(inputs: AsyncIterator[Any], config: RunnableConfig) -> AsyncIterator[Any]:
        import asyncio

        last: Any = None
        async for chunk in inputs:
            last = chunk
        pieces = answer(question_of(last), config)
        done = object()
        while (item := await asyncio.to_thread(next, pieces, done)) is not done:
            yield item

    # LangChain passes ``config`` to generator functions that accept it; its type hints only show one parameter.
    return RunnableGenerator(run, arun, name="answer_cache")  # type: ignore[arg-type]


def _last(inputs: Iterator[Any]) -> Any:
    last: Any = None
    for chunk in inputs:
        last = chunk if last is None or not isinstance(chunk, str) else last + chunk
    return last
