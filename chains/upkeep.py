"""Keeping a collection tidy: remove sources, and collect what interrupted runs left behind.

- :func:`remove_sources` deletes sources' records from both spaces, their manifest entries, and the objects no
  other element refers to (``mmrag remove SOURCE...``); a picture another source also shows stays, with the
  places that remain (:mod:`mmrag.chains._places`).
- :func:`collect_garbage` deletes records that were written but never committed (a run killed between its
  index write and its commit), stale temp files of interrupted object writes, and objects that no element
  refers to (``mmrag collections gc``).

Both take the collection's lock exclusively: they refuse to run while an ingest on the same machine is
writing to the collection (an ingest holds the lock shared). The collection is opened from what its manifest
records; models are loaded only to re-index a shared picture whose indexed place is removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.chains._places import load_places, plan_removal
from mmrag.chains._write import release_objects, release_orphans
from mmrag.errors import NotFoundError, StoreError

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection
    from mmrag.stores.manifest import Place

__all__ = ["GcReport", "collect_garbage", "collection_lock", "remove_sources"]

logger = logging.getLogger(__name__)

TEMP_MIN_AGE = 600.0
"""Seconds a ``.mmrag-tmp-*`` file must be left untouched before gc deletes it (a live write is younger)."""


def collection_lock(collection: Collection, *, exclusive: bool) -> contextlib.AbstractContextManager[None]:
    """The collection's writers lock: shared for an ingest, exclusive (without waiting) for gc and remove; on
    every machine that shares the collection when its manifest is shared (see ``ManifestStore.writers``).

    Raises:
        StoreError: ``exclusive`` and another process holds the lock (an ingest is running).
    """
    return collection.manifest.writers(exclusive=exclusive)


def open_existing(settings: Settings, name: str | None = None) -> Collection:
    """Open an existing collection with the spaces its manifest records (no models are loaded)."""
    from mmrag.stores.collection import SpaceInfo, manifest_kind, open_collection, open_manifest, require_collection

    name = require_collection(settings, name)
    manifest = open_manifest(settings, name)
    try:
        meta = manifest.meta()
    finally:
        if manifest_kind(settings) == "sqlite":
            manifest.close()
    spaces = {s: SpaceInfo(str(meta[f"{s}_model"]), int(meta[f"{s}_dimensions"])) for s in ("text", "image")}
    backend = settings.model_copy(update={"vector_store": meta.get("vector_store", settings.vector_store)})
    return open_collection(backend, name=name, create=False, **spaces)


def _source_key(source: str) -> str:
    from mmrag.chains.ingestion import _normalise

    return _normalise(source)


def remove_sources(sources: Iterable[str], settings: Settings | None = None, *,
                   collection: Collection | None = None, providers: Providers | None = None) -> list[dict[str, Any]]:
    """Remove sources (as given to ingest: paths or URLs) from a collection: records, manifest, objects.

    Nothing is removed unless every source is in the collection. A picture that another source also shows is
    kept with its remaining places; when the removed source gave its indexed context, it is indexed again from
    the best remaining place, which needs the models (``providers``, else built from ``settings``).

    Returns:
        One ``{"source", "elements", "shared", "objects_deleted"}`` per source: ``elements`` deleted, ``shared``
        kept because another source holds them.

    Raises:
        NotFoundError: a source is not in the collection (the message lists close matches).
        StoreError: an ingest is writing to the collection, or a store failed.
    """
    import difflib

    from mmrag.config import Settings

    collection = collection or open_existing(settings or Settings())
    manifest = collection.manifest
    wanted = [_source_key(s) for s in sources]
    known = [e.source for e in manifest.sources()]
    missing = [s for s in wanted if manifest.get(s) is None and not manifest.pending_ids(s)]
    if missing:
        close = {s: difflib.get_close_matches(s, known, n=1) for s in missing}
        hints = "; ".join(f"{s!r} is not in collection {collection.name!r}"
                          + (f" (did you mean {close[s][0]!r}?)" if close[s] else "") for s in missing)
        raise NotFoundError(f"{hints}: nothing was removed (see `mmrag collections` for what it holds)")
    out: list[dict[str, Any]] = []
    with collection_lock(collection, exclusive=True):
        for source in dict.fromkeys(wanted):
            ids = sorted(manifest.element_ids(source) | manifest.pending_ids(source))
            # A picture another source also shows stays; if this source gave its indexed context, the best
            # remaining place replaces it (mmrag.chains._places) before the source is forgotten.
            delete, rewrite = plan_removal([source], manifest, ids)
            if rewrite:
                providers = providers or _providers(settings)
                _reindex(rewrite, collection, providers)
            # One transaction where the store has them (PostgreSQL): another machine's search sees the whole
            # source or none of it.
            with manifest.atomic():
                if delete:
                    collection.text.delete(delete)
                    collection.image.delete(delete)
                    collection.text.persist()
                    collection.image.persist()
                manifest.forget(source)
            deleted = release_orphans(collection)
            logger.info("removed %s: %d elements (%d kept for other sources), %d objects", source, len(delete),
                        len(ids) - len(delete), len(deleted))
            out.append({"source": source, "elements": len(delete), "shared": len(ids) - len(delete),
                        "objects_deleted": len(deleted)})
    return out


def _providers(settings: Settings | None) -> Providers:
    from mmrag.config import Settings
    from mmrag.providers.factory import build_providers

    return build_providers(settings or Settings())


def _reindex(places: list[Place], collection: Collection, providers: Providers) -> None:
    """Index shared pictures again from the places that remain (captions and vectors mostly from the cache)."""
    from mmrag.chains._enrich import ModelCalls, enrich
    from mmrag.chains._write import index_enriched

    elements = load_places(places, collection.objects)
    index_enriched(enrich(elements, providers, ModelCalls()), collection)


@dataclass
class GcReport:
    """What :func:`collect_garbage` removed."""

    collection: str
    uncommitted: dict[str, int] = field(default_factory=dict)
    temp_files: int = 0
    objects_deleted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "uncommitted_records": sum(self.uncommitted.values()),
                "by_source": dict(self.uncommitted), "temp_files": self.temp_files,
                "objects_deleted": self.objects_deleted}


def collect_garbage(settings: Settings | None = None, *, collection: Collection | None = None,
                    temp_min_age: float = TEMP_MIN_AGE) -> GcReport:
    """Remove uncommitted records, stale temp files and unreferenced objects of one collection.

    Raises:
        StoreError: an ingest is writing to the collection, or a store failed.
    """
    from mmrag.config import Settings

    collection = collection or open_existing(settings or Settings())
    manifest = collection.manifest
    report = GcReport(collection.name)
    with collection_lock(collection, exclusive=True):
        leftovers = manifest.uncommitted_by_source()
        every = sorted({i for ids in leftovers.values() for i in ids})
        if every:
            collection.text.delete(every)
            collection.image.delete(every)
            collection.text.persist()
            collection.image.persist()
            for source, ids in leftovers.items():
                manifest.drop_claims(source, ids)
                report.uncommitted[source] = len(ids)
        root = getattr(collection.objects, "root", None)
        if isinstance(root, Path):
            report.temp_files = _remove_temp_files(root, temp_min_age)
        deleted = release_orphans(collection)
        stored = set(collection.objects.yield_keys())
        report.objects_deleted = len(deleted) + len(release_objects(collection, stored - manifest.referenced_keys()))
    return report


def _remove_temp_files(root: Path, min_age: float) -> int:
    from mmrag.stores.objects import _TEMP_PREFIX

    removed = 0
    now = time.time()
    for path in root.rglob(f"{_TEMP_PREFIX}*"):
        try:
            if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime >= min_age:
                os.unlink(path)
                removed += 1
        except FileNotFoundError:
            continue
        except OSError as e:
            raise StoreError(f"cannot delete the temp file {path}: {e.strerror or e}") from e
    return removed
