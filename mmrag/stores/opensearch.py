"""OpenSearch as a :class:`~mmrag.stores.base.VectorIndex`, for collections that outgrow one machine.

Install with ``pip install 'mmrag[opensearch]'``. One OpenSearch index holds one vector space of one collection::

    client = connect("https://search-x.eu-west-1.es.amazonaws.com", auth="sigv4")
    index = OpenSearchIndex(client, "mmrag-docs-text", dimensions=1024)
    index.add(records); index.persist()
    index.search(query_vector, k=10, filter={"kind": ["table", "image"]})

The index is created on first use: HNSW on the faiss engine with ``innerproduct`` over L2-normalised vectors
(so scores convert exactly to cosine similarity, comparable with :class:`~mmrag.stores.faiss.FaissIndex`), BM25 on
``text``, keyword fields for the filters. Writes go through ``_bulk`` in bounded batches (count and ~5 MiB), and a
failed item raises :class:`~mmrag.errors.StoreError` naming its id.

OpenSearch Serverless (``service="aoss"``) differs in three documented ways, and this class adapts:

* there is no ``_refresh`` API: :meth:`OpenSearchIndex.persist` does nothing and writes become searchable after the
  collection's own refresh (eventual visibility, typically seconds);
* vector search collections refuse custom document ids (``_id``) on index requests: documents get server ids,
  and the element id lives in the ``element_id`` keyword field, which ``get``, ``delete`` and upserts look up;
  an upsert deletes the stored copies it can already see, so a record re-added before its first write became
  visible may briefly exist twice (``count`` then says so) until it is added again;
* ``delete_by_query`` is not relied on: ``delete_source`` finds the matching documents and bulk-deletes them.

Serverless is detected from the client (an ``*.aoss.amazonaws.com`` host or an ``aoss`` SigV4 signer), or set with
``serverless=True``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

from mmrag.elements import Element
from mmrag.errors import StoreError
from mmrag.stores._opensearch_client import (
    Auth,
    Service,
    client_url,
    connect,
    looks_serverless,
    opensearch_errors,
    require_opensearchpy,
)
from mmrag.stores._opensearch_dsl import (
    MAX_BULK_BYTES,
    SPACE_TYPE,
    VECTOR_FIELD,
    bulk_batches,
    index_body,
    keyword_body,
    knn_body,
    record_document,
    score_to_cosine,
)
from mmrag.stores.base import Filter, IndexRecord, ScoredRecord, check_filter, element_from_payload

__all__ = ["OpenSearchIndex", "connect"]

logger = logging.getLogger(__name__)

_PAGE = 1000  # documents per lookup page (Serverless id lookups, delete_source there)

_Action: TypeAlias = tuple[str, dict[str, Any], dict[str, Any] | None]
"""One bulk action: the element id it concerns (for error messages), its metadata line, its document (None: delete)."""


class OpenSearchIndex:
    """One vector space of one collection in an OpenSearch index (a domain, a self-managed cluster or Serverless).

    Args:
        client: an ``opensearchpy.OpenSearch`` client (see :func:`connect`).
        index_name: the OpenSearch index; created on first use if missing.
        dimensions: the vector size; an existing index with another dimension is refused.
        batch_size: documents per bulk request (requests also stay under ~5 MiB).
        refresh: whether :meth:`persist` and :meth:`delete_source` refresh the index so that writes are searchable
            at once; without it they become searchable after the index's refresh interval. Never on Serverless.
        serverless: whether the endpoint is OpenSearch Serverless; None detects it from the client.
    """

    def __init__(
        self,
        client: Any,
        index_name: str,
        dimensions: int,
        *,
        batch_size: int = 500,
        refresh: bool = True,
        serverless: bool | None = None,
    ) -> None:
        if dimensions <= 0:
            raise ValueError("dimensions must be positive")
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.client = client
        self.index_name = index_name
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.serverless = looks_serverless(client) if serverless is None else serverless
        self.refresh = refresh and not self.serverless
        self._space_type: str | None = None  # known once the index exists and its mapping was checked

    @classmethod
    def from_url(
        cls,
        url: str,
        index_name: str,
        dimensions: int,
        *,
        auth: Auth = "basic",
        user: str | None = None,
        password: str | None = None,
        region: str | None = None,
        service: Service = "es",
        verify_certs: bool = True,
        timeout: float = 30,
        batch_size: int = 500,
        refresh: bool = True,
    ) -> OpenSearchIndex:
        """Connect (see :func:`connect`) and open ``index_name``; ``service="aoss"`` selects Serverless."""
        client = connect(
            url, auth=auth, user=user, password=password, region=region, service=service,
            verify_certs=verify_certs, timeout=timeout,
        )
        return cls(client, index_name, dimensions, batch_size=batch_size, refresh=refresh,
                   serverless=service == "aoss")

    def __repr__(self) -> str:
        return f"OpenSearchIndex({client_url(self.client)!r}, {self.index_name!r}, dimensions={self.dimensions})"

    # --- index lifecycle ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        timeout = require_opensearchpy().exceptions.ConnectionTimeout
        with opensearch_errors(action, self.client, self.index_name):
            try:
                yield
            except timeout as e:  # the cluster is up but slow: "is the cluster up?" would mislead
                seconds = getattr(_first_connection(self.client), "timeout", None)
                within = f" within {seconds:g} s" if isinstance(seconds, int | float) else ""
                raise StoreError(
                    f"OpenSearch {action} on index {self.index_name!r} at {client_url(self.client)} got no answer"
                    f"{within}; a busy cluster may still apply a write (adding the same records again is safe, they "
                    f"are keyed by element id): connect with a longer timeout, or write smaller batches (batch_size)"
                ) from e

    def _ensure_index(self) -> str:
        """Create the index if missing, else check its vector mapping; returns its space type."""
        if self._space_type is not None:
            return self._space_type
        with self._errors("index check"):
            exists = bool(self.client.indices.exists(index=self.index_name))
        if not exists and self._create_index():
            self._space_type = SPACE_TYPE
            return SPACE_TYPE
        with self._errors("mapping check"):
            mapping = self.client.indices.get_mapping(index=self.index_name)
        self._space_type = self._check_mapping(mapping)
        return self._space_type

    def _create_index(self) -> bool:
        """Create the index; False if another writer created it first (its mapping is then checked)."""
        opensearchpy = require_opensearchpy()
        with self._errors("index creation"):
            try:
                self.client.indices.create(index=self.index_name, body=index_body(self.dimensions))
            except opensearchpy.exceptions.RequestError as e:
                if e.error != "resource_already_exists_exception":
                    raise
                return False
        logger.info("created OpenSearch index %s (%d dimensions)", self.index_name, self.dimensions)
        return True

    def _check_mapping(self, mapping: Mapping[str, Any]) -> str:
        props: Mapping[str, Any] = {}
        for body in mapping.values():  # keyed by the concrete index name (an alias resolves to it)
            props = body.get("mappings", {}).get("properties", {})
            break
        field = props.get(VECTOR_FIELD)
        if not isinstance(field, Mapping) or field.get("type") != "knn_vector":
            raise StoreError(
                f"OpenSearch index {self.index_name!r} exists but has no knn_vector field {VECTOR_FIELD!r}: "
                "it was not made by mmrag; choose another collection name or delete that index"
            )
        found = field.get("dimension")
        if found is not None and int(found) != self.dimensions:
            raise StoreError(
                f"OpenSearch index {self.index_name!r} holds {found}-dimensional vectors but the embedding model "
                f"gives {self.dimensions}: use the model the collection was built with, or another collection name"
            )
        space = field.get("space_type") or field.get("method", {}).get("space_type") or "l2"
        if space not in ("innerproduct", "cosinesimil"):
            raise StoreError(
                f"OpenSearch index {self.index_name!r} uses space_type {space!r}; mmrag needs innerproduct or "
                "cosinesimil for cosine scores: choose another collection name or recreate the index"
            )
        return str(space)

    def _check_dimensions(self, vector: Sequence[float], what: str) -> None:
        if len(vector) != self.dimensions:
            raise StoreError(f"{what} has {len(vector)} dimensions but index {self.index_name!r} has {self.dimensions}")

    # --- writes ------------------------------------------------------------------------------------------

    def add(self, records: Sequence[IndexRecord]) -> None:
        """Upsert records by element id in bulk batches; raises StoreError naming the first ids that failed."""
        if not records:
            return
        for record in records:
            self._check_dimensions(record.vector, f"record {record.id}")
        self._ensure_index()
        latest = {record.id: record for record in records}  # the last copy of an id wins, as in sequential upserts
        actions: list[_Action] = []
        if self.serverless:  # no custom _id: drop the copies already stored, then index with server-assigned ids
            actions += [(element_id, {"delete": {"_id": doc_id}}, None) for doc_id, element_id in
                        self._find(self._ids_query(list(latest)))]
            actions += [(r.id, {"index": {}}, record_document(r)) for r in latest.values()]
        else:
            actions += [(r.id, {"index": {"_id": r.id}}, record_document(r)) for r in latest.values()]
        self._bulk(actions, "bulk write")

    def _bulk(self, actions: Sequence[_Action], action: str) -> list[Any]:
        """Send ``(element id, metadata, document)`` actions in bounded batches; every item result, in order.

        Raises StoreError naming the element ids of the failed items (after earlier batches were written)."""
        items: list[Any] = []
        pairs = [(meta, doc) for _, meta, doc in actions]
        for body, count in bulk_batches(pairs, max_actions=self.batch_size, max_bytes=MAX_BULK_BYTES):
            with self._errors(action):
                response = self.client.bulk(body=body, index=self.index_name)
            batch = [next(iter(item.values())) for item in response.get("items", [])]
            if response.get("errors"):
                labels = [element_id for element_id, _, _ in actions[len(items) : len(items) + count]]
                self._raise_item_errors(batch, labels, action)
            items += batch
        return items

    def _raise_item_errors(self, items: Sequence[Mapping[str, Any]], labels: Sequence[str], action: str) -> None:
        failed = [(label, item) for label, item in zip(labels, items, strict=False) if item.get("error")]
        if not failed:
            return
        error = failed[0][1]["error"]
        reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, Mapping) else str(error)
        ids = ", ".join(label for label, _ in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise StoreError(
            f"OpenSearch {action} to index {self.index_name!r} failed for {len(failed)} of {len(items)} documents "
            f"(ids {ids}{more}); first error: {reason}"
        )

    def delete(self, ids: Sequence[str]) -> int:
        """Remove these ids; returns how many were there."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return 0
        self._ensure_index()
        if self.serverless:
            found = self._find(self._ids_query(unique))
            self._bulk([(element_id, {"delete": {"_id": doc_id}}, None) for doc_id, element_id in found], "bulk delete")
            return len({element_id for _, element_id in found})
        items = self._bulk([(i, {"delete": {"_id": i}}, None) for i in unique], "bulk delete")
        return sum(1 for item in items if item.get("result") == "deleted")

    def delete_source(self, source: str) -> int:
        """Remove every record of one source; returns how many."""
        self._ensure_index()
        query = {"term": {"source": source}}
        if self.serverless:
            found = self._find(query)
            self._bulk([(element_id, {"delete": {"_id": doc_id}}, None) for doc_id, element_id in found], "bulk delete")
            return len(found)
        with self._errors("delete_by_query"):
            response = self.client.delete_by_query(
                index=self.index_name, body={"query": query}, refresh=self.refresh, conflicts="proceed"
            )
        if response.get("failures"):
            raise StoreError(
                f"OpenSearch delete_by_query on index {self.index_name!r} for source {source!r} failed: "
                f"{response['failures'][0]}; run it again to delete the rest"
            )
        return int(response.get("deleted", 0))

    def persist(self) -> None:
        """Refresh the index so every write so far is searchable (on Serverless: nothing to do, see module doc)."""
        if self._space_type is None and not self.refresh:
            return
        self._ensure_index()
        if self.refresh:
            with self._errors("refresh"):
                self.client.indices.refresh(index=self.index_name)

    # --- reads -------------------------------------------------------------------------------------------

    def count(self) -> int:
        self._ensure_index()
        with self._errors("count"):
            return int(self.client.count(index=self.index_name)["count"])

    def get(self, ids: Sequence[str]) -> list[Element]:
        """The stored elements with these ids, in the order asked (missing ids are left out)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        self._ensure_index()
        sources: dict[str, Mapping[str, Any]] = {}
        if self.serverless:
            for start in range(0, len(unique), _PAGE):
                chunk = unique[start : start + _PAGE]
                body = {"size": len(chunk), "_source": {"excludes": [VECTOR_FIELD]}, "query": self._ids_query(chunk)}
                with self._errors("search"):
                    response = self.client.search(index=self.index_name, body=body)
                for hit in response["hits"]["hits"]:
                    sources[hit["_source"]["element_id"]] = hit["_source"]
        else:
            for start in range(0, len(unique), self.batch_size):
                chunk = unique[start : start + self.batch_size]
                with self._errors("mget"):
                    response = self.client.mget(
                        index=self.index_name, body={"ids": chunk}, _source_excludes=[VECTOR_FIELD]
                    )
                for doc in response["docs"]:
                    if doc.get("found"):
                        sources[doc["_id"]] = doc["_source"]
        return [element_from_payload(sources[i]["payload"]) for i in unique if i in sources]

    def search(self, vector: Sequence[float], k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The k records nearest to ``vector`` by cosine similarity, best first (efficient k-NN filtering)."""
        check_filter(filter)
        self._check_dimensions(vector, "the query vector")
        if k <= 0:
            return []
        space = self._ensure_index()
        with self._errors("k-NN search"):
            response = self.client.search(index=self.index_name, body=knn_body(vector, k, filter))
        return [
            self._scored(hit, score_to_cosine(float(hit["_score"]), space))
            for hit in response["hits"]["hits"][:k]
        ]

    def keyword_search(self, query: str, k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The k records whose text best matches ``query`` by BM25, best first (no match: not returned)."""
        check_filter(filter)
        if k <= 0 or not query.strip():
            return []
        self._ensure_index()
        with self._errors("keyword search"):
            response = self.client.search(index=self.index_name, body=keyword_body(query, k, filter))
        return [self._scored(hit, float(hit["_score"])) for hit in response["hits"]["hits"][:k]]

    @staticmethod
    def _scored(hit: Mapping[str, Any], score: float) -> ScoredRecord:
        source = hit["_source"]
        return ScoredRecord(element=element_from_payload(source["payload"]), score=score, text=source.get("text", ""))

    # --- Serverless helpers: documents found by element id instead of _id ---------------------------------

    @staticmethod
    def _ids_query(ids: Iterable[str]) -> dict[str, Any]:
        return {"terms": {"element_id": list(ids)}}

    def _find(self, query: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(_id, element_id)`` of every document matching ``query``, paged with ``search_after``."""
        found: list[tuple[str, str]] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": _PAGE, "_source": ["element_id"], "query": query,
                # element_id is not unique (copies of one element): _id breaks ties, or search_after would skip the
                # copies left at a page boundary (OpenSearch, "Paginate results": sort on a unique tiebreaker).
                "sort": [{"element_id": "asc"}, {"_id": "asc"}],
            }
            if after is not None:
                body["search_after"] = after
            with self._errors("search"):
                hits = self.client.search(index=self.index_name, body=body)["hits"]["hits"]
            found += [(hit["_id"], hit["_source"]["element_id"]) for hit in hits]
            if len(hits) < _PAGE:
                return found
            after = hits[-1]["sort"]


def _first_connection(client: Any) -> Any:
    try:
        return client.transport.connection_pool.connections[0]
    except (AttributeError, IndexError, TypeError):
        return None
