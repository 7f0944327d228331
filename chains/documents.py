"""LangChain ``Document`` s in a collection: :func:`ingest_documents` for any loader's output, and the text-only
write step it shares with :class:`~mmrag.chains.vectorstore.MmragVectorStore`.

Any ``BaseLoader`` (langchain-core's interface, so a loader from any package fits: ``langchain-community``, a
standalone ``langchain-*`` integration, your own) yields Documents; :func:`ingest_documents` turns them into text
elements of the collection, grouped by their ``source`` metadata, so that ``mmrag ask`` and ``mmrag search`` cite
them with their source and page. Like :func:`mmrag.chains.ingestion.ingest` it is idempotent: a source whose
documents did not change is skipped without a model call, a changed one gets only its new elements embedded and
loses the ones that are gone.

Writes keep the collection consistent through a crash, in the order :mod:`mmrag.chains._write` uses: claim the new
ids in the manifest → add them to the text space → persist → delete the stale ones → persist → commit the source.
``MMRAG_CRASH_AT=index`` or ``delete`` kills the process after that step (:func:`mmrag.chains._write.crash_point`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mmrag.elements import Element, content_hash

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

    from mmrag.chains.ingestion import IngestReport
    from mmrag.config import Settings
    from mmrag.stores.collection import Collection

__all__ = ["TextSource", "WriteResult", "document_element", "fingerprint", "document_from_element", "document_page",
           "document_source", "ingest_documents", "plain_metadata", "write_text_sources"]

logger = logging.getLogger(__name__)

NO_SOURCE = "langchain:"
"""Prefix of the source of a Document without ``source`` metadata: ``langchain:<its id or content hash>``."""
_RESERVED = frozenset({"content_hash", "csv", "source"})
"""Metadata keys that mean something else on an element (its id, a table's CSV, the source field itself)."""
BATCH = 128
"""Elements embedded per model call batch (and written per manifest transaction group)."""


def plain_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as plain JSON values (what every backend stores): dates and other objects become strings."""
    return dict(json.loads(json.dumps(dict(metadata), default=str, ensure_ascii=False)))


def document_page(metadata: Mapping[str, Any]) -> int | None:
    """The 1-based page of a Document: ``page_number`` (1-based, as Unstructured gives it), else ``page``
    (0-based, as LangChain's PDF loaders give it) plus one; None when neither is a non-negative integer."""
    for key, offset in (("page_number", 0), ("page", 1)):
        value = metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value + offset >= 1:
            return value + offset
    return None


@dataclass(frozen=True)
class TextSource:
    """The text elements one source should hold after the write (they replace what it held)."""

    source: str
    fingerprint: str
    elements: tuple[Element, ...]
    texts: Mapping[str, str] | None = None
    """What the text space embeds and BM25 matches, by element id (default: the element's text)."""


@dataclass(frozen=True)
class WriteResult:
    """What one write did to one source."""

    source: str
    status: Literal["new", "updated", "unchanged"]
    elements: int
    added: int
    removed: int


def write_text_sources(sources: Sequence[TextSource], collection: Collection, embedding: Embeddings
                       ) -> list[WriteResult]:
    """Make each source hold exactly its elements (see the module docstring for the order of the writes).

    A source whose fingerprint and element ids are already committed is left alone (no model call, no write).
    """
    from mmrag.chains._write import crash_point
    from mmrag.chains.upkeep import collection_lock
    from mmrag.stores.base import IndexRecord

    manifest = collection.manifest
    results: dict[str, WriteResult] = {}
    todo: list[tuple[TextSource, set[str], list[Element]]] = []
    for s in sources:
        ids = {e.id for e in s.elements}
        old = manifest.element_ids(s.source)
        entry = manifest.get(s.source)
        if entry is not None and entry.fingerprint == s.fingerprint and old == ids:
            results[s.source] = WriteResult(s.source, "unchanged", len(ids), 0, 0)
            continue
        new = list({e.id: e for e in s.elements if e.id not in old}.values())
        todo.append((s, old, new))
    if not todo:
        return [results[s.source] for s in sources]
    with collection_lock(collection, exclusive=False):
        for s, _, new in todo:
            manifest.claim(s.source, [e.id for e in new])
        fresh = [(s, e) for s, _, new in todo for e in new]
        texts = [(s.texts or {}).get(e.id, e.text) for s, e in fresh]
        vectors = embedding.embed_documents(texts) if texts else []
        records = [IndexRecord(e, v, t) for (_, e), v, t in zip(fresh, vectors, texts, strict=True)
                   if any(v) and t.strip()]  # a zero vector (no words to embed) has no direction
        if records:
            collection.text.add(records)
        collection.text.persist()
        crash_point("index")
        # What these sources no longer hold, unless a source outside them (or one of them, now) still does.
        kept = {e.id for s, _, _ in todo for e in s.elements}
        stale = {i for s, old, _ in todo for i in old} - kept
        held = manifest.holders(stale)
        mine = {s.source for s, _, _ in todo}
        stale = {i for i in stale if not (held.get(i, set()) - mine)}
        if stale:
            collection.text.delete(sorted(stale))
            collection.text.persist()
        crash_point("delete")
        for s, old, new in todo:
            manifest.commit(s.source, s.fingerprint, [(e.id, e.kind, e.object_key) for e in s.elements])
            status: Literal["new", "updated"] = "updated" if old else "new"
            removed = len(old - {e.id for e in s.elements})
            results[s.source] = WriteResult(s.source, status, len(s.elements), len(new), removed)
    return [results[s.source] for s in sources]


def document_source(document: Document) -> str:
    """The source a Document's element belongs to: its ``source`` metadata, else ``langchain:<id or hash>``."""
    source = document.metadata.get("source")
    if isinstance(source, str) and source.strip():
        return source
    return NO_SOURCE + (document.id or content_hash(document.page_content)[:32])


def document_element(document: Document, source: str) -> Element:
    """A Document as a text element of ``source``: its metadata (as JSON values) kept, its page 1-based. A
    Document with an ``id`` keeps it (``metadata["langchain_id"]``). The element's id covers the text, the id and
    the metadata, so a Document changed in any of them is written again (and the old element removed)."""
    meta = {k: v for k, v in plain_metadata(document.metadata).items() if k not in _RESERVED}
    if document.id:
        meta["langchain_id"] = document.id
    meta["content_hash"] = content_hash("langchain", document.page_content, json.dumps(meta, sort_keys=True))
    return Element("text", source, document.page_content, page=document_page(document.metadata), metadata=meta)


def document_from_element(element: Element) -> Document:
    """The Document an element was made from (:func:`document_element`): its id and its metadata as given; an
    element from a file mmrag parsed itself is :meth:`Element.to_document`."""
    lc_id = element.metadata.get("langchain_id")
    if not isinstance(lc_id, str):
        return element.to_document()
    from langchain_core.documents import Document

    meta = {k: v for k, v in element.metadata.items() if k not in ("langchain_id", "content_hash")}
    if not element.source.startswith(NO_SOURCE):
        meta["source"] = element.source
    return Document(page_content=element.text, metadata=meta, id=lc_id)


def fingerprint(elements: Sequence[Element]) -> str:
    return content_hash(*(json.dumps([e.id, dict(e.metadata)], sort_keys=True, default=str) for e in elements))


def ingest_documents(
    documents: Iterable[Document],
    collection: str | Collection | None = None,
    *,
    settings: Settings | None = None,
    embedding: Embeddings | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> IngestReport:
    """Ingest LangChain Documents (any loader's ``load()`` or ``lazy_load()``) as text elements.

    Documents are grouped by their ``source`` metadata (one manifest source each; a Document without one is a
    source of its own, ``langchain:<id or content hash>``) and each group replaces what its source held before.
    Blank documents are skipped.

    Args:
        documents: the Documents; their ``page_number`` (1-based) or ``page`` (0-based) metadata gives the page.
        collection: a collection name (default ``settings.collection``) or an open
            :class:`~mmrag.stores.collection.Collection`.
        settings: default ``Settings()``.
        embedding: the text model (default: the collection's, from ``settings``).
        progress: ``progress(stage, advance, total)`` as :func:`mmrag.chains.ingestion.ingest` calls it.

    Returns:
        The same report as :func:`~mmrag.chains.ingestion.ingest` (``mmrag ingest --json`` prints it).

    Raises:
        ConfigError: the collection was built with another text model.
    """
    from mmrag.chains._enrich import ModelCalls, indexed_text
    from mmrag.chains.ingestion import IngestReport, SourceReport

    started = time.perf_counter()
    tick = progress or (lambda stage, n, total: None)
    grouped: dict[str, dict[str, Element]] = {}
    for document in documents:
        if not document.page_content.strip():
            continue
        source = document_source(document)
        element = document_element(document, source)
        grouped.setdefault(source, {})[element.id] = element
    # Opened (or created) only once the loader has delivered: a loader that fails leaves no collection behind.
    opened, embedding = _open(collection, settings, embedding)
    tick("sources", 0, len(grouped))
    reports: list[SourceReport] = []
    batch: list[TextSource] = []
    counted = hasattr(embedding, "misses") and hasattr(embedding, "hits")  # the factory's CachedEmbeddings
    before = (embedding.misses, embedding.hits) if counted else (0, 0)  # type: ignore[attr-defined]
    added = 0

    def flush() -> None:
        nonlocal added
        for r in write_text_sources(batch, opened, embedding):
            added += r.added
            reports.append(SourceReport(r.source, r.status, elements={"text": r.elements} if r.elements else {},
                                        added=r.added, removed=r.removed))
            tick("sources", 1, None)
            tick("write", r.added, None)
        batch.clear()

    for source, by_id in grouped.items():
        elements = tuple(by_id.values())
        # Indexed as mmrag's own ingest indexes text: with the document's name (see indexed_text).
        batch.append(TextSource(source, fingerprint(elements), elements, {e.id: indexed_text(e) for e in elements}))
        if sum(len(s.elements) for s in batch) >= BATCH:
            flush()
    flush()
    calls = ModelCalls()
    if counted:
        calls.add("text embeddings", embedding.misses - before[0], embedding.hits - before[1])  # type: ignore[attr-defined]
    else:
        calls.add("text embeddings", added, 0)
    distinct = opened.manifest.totals(r.source for r in reports)
    return IngestReport(opened.name, tuple(reports), calls.to_dict(), 0.0, time.perf_counter() - started, 0,
                        distinct)


def _open(collection: str | Collection | None, settings: Settings | None,
          embedding: Embeddings | None) -> tuple[Collection, Embeddings]:
    """The collection (created if missing) and the text model to embed with."""
    if collection is not None and not isinstance(collection, str):
        if embedding is None:
            from mmrag.providers.factory import build_providers

            embedding = build_providers(settings or _settings()).text_embeddings
        return collection, embedding
    from mmrag.chains.vectorstore import open_text_collection

    return open_text_collection(settings or _settings(), collection, embedding, create=True)  # type: ignore[return-value]


def _settings() -> Settings:
    from mmrag.config import Settings

    return Settings()
