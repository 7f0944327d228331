"""The write stage of ingest, in the order that keeps a collection consistent through a crash.

claim ids and their object keys in the manifest → objects (content-addressed, so rewriting is harmless) →
upsert both spaces → persist → delete what the sources no longer have → persist → commit the sources in the
manifest (with the places of its images) → delete the objects no element refers to any more.

A picture shared by several sources is written once, from its primary place (:mod:`mmrag.chains._places`
decides, before the model stage); the enriched elements may include such records of sources outside the group.

Until its source is committed, a record is in an index but hidden from searches (the collection's
:class:`~mmrag.stores.committed.CommittedView`); a crash leaves claims that the next run (or
``mmrag collections gc``) cleans up. ``MMRAG_CRASH_AT`` (``objects``, ``index``, ``delete``, ``commit``) kills the
process with SIGKILL at that point: the fault suite uses it to prove the order above.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from mmrag.chains._enrich import DESCRIBED, VISUAL, Enriched, indexed_text
from mmrag.elements import Element
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY
from mmrag.stores.base import IndexRecord
from mmrag.stores.manifest import Place
from mmrag.stores.objects import object_key

if TYPE_CHECKING:
    from mmrag.stores.collection import Collection, ObjectStore

__all__ = ["PreparedSource", "caption_failed", "crash_point", "index_enriched", "index_records", "store_objects",
           "write_group"]

_OBJECT_WRITERS = 8


@dataclass(frozen=True)
class PreparedSource:
    """A parsed source ready for the model stage: all its elements, the new ones, and ids to remove."""

    source: str
    fingerprint: str
    elements: tuple[Element, ...]
    new: tuple[Element, ...]
    stale: frozenset[str]
    warnings: tuple[str, ...]
    status: Literal["new", "updated"]
    places: tuple[Place, ...] = ()
    """Where its shareable elements (images) appear in it: committed with the source (:mod:`._places`)."""
    shared: frozenset[str] = frozenset()
    """Ids of new elements that another place already indexes: committed for this source, not indexed again."""


def caption_failed(enriched: Enriched) -> set[str]:
    """Ids of images and tables that got no caption or summary: left pending, retried by the next run."""
    return {e.id for e in enriched.elements if e.kind in DESCRIBED
            and not (e.metadata.get(CAPTION_KEY) or e.metadata.get(SUMMARY_KEY))}


def crash_point(name: str) -> None:
    """Die here, as ``kill -9`` would, when ``MMRAG_CRASH_AT`` names this point (fault-injection tests)."""
    if os.environ.get("MMRAG_CRASH_AT") == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def planned_key(element: Element) -> str | None:
    """The object key :func:`_store_object` will give ``element`` (claimed before the object is written)."""
    if element.data is not None:
        return object_key(element.data, element.mime_type)
    csv = element.metadata.get("csv")
    if element.kind == "table" and isinstance(csv, str) and csv:
        return object_key(csv.encode("utf-8"), "text/csv")
    return element.object_key


def _store_object(element: Element, objects: ObjectStore) -> Element:
    """Move bytes (images, page renders) or a table's CSV to the object store; the element keeps the key."""
    if element.data is not None:
        return element.detach(objects.put(element.data, element.mime_type))
    csv = element.metadata.get("csv")
    if element.kind == "table" and isinstance(csv, str) and csv:
        key = objects.put(csv.encode("utf-8"), "text/csv")
        meta = {k: v for k, v in element.metadata.items() if k != "csv"}
        return replace(element, object_key=key, metadata=meta)
    return element


