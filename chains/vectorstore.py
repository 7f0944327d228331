"""``MmragVectorStore``: a LangChain ``VectorStore`` over a collection's text space.

A LangChain app swaps its vector store for mmrag's with one line::

    store = MmragVectorStore(collection="notes", embedding=embeddings)   # was: FAISS.from_documents(...) etc.

Each Document added through it is one manifest source, ``langchain:<id>``, holding one text element (its
``source`` and ``page`` metadata become the element's, so ``mmrag ask`` and ``mmrag search`` cite it as a loader
named it). Writes go through the manifest like ingest's (claim → index add → persist → commit: see
:mod:`mmrag.chains.documents`), so they are committed, idempotent (an unchanged Document is not embedded again)
and visible to every other reader of the collection. Searches see the whole text space: Documents added here,
and the chunks, tables and captions ``mmrag ingest`` put there (as :meth:`Element.to_document` gives them).

Metadata filters are dicts (``{"topic": "fruit", "year": [2023, 2024]}``: every key must match, a list matches
any of its values) or callables on the Document; ``source`` narrows the index search itself, other keys are
checked on the Documents an over-fetched search returns. Scores are cosine similarities (higher is better).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from mmrag.chains.documents import (
    NO_SOURCE,
    TextSource,
    document_element,
    document_from_element,
    document_source,
    fingerprint,
    write_text_sources,
)
from mmrag.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.stores.collection import Collection

__all__ = ["MmragVectorStore", "check_text_model", "open_text_collection"]

MetadataFilter = Mapping[str, Any] | Callable[[Document], bool]


def _model_of(embedding: Embeddings) -> tuple[str, int]:
    """The name and vector length a collection records for a text model (as ingest records them)."""
    name = str(getattr(embedding, "model_id", type(embedding).__name__))
    dims = getattr(embedding, "dimensions", None) or len(embedding.embed_query("dimension probe"))
    return name, int(dims)


def open_text_collection(settings: Settings, name: str | None, embedding: Embeddings | None, *, create: bool
                         ) -> tuple[Collection | None, Embeddings | None]:
    """Open the collection ``name`` (default ``settings.collection``) for text written with ``embedding``
    (default: the text model ``settings`` describe).

    Returns:
        The collection and the text model; ``(None, embedding)`` when it does not exist and ``create`` is false.

    Raises:
        ConfigError: the collection was built with another text model or vector length.
    """
    from mmrag.chains.upkeep import open_existing
    from mmrag.stores.collection import SpaceInfo, open_collection, require_collection

    if name:
        settings = settings.model_copy(update={"collection": name})
    try:
        require_collection(settings)
    except NotFoundError:
        if not create:
            return None, embedding
        from mmrag.providers.factory import build_providers

        providers = build_providers(settings)
        embedding = embedding or providers.text_embeddings
        model, dims = _model_of(embedding)
        image = SpaceInfo(providers.image_embedder.model_id, providers.image_embedder.dimensions)
        return open_collection(settings, text=SpaceInfo(model, dims), image=image), embedding
    collection = open_existing(settings)
    if embedding is None:
        from mmrag.providers.factory import build_providers

        embedding = build_providers(settings).text_embeddings
    try:
        check_text_model(collection, embedding)
    except ConfigError:
        _close(collection)
        raise
    return collection, embedding


def check_text_model(collection: Collection, embedding: Embeddings) -> None:
    """Refuse a text model other than the one ``collection`` was built with.

    Raises:
        ConfigError: another model name or vector length, saying which the collection has.
    """
    meta = collection.manifest.meta()
    model, dims = _model_of(embedding)
    if (meta.get("text_model"), meta.get("text_dimensions")) != (model, dims):
        raise ConfigError(
            f"collection {collection.name!r} was built with text model {meta.get('text_model')!r} "
            f"({meta.get('text_dimensions')} dimensions), not {model!r} ({dims}): pass the embedding it was built "
            "with, or use another collection"
        )


def _close(collection: Collection) -> None:
    for index in (collection.text, collection.image):
        close = getattr(getattr(index, "inner", index), "close", None)
        if callable(close):
            close()
    collection.manifest.close()


def _matches(document: Document, filter: MetadataFilter | None) -> bool:
    if filter is None:
        return True
    if callable(filter):
        return bool(filter(document))
    for key, wanted in filter.items():
        value = document.metadata.get(key)
        if isinstance(wanted, list | tuple | set | frozenset):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def _pushdown(filter: MetadataFilter | None) -> dict[str, Any] | None:
    """The part of a filter the index applies itself: ``source`` (the element field it indexes)."""
    if filter is None or callable(filter):
        return None
    source = filter.get("source")
    values = list(source) if isinstance(source, list | tuple | set | frozenset) else [source]
    if source is None or not all(isinstance(v, str) for v in values):
        return None
    return {"source": values}


class MmragVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over the text space of an mmrag collection (see the module docstring).

    Args:
        collection: the collection's name (default ``settings.collection``), or an open
            :class:`~mmrag.stores.collection.Collection`. A missing collection is created by the first write;
            until then searches return nothing.
        embedding: any LangChain ``Embeddings`` for a new collection; for an existing one it must be the model the
            collection was built with (default: the text model ``settings`` describe, as ``mmrag ingest`` uses).
        settings: where the collection lives (``MMRAG_HOME``, vector store, pgvector DSN...); default
            ``Settings()``.

    Raises:
        ConfigError: (on first use) the collection was built with another text model.
    """

    def __init__(self, collection: str | Collection | None = None, embedding: Embeddings | None = None, *,
                 settings: Settings | None = None) -> None:
        self._settings = settings
        self._name = collection if isinstance(collection, str) or collection is None else collection.name
        self._collection: Collection | None = None if isinstance(collection, str) or collection is None \
            else collection
        self._owned = self._collection is None
        self._embedding = embedding
        self._lock = threading.Lock()
        self._checked = False

    def _open(self, *, create: bool) -> Collection | None:
        with self._lock:
            if self._collection is None:
                from mmrag.config import Settings

                self._collection, self._embedding = open_text_collection(
                    self._settings or Settings(), self._name, self._embedding, create=create)
            elif not self._checked:  # a Collection given by the caller
                if self._embedding is None:
                    from mmrag.providers.factory import build_providers

                    self._embedding = build_providers(self._settings or _default_settings()).text_embeddings
                check_text_model(self._collection, self._embedding)
            self._checked = self._collection is not None
            return self._collection

    @property
    def collection(self) -> Collection | None:
        """The collection (opened on first use), or None while it does not exist."""
        return self._open(create=False)

    def _write_target(self) -> tuple[Collection, Embeddings]:
        collection = self._open(create=True)
        assert collection is not None and self._embedding is not None
        return collection, self._embedding

    @property
    def embeddings(self) -> Embeddings | None:
        """The text model (resolved from the settings on first use when not given)."""
        if self._embedding is None:
            self._open(create=False)
        return self._embedding

    def close(self) -> None:
        """Close the manifest and the index connections this store opened (a store given a Collection leaves it
        open)."""
        with self._lock:
            if self._collection is not None and self._owned:
                _close(self._collection)
                self._collection = None

    # --- writes -------------------------------------------------------------------------------------------

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[Any, Any]] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Add (or, for an id already there, replace) texts; returns their ids (new UUIDs where none is given).

        Unchanged texts (same id, text and metadata) are not embedded or written again.
        """
        texts = list(texts)
        metadatas = metadatas or [{} for _ in texts]
        given: list[str | None] = list(ids) if ids is not None else [None] * len(texts)  # add_documents: None ids
        if not len(texts) == len(metadatas) == len(given):
            raise ValueError(f"got {len(texts)} texts, {len(metadatas)} metadatas and {len(given)} ids")
        out = [i or str(uuid.uuid4()) for i in given]
        if not texts:
            return out
        collection, embedding = self._write_target()
        latest: dict[str, TextSource] = {}
        for text, meta, i in zip(texts, metadatas, out, strict=True):
            document = Document(page_content=text, metadata=meta or {}, id=i)
            element = document_element(document, document_source(document))
            latest[i] = TextSource(NO_SOURCE + i, fingerprint([element]), (element,))
        write_text_sources(list(latest.values()), collection, embedding)
        return out

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete Documents by id (missing ids are ignored); ``ids=None`` deletes every Document added through a
        VectorStore (sources ``langchain:...``), not what ``mmrag ingest`` added."""
        from mmrag.chains.upkeep import collection_lock

        collection = self._open(create=False)
        if collection is None:
            return True
        manifest = collection.manifest
        keys = [NO_SOURCE + i for i in ids] if ids is not None else \
            [e.source for e in manifest.sources() if e.source.startswith(NO_SOURCE)]
        with collection_lock(collection, exclusive=False):
            owned = {key: manifest.element_ids(key) | manifest.pending_ids(key) for key in keys}
            doomed = set().union(*owned.values()) if owned else set()
            held = manifest.holders(doomed)
            doomed = {i for i in doomed if not (held.get(i, set()) - set(keys))}
            if doomed:
                collection.text.delete(sorted(doomed))
                collection.text.persist()
            for key, elements in owned.items():
                if elements or manifest.get(key) is not None:
                    manifest.forget(key)
        return True

    # --- reads --------------------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The Documents with these ids (missing ids are left out). An element id from ``mmrag search`` works
        too, for what ``mmrag ingest`` added."""
        collection = self._open(create=False)
        if collection is None or not ids:
            return []
        owned = {i: collection.manifest.element_ids(NO_SOURCE + i) for i in ids}
        found = {e.id: e for e in collection.text.get(sorted(set().union(*owned.values())))}
        direct = {e.id: e for e in collection.text.get([i for i in ids if not owned[i]])}
        out: list[Document] = []
        for i in ids:
            out.extend(document_from_element(found[e]) for e in sorted(owned[i]) if e in found)
            if i in direct and "langchain_id" not in direct[i].metadata:
                out.append(direct[i].to_document())
        return out

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # Scores are cosine similarities already: LangChain's cosine relevance (1 - cosine distance) is the same.
        return lambda score: score

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               filter: MetadataFilter | None = None, **kwargs: Any
                                               ) -> list[tuple[Document, float]]:
        """The ``k`` Documents nearest to a vector that pass ``filter``, with their cosine similarity."""
        collection = self._open(create=False)
        if collection is None or not any(embedding):
            return []
        index_filter = _pushdown(filter)
        want = k if filter is None else max(4 * k, 20)
        total = collection.text.count()
        while True:
            hits = collection.text.search(embedding, k=want, filter=index_filter)
            out = [(doc, h.score) for h in hits if _matches(doc := document_from_element(h.element), filter)]
            if len(out) >= k or len(hits) < want or want >= total:
                return out[:k]
            want *= 4

    def similarity_search_with_score(self, query: str, k: int = 4, filter: MetadataFilter | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` Documents most similar to ``query`` that pass ``filter``, with their cosine similarity."""
        if self._open(create=False) is None:
            return []
        assert self._embedding is not None
        return self.similarity_search_with_score_by_vector(self._embedding.embed_query(query), k, filter)

    def similarity_search(self, query: str, k: int = 4, filter: MetadataFilter | None = None,
                          **kwargs: Any) -> list[Document]:
        """The ``k`` Documents most similar to ``query`` that pass ``filter``."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    filter: MetadataFilter | None = None, **kwargs: Any) -> list[Document]:
        """The ``k`` Documents nearest to a vector that pass ``filter``."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: MetadataFilter | None = None,
                                                **kwargs: Any) -> list[Document]:
        """Maximal marginal relevance among the ``fetch_k`` nearest Documents. The index does not return stored
        vectors, so the candidates are embedded again (deterministic models give the stored vectors)."""
        import numpy as np
        from langchain_core.vectorstores.utils import maximal_marginal_relevance

        candidates = self.similarity_search_with_score_by_vector(embedding, max(fetch_k, k), filter)
        if not candidates:
            return []
        assert self._embedding is not None
        vectors = self._embedding.embed_documents([doc.page_content for doc, _ in candidates])
        chosen = maximal_marginal_relevance(np.array(embedding, dtype=np.float32), vectors, lambda_mult, k)
        return [candidates[i][0] for i in chosen]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: MetadataFilter | None = None, **kwargs: Any) -> list[Document]:
        """Maximal marginal relevance: ``k`` Documents relevant to ``query`` and diverse among themselves."""
        if self._open(create=False) is None:
            return []
        assert self._embedding is not None
        return self.max_marginal_relevance_search_by_vector(self._embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, filter)

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[Any, Any]] | None = None, *,
                   ids: list[str] | None = None, collection: str | None = None, settings: Settings | None = None,
                   **kwargs: Any) -> MmragVectorStore:
        """A store over ``collection`` (created if missing) with ``texts`` added."""
        store = cls(collection, embedding, settings=settings)
        store.add_texts(texts, metadatas, ids=list(ids) if ids is not None else None)
        return store


def _default_settings() -> Settings:
    from mmrag.config import Settings

    return Settings()
