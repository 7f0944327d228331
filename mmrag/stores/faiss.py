"""The embedded default :class:`~mmrag.stores.base.VectorIndex`: SQLite for the records, FAISS for speed.

One folder per index (e.g. ``MMRAG_HOME/<collection>/text``) holds::

    index.sqlite3     the source of truth: records, normalised vectors, an FTS5 table for BM25 (WAL mode)
    vectors.faiss     a cache of the FAISS index, tagged with the database version it reflects

Every write is one SQLite transaction, so a crash mid-write leaves the last committed state readable. The FAISS
index is rebuilt from SQLite on first search, loaded from the cache when it passes its checks, and brought up to
date by a diff of row ids when the database has moved on (another process wrote, or the cache is stale).
No pickle anywhere.

Below ``hnsw_threshold`` records the index is exact (``IndexFlatIP``); above it, an HNSW graph (M=32,
efSearch=64, inner product). Filters are resolved in SQL; a small allowed set is scored exactly with numpy,
a large one goes to FAISS with an ID selector.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from mmrag.elements import Element
from mmrag.errors import StoreError
from mmrag.stores._faiss_ann import MAX_DEAD_SHARE, Ann, Kind, QueryRow, as_query, normalise
from mmrag.stores._faiss_cache import read_cache, write_cache
from mmrag.stores._faiss_db import DB_ERRORS, RecordDB, SqlErrors, filter_sql, restore_element
from mmrag.stores._faiss_hits import HotRows
from mmrag.stores._memory import release_free_memory
from mmrag.stores.base import Filter, IndexRecord, ScoredRecord, check_filter

__all__ = ["FaissIndex"]

logger = logging.getLogger(__name__)

DB_NAME = "index.sqlite3"
CACHE_NAME = "vectors.faiss"
EXACT_FILTER_SHARE = 0.1
class FaissIndex:
    """A vector index in a local folder: SQLite (records, BM25) plus an in-memory FAISS index.

    Thread-safe: one lock serialises writes and searches, so an ingest worker thread can write while the CLI
    reads. An HNSW graph is built with the lock released; searches meanwhile use the previous index. Several
    processes may open the same folder; each sees the others' committed writes on its next call.

    Args:
        path: the index folder; created if missing.
        dimensions: vector size. Checked against the stored size when the folder already holds an index.
        hnsw_threshold: above this many records, use an HNSW graph instead of exact search.
        exact_filter_limit: a filtered search whose allowed set is at most this big (or under 10 % of the index)
            is scored exactly with numpy instead of FAISS with an ID selector.

    Raises:
        StoreError: the folder cannot be opened, or holds vectors of another size.
    """

    def __init__(
        self, path: Path, dimensions: int, *, hnsw_threshold: int = 50_000, exact_filter_limit: int = 20_000
    ) -> None:
        if dimensions < 1:
            raise StoreError(f"dimensions must be positive, got {dimensions}")
        self.path = Path(path)
        self.dimensions = dimensions
        self.hnsw_threshold = hnsw_threshold
        self.exact_filter_limit = exact_filter_limit
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the index folder {self.path}: {e}") from e
        self._db: RecordDB = RecordDB(self.path / DB_NAME, dimensions)
        self._lock = threading.RLock()
        self._ann: Ann | None = None
        self._building = False  # a thread is building an HNSW graph with the lock released
        self._built = threading.Condition(self._lock)
        self._cached_version: int | None = None  # the version vectors.faiss holds, when this instance knows it
        self._cache_damaged = False  # vectors.faiss failed its checksum after it was loaded: not to be read again
        # Row id → (element, indexed text) of recent hits: a repeated hit skips SQLite, JSON and the rebuild.
        self._hot = HotRows(self._db.payloads)
        self._query: QueryRow | None = None  # the fast path's query and result buffers (used under the lock)

    def __repr__(self) -> str:
        return f"FaissIndex({str(self.path)!r}, dimensions={self.dimensions})"

    def __enter__(self) -> FaissIndex:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the database. Writes are already committed; the FAISS cache is written by :meth:`persist`."""
        with self._lock:
            self._ann = None
            self._hot.clear()
            self._db.close()

    # --- writes ------------------------------------------------------------------------------------------

    def add(self, records: Sequence[IndexRecord]) -> None:
        """Insert or replace records by element id, in one transaction (all or nothing).

        Raises:
            StoreError: a vector of the wrong size, metadata that is not JSON-serialisable, or a database error.
        """
        unique = list({r.id: r for r in records}.values())  # the last record for an id wins
        if not unique:
            return
        for r in unique:
            if len(r.vector) != self.dimensions:
                raise StoreError(
                    f"element {r.id} has a {len(r.vector)}-dimensional vector but this index holds {self.dimensions} "
                    "dimensions: embed with the model this collection was built with, or use a new collection"
                )
        vectors = normalise(np.asarray([r.vector for r in unique], dtype=np.float32))
        with self._lock, self._sql("add records to"):
            self._db.upsert(unique, vectors)

    def delete(self, ids: Sequence[str]) -> int:
        """Remove these element ids; returns how many were stored."""
        if not ids:
            return 0
        with self._lock, self._sql("delete from"):
            return self._db.delete_ids(ids)

    def delete_source(self, source: str) -> int:
        """Remove every record of ``source``; returns how many."""
        with self._lock, self._sql("delete from"):
            return self._db.delete_where("source = ?", (source,))

    def persist(self) -> None:
        """Make every write durable and the index ready to search.

        Writes are committed (and synced) as they happen. This also brings the FAISS index up to date (building
        it if need be: an HNSW graph of 100k vectors takes about a minute on 2 cores) and saves it to the cache
        file, so that the next process to open the folder, such as a query right after ingest, starts at once.
        """
        self._ready("persist", wait=True)
        with self._lock, self._sql("persist"):
            ann = self._sync_or_build()
            if self._cached_version != ann.version:
                self._write_cache(ann)
            if not self._db.vacuum_if_worthwhile():  # after a large remove or gc
                self._db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        release_free_memory()  # a bulk write leaves freed arenas behind; see mmrag.stores._memory

    # --- reads -------------------------------------------------------------------------------------------

    def count(self) -> int:
        with self._lock, self._sql("count"):
            return self._db.count()

    def get(self, ids: Sequence[str]) -> list[Element]:
        """The stored elements with these ids, in the order asked (missing ids are left out)."""
        with self._lock, self._sql("read"):
            found = self._db.payloads_by_element(ids)
            seen: set[str] = set()
            out = []
            for i in ids:
                if i in found and i not in seen:
                    seen.add(i)
                    out.append(restore_element(found[i]))
        return out

    def search(self, vector: Sequence[float], k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The ``k`` records nearest to ``vector`` by cosine similarity, best first.

        Raises:
            StoreError: the vector has the wrong size, the filter names an unknown field, or a database error.
        """
        if len(vector) != self.dimensions:
            raise StoreError(
                f"the query vector has {len(vector)} dimensions but this index holds {self.dimensions}: embed the "
                "query with the model this collection was built with"
            )
        if filter:
            check_filter(filter)
        if k <= 0:
            return []
        with self._lock:
            ann = self._ann
            # The common case: no filter, nothing committed since the last sync, no graph pending. Every call
            # here runs once per query after FAISS has flushed the CPU caches: no numpy, no context managers.
            if ann is not None and not filter and not self._building:
                try:
                    if ann.version == self._db.current_version():
                        found = ann.top(self._query or self._new_query(), vector, k)
                        if found is not None:
                            return self._hot.hits(*found)
                except DB_ERRORS as e:
                    self._sql("search").convert(e)
                    raise
        query, scale = as_query(vector)
        if not np.isfinite(query).all():  # the fast path above takes finite float32 values only
            raise StoreError("the query vector holds NaN or infinite values (or values beyond float32's range): "
                             "check the embedding model that made it")
        with self._lock, self._sql("search"):
            ann = self._ann
            if ann is not None and not self._building and ann.version == self._db.current_version():
                return self._search(ann, query, scale, k, filter)
        self._ready("search")
        with self._lock, self._sql("search"):
            return self._search(self._sync_or_build(), query, scale, k, filter)

    def keyword_search(self, query: str, k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The ``k`` records whose indexed text best matches ``query`` by BM25 (FTS5), best first.

        Every word of the query is matched on its own (OR), so quotes, operators and brackets are plain text.
        """
        check_filter(filter)
        with self._lock, self._sql("search"):
            return [ScoredRecord(restore_element(p), s, t) for p, t, s in self._db.keyword(query, k, filter)]

    # --- internals ---------------------------------------------------------------------------------------

    def _search(
        self, ann: Ann, query: npt.NDArray[np.float32], scale: float, k: int, filter: Filter | None
    ) -> list[ScoredRecord]:
        """The search proper, on an index caught up with the database (lock held); ``scale`` normalises scores."""
        if filter:
            scores, rowids = self._filtered(ann, query, k, filter)
        elif ann.n_alive:
            scores, rowids = ann.search(query, min(k, ann.n_alive))
        else:
            return []
        return self._hot.hits(scores.tolist(), rowids.tolist(), scale)

    def _new_query(self) -> QueryRow:
        self._query = QueryRow(self.dimensions)
        return self._query

    def _filtered(
        self, ann: Ann, query: npt.NDArray[np.float32], k: int, filter: Filter
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        condition, params = filter_sql(filter)
        positions = ann.positions(self._db.rowids(condition, params))
        if len(positions) <= self.exact_filter_limit or len(positions) < EXACT_FILTER_SHARE * ann.n_alive:
            return ann.exact(query, positions, k)
        allowed = np.zeros(len(ann.rowids), dtype=bool)
        allowed[positions] = True
        return ann.search(query, min(k, len(positions)), allowed)

    def _ready(self, action: str, wait: bool = False) -> None:
        """Build the HNSW graph if the index needs one, with the lock released (an HNSW build of 100k vectors
        takes about a minute on 2 cores): searches from other threads meanwhile use the index as it was, kept up
        to date with the database by the usual catch-up. With no index to use yet, or with ``wait``, they wait.
        The finished graph is swapped in under the lock, then caught up with the writes made while it was built.
        """
        while True:
            with self._lock, self._sql(action):
                ann, want = self._sync()
                if want is None:
                    return
                if self._building:
                    if ann is not None and not wait:
                        return
                    self._built.wait(timeout=5.0)
                    continue
                rowids, vectors, version = self._snapshot(ann)
                self._building = True
            try:
                logger.info("building the FAISS index of %s (%s, %d records)", self.path, want, len(rowids))
                fresh = self._build(want, rowids, vectors, version)
            finally:
                with self._lock:
                    self._building = False
                    self._built.notify_all()
            with self._lock, self._sql(action):
                if self._ann is None or self._ann.version <= fresh.version or self._ann.kind != want:
                    self._ann = fresh  # atomic swap: the next catch-up applies the writes made meanwhile
                    self._write_cache(fresh)

    def _build(self, kind: Kind, rowids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], version: int) -> Ann:
        """Build an index from a snapshot; runs without the lock (a seam for tests to pause a build)."""
        return Ann.build(kind, self.dimensions, rowids, vectors, version)

    def _snapshot(self, ann: Ann | None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], int]:
        """(row ids, vectors, version) to build from: the alive rows of ``ann``, or the database (lock held)."""
        if ann is not None:
            keep = np.flatnonzero(ann.alive)
            return ann.rowids[keep], ann.vectors()[keep].copy(), ann.version
        with self._db.transaction("DEFERRED"):  # one snapshot: the version and the rows agree
            version = self._db.version()
            rowids, vectors = self._db.vectors_after(0)
        return rowids, vectors.reshape(len(rowids), self.dimensions), version

    def _sync_or_build(self) -> Ann:
        """The index to search (lock held): the up-to-date one, the previous one while another thread builds,
        or, if a write since :meth:`_ready` made a graph build necessary and nothing can serve, built here."""
        ann, want = self._sync()
        if ann is not None:
            return ann
        assert want is not None
        rowids, vectors, version = self._snapshot(None)
        self._ann = ann = self._build(want, rowids, vectors, version)
        self._write_cache(ann)
        return ann

    def _sync(self) -> tuple[Ann | None, Kind | None]:
        """(the FAISS index caught up with the database, or None; the kind of graph still to build, or None).

        Caller holds the lock. Flat indexes are built here; an HNSW graph is left to :meth:`_ready`.
        """
        version = self._db.current_version()
        if self._ann is not None and self._ann.version == version:
            return self._ann, (self._ann.kind if self._building else None)
        loaded = False
        with self._db.transaction("DEFERRED"):  # one snapshot: the version and the rows agree
            version = self._db.version()
            ann = self._ann
            if ann is None:
                if not self._cache_damaged:
                    ann = read_cache(self.path / CACHE_NAME, self._db.uid, self.dimensions, self._drop_damaged)
                loaded = ann is not None
                self._cached_version = ann.version if ann is not None else None
            if ann is not None and ann.version > version:
                ann = None  # a cache from a newer state of a restored database: not to be trusted
            caught, rebuilt, want = self._catch_up(ann, version)
        self._ann = caught
        if caught is not None and (rebuilt or (loaded and caught.version != self._cached_version)):
            self._write_cache(caught)
        return caught, want

    def _catch_up(self, ann: Ann | None, version: int) -> tuple[Ann | None, bool, Kind | None]:
        """Apply the database's changes to ``ann`` (or build it, if flat).

        Returns the index to search (None if there is none yet), whether it was rebuilt here, and the kind of
        HNSW graph still to build (None if nothing is left to build).
        """
        if ann is not None and ann.version == version and ann.alive_known and \
                self._kind(ann.n_alive, ann.kind) == ann.kind and ann.n_dead <= MAX_DEAD_SHARE * len(ann.rowids):
            return ann, False, None  # every write moves the version: nothing to apply, no row ids to read
        if ann is not None:
            ann.alive_known = True  # once the diff below is applied
            rows = self._db.rowids()
            held = ann.rowids[ann.alive]
            gone = held[~np.isin(held, rows, assume_unique=True)]
            ann.remove(gone)
            self._hot.discard(gone.tolist())
            last = int(ann.rowids[-1]) if len(ann.rowids) else 0
            new_ids, new_vectors = self._db.vectors_after(last)
            if ann.n_alive + len(new_ids) == len(rows):
                ann.add(new_ids, new_vectors)
                ann.version = version
                want = self._kind(ann.n_alive, ann.kind)
                if want == ann.kind and ann.n_dead <= MAX_DEAD_SHARE * len(ann.rowids):
                    return ann, False, None
                if want == "hnsw":
                    return ann, False, want  # still right to search (tombstones are masked) until the graph is in
                # Restructure from the vectors already in memory: no need to read the database again.
                keep = np.flatnonzero(ann.alive)
                vectors = ann.vectors()[keep].copy()
                logger.info("rebuilding the FAISS index of %s as %s (%d records)", self.path, want, len(keep))
                return Ann.build(want, self.dimensions, ann.rowids[keep], vectors, version), True, None
            logger.warning("the FAISS index of %s is out of step with the database: rebuilding it", self.path)
        kind = self._kind(len(self._db.rowids()), None)
        if kind == "hnsw":
            return None, False, kind
        rowids, vectors = self._db.vectors_after(0)
        logger.info("building the FAISS index of %s (%s, %d records)", self.path, kind, len(rowids))
        built = Ann.build(kind, self.dimensions, rowids, vectors.reshape(len(rowids), self.dimensions), version)
        return built, True, None

    def _kind(self, n: int, current: Kind | None) -> Kind:
        # Hysteresis: an HNSW graph is slow to build, so only fall back to flat well under the threshold.
        if n > self.hnsw_threshold:
            return "hnsw"
        return "hnsw" if current == "hnsw" and n > self.hnsw_threshold // 2 else "flat"

    def _write_cache(self, ann: Ann) -> None:
        write_cache(self.path / CACHE_NAME, self._db.uid, ann)
        self._cached_version = ann.version
        self._cache_damaged = False

    def _drop_damaged(self, ann: Ann) -> None:
        """Called by the background check of a loaded cache (``ann``) whose checksum does not match: stop using
        it, and anything made from it since; the next call rebuilds the index from the database and rewrites the
        cache."""
        with self._lock:
            logger.debug("dropping %s of %s", ann.kind, self.path)
            self._cache_damaged = True
            self._cached_version = None
            self._ann = None

    def _sql(self, action: str) -> SqlErrors:
        return SqlErrors(self.path, action)
