"""What every vector index and object store provides.

A collection has two vector spaces: ``text`` (text chunks, table summaries, image captions and OCR text,
embedded by the text model) and ``image`` (image vectors from the image embedder). Each space is one
:class:`VectorIndex`. A record carries the element itself (without its bytes, which live in the object
store under ``element.object_key``), so a hit can be turned back into the :class:`~mmrag.elements.Element`
it came from, with source, page, kind and object key for citations.

Scores are similarities, higher is better: cosine for vectors (in [-1, 1]), BM25 for keywords (>= 0).
The raw objects go to an ``ObjectStore``, which is LangChain's ``BaseStore[str, bytes]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, get_args, runtime_checkable

from mmrag.elements import Element
from mmrag.errors import StoreError

if TYPE_CHECKING:
    from langchain_core.stores import BaseStore

    ObjectStore: TypeAlias = BaseStore[str, bytes]

__all__ = [
    "FILTER_FIELDS",
    "SPACES",
    "Filter",
    "IndexRecord",
    "ScoredRecord",
    "Space",
    "VectorIndex",
    "check_filter",
    "element_from_payload",
    "element_payload",
    "matches_filter",
]

Space = Literal["text", "image"]
SPACES: tuple[str, ...] = get_args(Space)

FILTER_FIELDS: tuple[str, ...] = ("source", "kind", "page", "mime_type")
"""Fields a search can filter on. Every backend indexes them as exact-match fields."""

FilterValue: TypeAlias = str | int | None
Filter: TypeAlias = Mapping[str, FilterValue | Sequence[FilterValue]]
"""``{"kind": "table"}`` or ``{"kind": ["table", "image"], "source": "report.pdf"}``: every field must match;
a list matches any of its values. ``None`` matches a missing value (e.g. ``page`` of an HTML chunk)."""


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One element in one space.

    Attributes:
        element: the element, without its bytes (``data`` is None; ``object_key`` points to them).
        vector: its embedding in this space (the index normalises it for cosine similarity).
        text: what the keyword (BM25) side matches against: the chunk text, the table markdown and summary,
            or the image caption and OCR text.
    """

    element: Element
    vector: Sequence[float]
    text: str

    @property
    def id(self) -> str:
        return self.element.id

    def __post_init__(self) -> None:
        if self.element.data is not None:
            raise ValueError(f"element {self.element.id}: detach its bytes to the object store before indexing")
        if not self.vector or not all(math.isfinite(v) for v in self.vector):
            raise ValueError(f"element {self.element.id}: the vector is empty or not finite")


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    """A search result: the element, its similarity (higher is better), and the text that was indexed."""

    element: Element
    score: float
    text: str = ""

    @property
    def id(self) -> str:
        return self.element.id


@runtime_checkable
class VectorIndex(Protocol):
    """One vector space of one collection. Writes are upserts by element id.

    Implementations: :class:`mmrag.stores.faiss.FaissIndex` (embedded), ``OpenSearchIndex``,
    ``PgVectorIndex``. Every one passes the same conformance suite (``mmrag.testing.conformance``).
    """

    dimensions: int

    def add(self, records: Sequence[IndexRecord]) -> None:
        """Insert or replace records (by element id). Visible to searches once ``persist`` returns."""
        ...

    def search(self, vector: Sequence[float], k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The k records nearest to ``vector`` by cosine similarity, best first."""
        ...

    def keyword_search(self, query: str, k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The k records whose text best matches ``query`` by BM25, best first (no match: not returned)."""
        ...

    def get(self, ids: Sequence[str]) -> list[Element]:
        """The stored elements with these ids (missing ids are left out)."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Remove these ids; returns how many were there."""
        ...

    def delete_source(self, source: str) -> int:
        """Remove every record of one source; returns how many."""
        ...

    def count(self) -> int:
        ...

    def persist(self) -> None:
        """Make every write so far durable and visible (commit, refresh, or atomic file swap)."""
        ...


def check_filter(filter: Filter | None) -> dict[str, list[FilterValue]]:
    """Validate a filter and normalise every value to a list; raises ``StoreError`` naming a bad field."""
    out: dict[str, list[FilterValue]] = {}
    for key, value in (filter or {}).items():
        if key not in FILTER_FIELDS:
            raise StoreError(f"cannot filter on {key!r}: filterable fields are {', '.join(FILTER_FIELDS)}")
        values: list[FilterValue] = (
            list(value) if isinstance(value, list | tuple | set | frozenset) else [value]  # type: ignore[list-item]
        )
        for v in values:
            if not (v is None or isinstance(v, str | int)) or isinstance(v, bool):
                raise StoreError(f"filter {key}: values must be strings, integers or None, not {v!r}")
        out[key] = values
    return out


def matches_filter(element: Element, filter: Filter | None) -> bool:
    """Whether an element passes a filter (the reference semantics every backend must match)."""
    return all(getattr(element, key) in values for key, values in check_filter(filter).items())


def element_payload(element: Element) -> dict[str, Any]:
    """A JSON-ready dict from which :func:`element_from_payload` rebuilds the same element (same id)."""
    if element.data is not None:
        raise ValueError(f"element {element.id}: detach its bytes to the object store before storing it")
    return {
        "id": element.id,
        "kind": element.kind,
        "source": element.source,
        "text": element.text,
        "page": element.page,
        "bbox": list(element.bbox) if element.bbox else None,
        "mime_type": element.mime_type,
        "object_key": element.object_key,
        "metadata": dict(element.metadata),
    }


def element_from_payload(payload: Mapping[str, Any] | str, *, verify: bool = True) -> Element:
    """The element stored by :func:`element_payload` (a dict or its JSON).

    Args:
        verify: rebuild through the constructor and check that the id still matches the content. Stores that
            wrote the payload themselves and never change it pass False (:meth:`Element.restore`: no hashing).
    """
    data = json.loads(payload) if isinstance(payload, str) else payload
    bbox = data.get("bbox")
    if not verify and data.get("id"):
        return Element.restore(id=data["id"], kind=data["kind"], source=data["source"], text=data.get("text") or "",
                               page=data.get("page"), bbox=bbox, mime_type=data.get("mime_type"),
                               object_key=data.get("object_key"), metadata=data.get("metadata"))
    element = Element(
        kind=data["kind"],
        source=data["source"],
        text=data.get("text") or "",
        page=data.get("page"),
        bbox=tuple(bbox) if bbox else None,  # type: ignore[arg-type]
        mime_type=data.get("mime_type"),
        object_key=data.get("object_key"),
        metadata=data.get("metadata") or {},
    )
    if data.get("id") and element.id != data["id"]:
        raise StoreError(f"stored element {data['id']} does not match its content (got id {element.id})")
    return element
