"""The manifest's row types, shared by every implementation (sqlite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from mmrag.elements import BBox

__all__ = ["Place", "SourceEntry", "entry_from_row"]


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """A committed source: its fingerprint, element count, counts by kind, and when it was ingested."""

    source: str
    fingerprint: str
    elements: int
    kinds: Mapping[str, int]
    ingested_at: float


@dataclass(frozen=True, slots=True)
class Place:
    """One place where an element appears: a source and, inside it, the page, region and context around it.

    An image's id is its content (:class:`~mmrag.elements.Element`), so the same picture inside a web page and as
    a file in a folder is one element with two places. The index holds one record per element, built from its
    primary place (:func:`mmrag.chains._places.primary`); the manifest keeps every place, so hits list them all
    and removing one source leaves the element with the places that remain.

    Attributes:
        id: the element's id.
        source: the source it appears in.
        seq: 0 for the first occurrence in that source, 1 for the next...
        in_document: found inside a document (a web page, a PDF), not as a standalone image file.
        page, bbox: where in the source (PDF pages), if known.
        text: the context the source gives it (alt text, figure caption, nearby text).
        mime_type, object_key: the stored object.
        metadata: the parser's facts (``src``, ``width``, section...), enough to rebuild the element.
    """

    id: str
    source: str
    seq: int
    in_document: bool
    page: int | None
    bbox: BBox | None
    text: str
    mime_type: str | None
    object_key: str | None
    metadata: Mapping[str, Any]

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.source, self.seq, int(self.in_document), self.page,
                json.dumps(list(self.bbox)) if self.bbox else None, self.text, self.mime_type, self.object_key,
                json.dumps(dict(self.metadata), sort_keys=True, default=str))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Place:
        i, source, seq, in_document, page, bbox, text, mime, key, meta = row
        box = cast("BBox", tuple(json.loads(bbox))) if bbox else None
        return cls(i, source, int(seq), bool(in_document), page, box, text, mime, key, json.loads(meta))



def entry_from_row(row: tuple[Any, ...]) -> SourceEntry:
    source, fingerprint, elements, kinds, at = row
    return SourceEntry(source, fingerprint, elements, json.loads(kinds), at)