def write_group(group: Sequence[PreparedSource], enriched: Enriched, collection: Collection) -> None:
    """Write a group's new elements and commit its sources (see the module docstring for the order).

    The index writes and the commits run in the manifest's ``atomic`` block: with PostgreSQL (pgvector and
    its manifest on one connection) they are one transaction, so a crash anywhere in it leaves nothing of it;
    with FAISS and sqlite they land in the order written, which keeps a crash consistent just the same.
    """
    manifest = collection.manifest
    keys = {e.id: planned_key(e) for e in enriched.elements}
    for p in group:
        manifest.claim(p.source, [(e.id, keys.get(e.id)) for e in p.new])
    stored = store_objects(enriched, collection)
    with manifest.atomic():
        index_records(stored, enriched, collection)
        crash_point("index")
        stale = sorted({i for p in group for i in p.stale})
        if stale:
            collection.text.delete(stale)
            collection.image.delete(stale)
            collection.text.persist()
            collection.image.persist()
        crash_point("delete")
        stored_keys = {e.id: e.object_key for e in stored}
        # An image or table whose caption failed is committed (searchable by its context text) and claimed
        # again: the source is then not "unchanged" next run, and only those elements go to the captioner again.
        failed = caption_failed(enriched)
        for n, p in enumerate(group):
            if n:
                crash_point("commit")
            key_of = {e.id: stored_keys.get(e.id) or planned_key(e) for e in p.elements}
            manifest.commit(p.source, p.fingerprint, [(e.id, e.kind, key_of[e.id]) for e in p.elements],
                            [replace(pl, object_key=key_of.get(pl.id) or pl.object_key) for pl in p.places])
            retry = [(e.id, stored_keys.get(e.id)) for e in p.new if e.id in failed]
            if retry:
                manifest.claim(p.source, retry)
    release_orphans(collection)


def index_enriched(enriched: Enriched, collection: Collection) -> list[Element]:
    """Store the objects of enriched elements, upsert their records in both spaces and persist; the elements
    as stored (bytes replaced by object keys)."""
    stored = store_objects(enriched, collection)
    index_records(stored, enriched, collection)
    return stored


def store_objects(enriched: Enriched, collection: Collection) -> list[Element]:
    """Put the enriched elements' bytes (and tables' CSV) in the object store; the elements as stored."""
    with ThreadPoolExecutor(max_workers=_OBJECT_WRITERS, thread_name_prefix="mmrag-objects") as pool:
        stored = list(pool.map(lambda e: _store_object(e, collection.objects), enriched.elements))
    crash_point("objects")
    return stored


def index_records(stored: Sequence[Element], enriched: Enriched, collection: Collection) -> None:
    """Upsert the stored elements' records in both spaces and persist."""
    text_records: list[IndexRecord] = []
    image_records: list[IndexRecord] = []
    for element in stored:
        text = indexed_text(element)
        vector = enriched.text_vectors.get(element.id)
        if vector and any(vector) and text.strip():  # a zero vector (no words to embed) has no direction
            text_records.append(IndexRecord(element, vector, text))
        image = enriched.image_vectors.get(element.id)
        if element.kind in VISUAL and image and any(image):
            image_records.append(IndexRecord(element, image, text))
    # A shared picture re-indexed from another place may have no text now (a bare file, no caption): its old
    # record, with the context of a place that is gone, must not stay behind.
    shared = {e.id for e in stored if e.shareable}
    texts, images = {r.element.id for r in text_records}, {r.element.id for r in image_records}
    if shared - texts:
        collection.text.delete(sorted(shared - texts))
    if shared - images:
        collection.image.delete(sorted(shared - images))
    if text_records:
        collection.text.add(text_records)
    if image_records:
        collection.image.add(image_records)
    collection.text.persist()
    collection.image.persist()


def release_orphans(collection: Collection) -> list[str]:
    """Delete the objects that commits and removals left unreferenced (reference counting by key)."""
    return collection.manifest.release_orphans(collection.objects.mdelete)


def release_objects(collection: Collection, candidates: set[str]) -> list[str]:
    """Delete the objects among ``candidates`` that nothing refers to any more (reference counting by key)."""
    return collection.manifest.release(candidates, collection.objects.mdelete)
