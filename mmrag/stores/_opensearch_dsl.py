"""Request bodies for :class:`~mmrag.stores.opensearch.OpenSearchIndex`, as pure functions of their inputs.

Kept apart from the client so the exact JSON sent to OpenSearch can be checked without a server. Sources:

* mapping and space types: OpenSearch docs, "Methods and engines" and "Spaces"
  (https://docs.opensearch.org/latest/mappings/supported-field-types/knn-methods-engines/ and ``.../knn-spaces/``);
* k-NN query with a filter inside it: "Efficient k-NN filtering"
  (https://docs.opensearch.org/latest/vector-search/filter-search-knn/efficient-knn-filtering/).

Space type: ``innerproduct`` on vectors the index L2-normalises, so the inner product *is* the cosine. The faiss
engine accepts ``cosinesimil`` only from OpenSearch 2.19; ``innerproduct`` works with faiss on every 2.x/3.x
cluster and on Serverless, and ranks exactly like cosine once both sides have unit length.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mmrag.stores.base import FILTER_FIELDS, Filter, IndexRecord, check_filter, element_payload

__all__ = [
    "MAX_BULK_BYTES",
    "SPACE_TYPE",
    "VECTOR_FIELD",
    "bulk_batches",
    "filter_clause",
    "index_body",
    "keyword_body",
    "knn_body",
    "normalise",
    "record_document",
    "score_to_cosine",
]

VECTOR_FIELD = "vector"
SPACE_TYPE = "innerproduct"
MAX_BULK_BYTES = 5 * 1024 * 1024
"""Upper bound on one bulk request body. Amazon OpenSearch Service recommends 5-15 MiB bulk requests; 5 MiB stays
well under every domain's and Serverless' HTTP payload limit."""

_SOURCE_EXCLUDES = {"excludes": [VECTOR_FIELD]}  # hits need the payload, not a 1024-float vector each


def index_body(dimensions: int) -> dict[str, Any]:
    """Settings and mappings of a new index: HNSW/faiss k-NN on ``vector``, BM25 on ``text``, exact-match filters."""
    return {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimensions,
                    "method": {"name": "hnsw", "engine": "faiss", "space_type": SPACE_TYPE},
                },
                # The default similarity of a text field is BM25, and its default analyzer is "standard".
                "text": {"type": "text", "analyzer": "standard"},
                "element_id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "kind": {"type": "keyword"},
                "mime_type": {"type": "keyword"},
                "page": {"type": "integer"},
                # Stored in _source only: metadata is arbitrary JSON and must not grow the mapping.
                "payload": {"type": "object", "enabled": False},
            }
        },
    }


def normalise(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to unit length (a zero vector stays zero: it is equally far from everything)."""
    norm = math.sqrt(math.fsum(v * v for v in vector))
    return [float(v) / norm for v in vector] if norm > 0 else [0.0 for _ in vector]


def record_document(record: IndexRecord) -> dict[str, Any]:
    """The stored document of one record; ``payload`` rebuilds the element, the rest is indexed for search."""
    element = record.element
    return {
        "element_id": element.id,
        VECTOR_FIELD: normalise(record.vector),
        "text": record.text,
        "source": element.source,
        "kind": element.kind,
        "mime_type": element.mime_type,
        "page": element.page,
        "payload": element_payload(element),
    }


def _field_clause(field: str, values: Sequence[str | int | None]) -> dict[str, Any]:
    present = list(dict.fromkeys(v for v in values if v is not None))  # dedupe, keep order: stable request bodies
    missing = {"bool": {"must_not": [{"exists": {"field": field}}]}}
    exact: dict[str, Any] | None = None
    if len(present) == 1:
        exact = {"term": {field: present[0]}}
    elif present:
        exact = {"terms": {field: present}}
    if exact is None and None not in values:
        return {"bool": {"must_not": [{"match_all": {}}]}}  # an empty list of values matches nothing
    if exact is None:
        return missing
    if None not in values:
        return exact
    return {"bool": {"should": [exact, missing], "minimum_should_match": 1}}


