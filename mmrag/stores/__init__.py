"""Vector indexes and object stores.

Backends import their SDKs lazily: ``FaissIndex`` (embedded default), ``OpenSearchIndex``
(``mmrag[opensearch]``), ``PgVectorIndex`` (``mmrag[pgvector]``); objects go to ``LocalObjectStore`` (a folder)
or ``S3ObjectStore`` (``mmrag[aws]``).
"""

from mmrag.stores.base import (
    FILTER_FIELDS,
    SPACES,
    Filter,
    IndexRecord,
    ScoredRecord,
    Space,
    VectorIndex,
    element_from_payload,
    element_payload,
    matches_filter,
)

__all__ = [
    "FILTER_FIELDS",
    "SPACES",
    "Filter",
    "IndexRecord",
    "ScoredRecord",
    "Space",
    "VectorIndex",
    "element_from_payload",
    "element_payload",
    "matches_filter",
]
