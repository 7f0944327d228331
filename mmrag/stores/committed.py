"""A vector index seen through the manifest: searches return committed elements only.

Ingest writes an element's records before it commits its source (see :mod:`mmrag.chains.ingestion`), so for a
moment (or, after a crash, until the next run or ``mmrag collections gc``) an index holds records that no
committed source owns. :class:`CommittedView` wraps each space of a collection and drops those records from
every read; writes go straight through. At rest nothing is pending, and a search costs one extra
``SELECT NOT EXISTS`` on the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrag.elements import Element
from mmrag.stores.base import Filter, IndexRecord, ScoredRecord, VectorIndex
from mmrag.stores.manifest import ManifestStore

__all__ = ["CommittedView"]


class CommittedView:
    """A :class:`~mmrag.stores.base.VectorIndex` that hides uncommitted records of ``inner``.

    Args:
        inner: the backend index (FAISS, OpenSearch, pgvector).
        manifest: the collection's manifest, which knows what is committed.

    Any other attribute is the inner index's (``close``, ``table``...).
    """

    def __init__(self, inner: VectorIndex, manifest: ManifestStore) -> None:
        self.inner = inner
        self.manifest = manifest
        self.dimensions = inner.dimensions

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"CommittedView({self.inner!r})"

    # -- reads: committed records only ---------------------------------------------------------------------

    def search(self, vector: Sequence[float], k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        hidden = self.manifest.uncommitted_count()
        if not hidden:
            return self.inner.search(vector, k, filter)
        return self._visible(self.inner.search(vector, k + hidden, filter))[:k]

    def keyword_search(self, query: str, k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        hidden = self.manifest.uncommitted_count()
        if not hidden:
            return self.inner.keyword_search(query, k, filter)
        return self._visible(self.inner.keyword_search(query, k + hidden, filter))[:k]

    def get(self, ids: Sequence[str]) -> list[Element]:
        found = self.inner.get(ids)
        if not found or not self.manifest.uncommitted_count():
            return found
        hidden = self.manifest.uncommitted([e.id for e in found])
        return [e for e in found if e.id not in hidden]

    def _visible(self, hits: list[ScoredRecord]) -> list[ScoredRecord]:
        hidden = self.manifest.uncommitted([h.id for h in hits])
        return [h for h in hits if h.id not in hidden]

    # -- writes and housekeeping: straight through ---------------------------------------------------------

    def add(self, records: Sequence[IndexRecord]) -> None:
        self.inner.add(records)

    def delete(self, ids: Sequence[str]) -> int:
        return self.inner.delete(ids)

    def delete_source(self, source: str) -> int:
        return self.inner.delete_source(source)

    def count(self) -> int:
        """Records in the index, committed or not."""
        return self.inner.count()

    def persist(self) -> None:
        self.inner.persist()