def filter_clause(filter: Filter | None) -> list[dict[str, Any]]:
    """The filter as a list of clauses for a ``bool.filter`` (empty: no filter). Raises StoreError on a bad field.

    A value matches exactly (``term``), a list matches any of its values (``terms``), and ``None`` matches a missing
    field (``must_not: exists``), as in :func:`mmrag.stores.base.matches_filter`.
    """
    checked = check_filter(filter)
    return [_field_clause(field, checked[field]) for field in FILTER_FIELDS if field in checked]


def knn_body(vector: Sequence[float], k: int, filter: Filter | None = None) -> dict[str, Any]:
    """An approximate k-NN query; a filter goes *inside* the knn clause (efficient filtering, faiss >= 2.9).

    Efficient filtering returns k hits that all pass the filter; a ``post_filter`` or an outer bool would first
    take the k nearest and then drop the ones that fail, returning fewer than k.
    """
    query: dict[str, Any] = {"vector": normalise(vector), "k": k}
    clauses = filter_clause(filter)
    if clauses:
        query["filter"] = {"bool": {"filter": clauses}}
    return {"size": k, "_source": _SOURCE_EXCLUDES, "query": {"knn": {VECTOR_FIELD: query}}}


def keyword_body(text: str, k: int, filter: Filter | None = None) -> dict[str, Any]:
    """A BM25 ``match`` on ``text``; the user's text is a value to analyse, never query syntax to parse."""
    query: dict[str, Any] = {"must": [{"match": {"text": {"query": text, "operator": "or"}}}]}
    clauses = filter_clause(filter)
    if clauses:
        query["filter"] = clauses
    return {"size": k, "_source": _SOURCE_EXCLUDES, "query": {"bool": query}}


def score_to_cosine(score: float, space_type: str = SPACE_TYPE) -> float:
    """Cosine similarity from a k-NN ``_score`` (unit vectors), inverting OpenSearch's documented score formulas.

    ``innerproduct`` (faiss, nmslib; lucene is the same function): with ``d = -(x . y)``, the score is
    ``1 / (1 + d)`` when ``d >= 0`` and ``1 - d`` when ``d < 0``, i.e. ``1 + ip`` for ``ip > 0`` and
    ``1 / (1 - ip)`` for ``ip <= 0``. So ``ip = score - 1`` when ``score >= 1``, else ``ip = 1 - 1 / score``.

    ``cosinesimil``: with ``d = 1 - cos``, the score is ``(2 - d) / 2 = (1 + cos) / 2``, so ``cos = 2 * score - 1``.
    """
    if space_type == "innerproduct":
        similarity = score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    elif space_type == "cosinesimil":
        similarity = 2.0 * score - 1.0
    else:
        raise ValueError(f"no cosine for space type {space_type!r}")
    return max(-1.0, min(1.0, similarity))  # float noise must not leave the documented range


def bulk_batches(
    actions: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
    *,
    max_actions: int,
    max_bytes: int = MAX_BULK_BYTES,
) -> Iterator[tuple[str, int]]:
    """NDJSON bodies for ``_bulk`` and how many actions each holds: at most ``max_actions`` actions and (unless one
    action alone is bigger) at most ``max_bytes`` bytes. An action is its metadata line and its document line (None
    for a delete). Actions keep their order, so the n-th item of a response belongs to the n-th action sent."""
    lines: list[str] = []
    size = 0
    for meta, doc in actions:
        chunk = json.dumps(meta, separators=(",", ":")) + "\n"
        if doc is not None:
            chunk += json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"
        chunk_bytes = len(chunk.encode())
        if lines and (len(lines) >= max_actions or size + chunk_bytes > max_bytes):
            yield "".join(lines), len(lines)
            lines, size = [], 0
        lines.append(chunk)
        size += chunk_bytes
    if lines:
        yield "".join(lines), len(lines)
