"""Shared elements: one picture found in several places is indexed once, from its best place.

An image's id is its bytes (:class:`~mmrag.elements.Element`), so the picture inside a web page and the same
file in a folder (or twice in one PDF) is ONE element. The manifest records every place it appears
(:class:`~mmrag.stores.manifest.Place`: source, page, bbox, context text) durably, for every backend; the
vector index holds ONE record, built from the element's *primary* place:

- a place inside a document (a web page, a PDF) beats a standalone image file: the page gives context (alt
  text, figure caption, nearby text) that a bare file has not;
- then the longer context text; then the source name (alphabetical), then the order within the source.

The rule is independent of ingest order. File first, page later: the page's place wins and its run re-indexes
the element with the page's context (captions come from the cache; only the new context text is embedded).
Page first, file later: the file's run records its place and indexes nothing (no model calls). Removing a source
(``mmrag remove``, or a page that no longer shows the picture) keeps the element while another place remains;
when the removed place was the primary, the element is re-indexed from the best remaining one (from the cache
when that place was indexed before), so the index never keeps the context of a removed source.

Invariant: at rest, the record of a shared element is built from ``primary(places)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mmrag.elements import Element
from mmrag.stores.manifest import Place

if TYPE_CHECKING:
    from mmrag.chains._write import PreparedSource
    from mmrag.stores.collection import ObjectStore
    from mmrag.stores.manifest import ManifestStore

__all__ = ["SharedPlan", "collect", "element_at", "load_places", "place_of", "plan_group", "plan_removal", "primary",
           "rank"]

logger = logging.getLogger(__name__)


def place_of(element: Element, seq: int, *, in_document: bool, object_key: str | None = None) -> Place:
    """The place ``element`` (as parsed) occupies in its source."""
    meta = {k: v for k, v in element.metadata.items() if k != "content_hash"}
    return Place(element.id, element.source, seq, in_document, element.page, element.bbox, element.text,
                 element.mime_type, object_key or element.object_key, meta)


def rank(place: Place) -> tuple[int, int]:
    """Higher is better: inside a document first, then more context text (ties: see :func:`primary`)."""
    return (int(place.in_document), len(place.text.strip()))


def primary(places: Iterable[Place]) -> Place | None:
    """The place the index record is built from (module docstring), or None when there is none."""
    best: Place | None = None
    for p in places:
        if best is None or (rank(p), _order(best)) > (rank(best), _order(p)):
            best = p
    return best


def _order(place: Place) -> tuple[str, int]:
    return (place.source, place.seq)


def element_at(place: Place, data: bytes | None) -> Element:
    """The element as ``place`` shows it (its bytes given, or left in the object store under the place's key)."""
    meta = dict(place.metadata)
    if data is None:
        return Element.restore(id=place.id, kind="image", source=place.source, text=place.text, page=place.page,
                               bbox=place.bbox, mime_type=place.mime_type, object_key=place.object_key,
                               metadata=meta)
    element = Element(kind="image", source=place.source, text=place.text, page=place.page, bbox=place.bbox,
                      mime_type=place.mime_type, data=data, metadata=meta)
    return element if place.object_key is None else replace(element, object_key=place.object_key)


def _same(a: Place | None, b: Place | None) -> bool:
    return a is not None and b is not None and (a.source, a.seq, a.page, a.bbox, a.text) == (
        b.source, b.seq, b.page, b.bbox, b.text)


@dataclass(frozen=True)
class SharedPlan:
    """What a group of sources does with its shared elements.

    Attributes:
        group: the sources with ``new`` cut to the elements this group must index, ``shared`` set to the ids
            only recorded as another place, and ``stale`` cut to ids no other source holds.
        promoted: elements to (re-)index from a place of a source outside the group (their primary changed).
    """

    group: tuple[PreparedSource, ...]
    promoted: tuple[Element, ...]


def plan_group(group: Sequence[PreparedSource], manifest: ManifestStore, objects: ObjectStore) -> SharedPlan:
    """Decide, for every shared element a group adds or drops, which place is indexed (module docstring).

    Reads the manifest as the earlier groups left it (groups write one after another).
    """
    members = {p.source for p in group}
    added = {e.id for p in group for e in p.new if e.shareable}
    committed = manifest.places(added | {i for p in group for i in p.stale})
    touched = added | set(committed)  # dropped ids without places are not shared: deleted as before
    if not touched:
        return SharedPlan(tuple(group), ())
    now: dict[str, list[Place]] = {i: [pl for pl in places if pl.source not in members]
                                   for i, places in committed.items()}
    for p in group:
        for pl in p.places:
            if pl.id in touched:
                now.setdefault(pl.id, []).append(pl)
    winners = {i: primary(now.get(i, ())) for i in touched}
    indexing: dict[str, str] = {}  # id → the group source that indexes it
    for p in group:
        for e in p.new:
            w = winners.get(e.id)
            if w is not None and w.source == p.source and e.id not in indexing:
                indexing[e.id] = p.source
    planned = []
    for p in group:
        # The record is built from the winning place (a picture repeated in one page: the occurrence with most context).
        new = tuple(e if e.id not in touched else _at_winner(e, winners[e.id]) for e in p.new
                    if e.id not in touched or indexing.get(e.id) == p.source)
        shared = frozenset(e.id for e in p.new if e.id in touched and indexing.get(e.id) != p.source)
        stale = frozenset(i for i in p.stale if i not in touched or winners.get(i) is None)
        planned.append(replace(p, new=new, shared=p.shared | shared, stale=stale))
    rewrite = [w for i, w in winners.items() if w is not None and i not in indexing
               and not _same(primary(committed.get(i, ())), w)]
    # A group member's place has its bytes at hand (parsed this run); others come back from the object store.
    parsed = {e.id: e.data for p in group for e in p.elements if e.shareable and e.data is not None}
    promoted = [element_at(w, parsed[w.id]) for w in rewrite if w.id in parsed]
    promoted += load_places([w for w in rewrite if w.id not in parsed], objects)
    return SharedPlan(tuple(planned), tuple(promoted))


def _at_winner(element: Element, winner: Place | None) -> Element:
    if winner is None or element.data is None or _same(place_of(element, winner.seq, in_document=True), winner):
        return element
    return element_at(winner, element.data)


def plan_removal(sources: Iterable[str], manifest: ManifestStore, ids: Iterable[str]) -> tuple[list[str], list[Place]]:
    """For removing ``sources``: the ids to delete from the index, and the places to re-index from.

    An id another source still holds is kept; when its primary place was in a removed source, the best remaining
    place is returned to be re-indexed.
    """
    gone = set(sources)
    ids = set(ids)
    holders = manifest.holders(ids)
    places = manifest.places(ids)
    delete = sorted(i for i in ids if not (holders.get(i, set()) - gone))
    rewrite = []
    for i in sorted(ids - set(delete)):
        before = primary(places.get(i, ()))
        after = primary(pl for pl in places.get(i, ()) if pl.source not in gone)
        if after is not None and not _same(before, after):
            rewrite.append(after)
    return delete, rewrite


def load_places(places: Sequence[Place], objects: ObjectStore) -> list[Element]:
    """The elements of ``places`` with their bytes back from the object store (the captioner needs them)."""
    keys = [p.object_key for p in places if p.object_key]
    data: Mapping[str, bytes | None] = dict(zip(keys, objects.mget(keys), strict=True)) if keys else {}
    out = []
    for p in places:
        found = data.get(p.object_key) if p.object_key else None
        if found is None:  # a damaged store: keep the record as it is rather than index a picture without pixels
            logger.warning("the object of %s (%s) is missing: not indexed again from %s", p.id, p.object_key, p.source)
            continue
        out.append(element_at(p, found))
    return out


def collect(parsed: Iterable[Element], *, in_document: bool) -> tuple[dict[str, Element], tuple[Place, ...]]:
    """A source's elements by id (the first occurrence of a repeated picture) and every place of its images."""
    elements: dict[str, Element] = {}
    places: list[Place] = []
    seen: dict[str, int] = {}
    for e in parsed:
        elements.setdefault(e.id, e)
        if e.shareable:
            places.append(place_of(e, seen.get(e.id, 0), in_document=in_document))
            seen[e.id] = seen.get(e.id, 0) + 1
    return elements, tuple(places)
