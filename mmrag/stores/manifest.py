"""The manifest: which sources a collection holds, in which version, with which elements.

It is what makes ingest idempotent and resumable, and it is the one record of a collection that every machine
working on it must agree on. :class:`ManifestStore` is the protocol; one implementation per kind of store:

- :class:`~mmrag.stores._manifest_sqlite.SqliteManifest` beside the embedded FAISS index, under ``MMRAG_HOME``
  (one machine; several processes on it are safe);
- :class:`~mmrag.stores.pg_manifest.PgManifest`: tables in the same PostgreSQL database as the pgvector tables
  (and, for OpenSearch, a PostgreSQL database given next to it), shared by every machine with the same settings.
  The vectors of a source and its commit land in one transaction (:meth:`ManifestStore.atomic`).

Every implementation passes one conformance suite (:mod:`mmrag.testing.manifest_conformance`).

Life of a source (the same for every implementation):

1. ``acquire``: a lease on the source, so that two machines never ingest it at once; a lease left by a process
   that died expires after :data:`LEASE_SECONDS`, and another machine takes the source over;
2. ``claim``: the element ids (and object keys) about to be written, before any index or object write, so a
   crash never leaves orphans and a concurrent release never deletes an object about to be referenced;
3. writes to the indexes, then ``commit`` (inside ``atomic``): the elements become the source's committed content,
   its claims and its lease are dropped, and the object keys nothing refers to any more are recorded as released;
4. ``release_orphans`` deletes those objects once no element or claim refers to them.

Visibility: an element is searchable once it is committed. Ids that are pending and committed for no source are
*uncommitted*; the collection hides them from searches (:meth:`ManifestStore.uncommitted`).

Places: an image's id is its bytes, so one picture can be committed for several sources. Each commit records
where the source shows its pictures (:class:`Place`), and searches list them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from mmrag.stores._manifest_sqlite import SqliteManifest
from mmrag.stores._manifest_types import Place, SourceEntry

__all__ = ["LEASE_SECONDS", "SCHEMA_VERSION", "Manifest", "ManifestStore", "Place", "SourceEntry", "SqliteManifest"]

LEASE_SECONDS = 60.0
"""How long a source's lease lasts unless renewed (the default of the setting ``MMRAG_LEASE_SECONDS``). An ingest
renews its leases every third of that (a heartbeat thread), so a live ingest keeps its sources even through a slow
OCR page or a pause of a few seconds, while the sources of a process killed with ``kill -9`` are taken over by
another machine within a minute."""

SCHEMA_VERSION = 1
"""The manifest layout this mmrag writes; a manifest recording a newer version is refused (upgrade mmrag)."""

Manifest = SqliteManifest
"""The sqlite manifest under its historical name (``Manifest(path)``)."""


@runtime_checkable
class ManifestStore(Protocol):
    """What ingest, search and upkeep need from a collection's manifest (see the module docstring)."""

    @property
    def where(self) -> str:
        """Where the manifest lives, for messages (a path, or a database without its password)."""
        ...

    def close(self) -> None: ...

    # collection facts
    def meta(self) -> dict[str, Any]: ...
    def set_meta(self, values: Mapping[str, Any]) -> None: ...

    # sources and elements
    def get(self, source: str) -> SourceEntry | None: ...
    def sources(self) -> list[SourceEntry]: ...
    def element_ids(self, source: str) -> set[str]: ...
    def object_keys(self) -> set[str]: ...
    def totals(self, sources: Iterable[str] | None = None) -> dict[str, int]: ...
    def holders(self, ids: Iterable[str]) -> dict[str, set[str]]: ...

    # claims
    def pending_ids(self, source: str) -> set[str]: ...
    def sources_with_pending(self) -> list[str]: ...
    def claim(self, source: str, ids: Iterable[str | tuple[str, str | None]]) -> None: ...
    def uncommitted_count(self) -> int: ...
    def uncommitted(self, ids: Sequence[str]) -> set[str]: ...
    def uncommitted_by_source(self) -> dict[str, set[str]]: ...
    def drop_claims(self, source: str, ids: Iterable[str]) -> None: ...

    # objects
    def object_keys_of(self, source: str) -> set[str]: ...
    def referenced_keys(self) -> set[str]: ...
    def release(self, candidates: Iterable[str], delete: Callable[[list[str]], None]) -> list[str]: ...
    def release_orphans(self, delete: Callable[[list[str]], None]) -> list[str]: ...

    # commits
    def commit(self, source: str, fingerprint: str, elements: Iterable[tuple[str, str, str | None]],
               places: Iterable[Place] = ()) -> None: ...
    def forget(self, source: str) -> None: ...
    def atomic(self) -> AbstractContextManager[None]:
        """Writes to the collection's indexes and this manifest inside the block land together where the store
        can do that (PostgreSQL: one transaction); elsewhere they land in the order they are made."""
        ...

    # places
    def places(self, ids: Iterable[str]) -> dict[str, list[Place]]: ...
    def places_in(self, sources: Iterable[str]) -> dict[str, list[Place]]: ...

    # many writers
    def acquire(self, source: str, owner: str, seconds: float = LEASE_SECONDS) -> bool:
        """Take (or renew) the lease on ``source`` for ``owner``; False while another owner's lease is live."""
        ...

    def renew(self, owner: str, seconds: float = LEASE_SECONDS) -> int:
        """Extend every lease ``owner`` holds; returns how many."""
        ...

    def unlease(self, owner: str, sources: Iterable[str] | None = None) -> None:
        """Give up ``owner``'s leases (on ``sources``, or all)."""
        ...

    def writers(self, *, exclusive: bool) -> AbstractContextManager[None]:
        """Shared by every ingest; exclusive (without waiting) for remove and gc, which refuse to run while an
        ingest writes. Raises :class:`~mmrag.errors.StoreError` when ``exclusive`` cannot be had."""
        ...
