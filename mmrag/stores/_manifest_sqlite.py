"""The sqlite manifest, beside the embedded FAISS index (see :mod:`mmrag.stores.manifest` for the protocol).

It is what makes ingest idempotent and resumable. A source is *committed* only after its vectors are durable,
so an interrupted run leaves either the old committed state or a *pending* claim: the element ids a run was
about to write. The next run cleans up pending ids it no longer needs, so a crash never leaves orphans.

One sqlite file per collection (WAL; every method is one transaction). The collection's models and vector
dimensions are kept in it too, so a collection is never filled with vectors from two different models.

Visibility: an element is searchable once it is committed. Ids that are pending and committed for no source
(a run in progress, or one that crashed between its index write and its commit) are *uncommitted*; the
collection hides them from searches (:meth:`SqliteManifest.uncommitted`) until a commit or ``mmrag collections gc``.

Objects are reference-counted by key: a claim records the object keys it is about to write, a commit the keys
its elements point to, and :meth:`SqliteManifest.release` deletes an object only when no committed element and no
claim refers to it any more (inside a write transaction, so a concurrent claim waits for the deletion). The
keys a commit or a removal leaves unreferenced are recorded in the same transaction (table ``released``), so
a crash before their objects are deleted is caught up by the next :meth:`SqliteManifest.release_orphans`.

Places: an image's id is its bytes, so one picture can be committed for several sources (a page and a file in a
folder). Each commit records where the source shows its pictures (table ``places``: page, bbox, context text,
parser facts), in the same transaction; :mod:`mmrag.chains._places` picks the primary place the index record is
built from, and searches list the others. The places survive restarts and do not depend on the vector backend.

Another process holding the database (a concurrent ingest committing) is waited for up to
:data:`LOCK_TIMEOUT` seconds; every sqlite failure is raised as :class:`~mmrag.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmrag._sqlite import connect_wal
from mmrag.errors import StoreError
from mmrag.stores._manifest_types import Place, SourceEntry, entry_from_row

__all__ = ["SqliteManifest"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    elements INTEGER NOT NULL,
    kinds TEXT NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS elements (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    object_key TEXT,
    PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS pending (source TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS released (object_key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (source TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS places (
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    in_document INTEGER NOT NULL,
    page INTEGER,
    bbox TEXT,
    text TEXT NOT NULL,
    mime_type TEXT,
    object_key TEXT,
    metadata TEXT NOT NULL,
    PRIMARY KEY (id, source, seq)
);
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added since the first manifests (idempotent: another process may add one at the same moment)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(pending)")}
    if "object_key" not in columns:  # manifests written before object reference counting
        try:
            db.execute("ALTER TABLE pending ADD COLUMN object_key TEXT")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise


_INDEXES = """
CREATE INDEX IF NOT EXISTS elements_by_id ON elements (id);
CREATE INDEX IF NOT EXISTS elements_by_object ON elements (object_key);
CREATE INDEX IF NOT EXISTS pending_by_id ON pending (id);
CREATE INDEX IF NOT EXISTS places_by_source ON places (source);
"""
LOCK_TIMEOUT = 120.0
"""Seconds to wait for another process's write transaction before giving up."""
_CHUNK = 500


def _rows_in(db: sqlite3.Connection, sql: str, values: Sequence[str]) -> Iterator[Any]:
    """The rows of ``sql`` for ``values``, ``_CHUNK`` at a time (SQLite caps host parameters): each ``{marks}`` in
    ``sql`` becomes one ``?`` list of the chunk; only placeholders are formatted in, never values."""
    for start in range(0, len(values), _CHUNK):
        part = list(values[start : start + _CHUNK])
        query = sql.format(marks=",".join("?" * len(part)))
        yield from db.execute(query, part * sql.count("{marks}"))  # noqa: S608 - placeholders only


class SqliteManifest:
    """The per-collection record of sources and their elements.

    Args:
        path: the sqlite file (created with its folder if missing).
        timeout: seconds to wait for another process's write transaction.
    """

    def __init__(self, path: Path, *, timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = connect_wal(self.path, _SCHEMA, _migrate, _INDEXES, timeout=timeout)
        except sqlite3.Error as e:
            raise self._error("open", e) from e

    def _error(self, what: str, e: sqlite3.Error) -> StoreError:
        text = str(e)
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path}: the manifest stayed locked by another mmrag process for "
                              f"{self.timeout:g} s (cannot {what} it): wait for the other ingest to finish and "
                              "run the command again")
        return StoreError(f"{self.path}: cannot {what} the manifest ({type(e).__name__}: {text}); if the file is "
                          "damaged, delete the collection and ingest again")

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """sqlite and FAISS cannot share a transaction: writes land in the order made (the write stage's order
        keeps a crash consistent, see :mod:`mmrag.chains._write`)."""
        return contextlib.nullcontext()

    @contextmanager
    def writers(self, *, exclusive: bool) -> Iterator[None]:
        """The collection's lock file: shared for an ingest, exclusive (without waiting) for gc and remove."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks; run maintenance when nothing else writes
            yield
            return
        with open(self.path.parent / "lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
            except BlockingIOError as e:
                raise StoreError(f"collection {self.path.parent.name!r} is being written by another mmrag process "
                                 "(an ingest?): run this again when it has finished") from e
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- leases (many writers) ----------------------------------------------------------------------------

    def acquire(self, source: str, owner: str, seconds: float = 60.0) -> bool:
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT owner, expires FROM leases WHERE source = ?", (source,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (source, owner, now + seconds))
        return True

    def renew(self, owner: str, seconds: float = 60.0) -> int:
        with self._tx() as db:
            return db.execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + seconds, owner)).rowcount

    def unlease(self, owner: str, sources: Iterable[str] | None = None) -> None:
        with self._tx() as db:
            if sources is None:
                db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            else:
                db.executemany("DELETE FROM leases WHERE owner = ? AND source = ?", [(owner, s) for s in sources])

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as e:
                raise self._error("read", e) from e

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self._error("write", e) from e
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(sqlite3.Error):  # the transaction may be gone already (disk full)
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise self._error("write", e) from e
                raise

    # --- collection facts ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        with self._read():
            rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])

    # --- sources ------------------------------------------------------------------------------------------

    def get(self, source: str) -> SourceEntry | None:
        with self._read():
            row = self._db.execute("SELECT * FROM sources WHERE source = ?", (source,)).fetchone()
        return entry_from_row(row) if row else None

    def sources(self) -> list[SourceEntry]:
        with self._read():
            rows = self._db.execute("SELECT * FROM sources ORDER BY source").fetchall()
        return [entry_from_row(r) for r in rows]

    def element_ids(self, source: str) -> set[str]:
        """The committed element ids of one source."""
        with self._read():
            rows = self._db.execute("SELECT id FROM elements WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def object_keys(self) -> set[str]:
        """Every object key any committed element points to (to find objects no element needs any more)."""
        with self._read():
            rows = self._db.execute("SELECT DISTINCT object_key FROM elements WHERE object_key IS NOT NULL")
            return {r[0] for r in rows.fetchall()}

    def pending_ids(self, source: str) -> set[str]:
        """Ids an interrupted run claimed for ``source`` but never committed."""
        with self._read():
            rows = self._db.execute("SELECT id FROM pending WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def sources_with_pending(self) -> list[str]:
        with self._read():
            return [r[0] for r in self._db.execute("SELECT DISTINCT source FROM pending ORDER BY source")]

    def claim(self, source: str, ids: Iterable[str | tuple[str, str | None]]) -> None:
        """Record ids about to be written for ``source`` (before writing them to any index or object store).

        Args:
            ids: element ids, or ``(id, object_key)`` pairs: a claimed key is never deleted by :meth:`release`.
        """
        rows = [(source, i, None) if isinstance(i, str) else (source, i[0], i[1]) for i in ids]
        with self._tx() as db:
            db.executemany("INSERT INTO pending (source, id, object_key) VALUES (?, ?, ?) ON CONFLICT (source, id) "
                           "DO UPDATE SET object_key = coalesce(excluded.object_key, pending.object_key)", rows)

    def uncommitted_count(self) -> int:
        """How many claimed ids are committed for no source (0 in a collection at rest)."""
        with self._read() as db:
            if db.execute("SELECT NOT EXISTS (SELECT 1 FROM pending)").fetchone()[0]:
                return 0
            row = db.execute("SELECT COUNT(DISTINCT id) FROM pending p "
                             "WHERE NOT EXISTS (SELECT 1 FROM elements e WHERE e.id = p.id)").fetchone()
        return int(row[0])

    def uncommitted(self, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` that are claimed but committed for no source: not to be shown to searches."""
        out: set[str] = set()
        unique = list(dict.fromkeys(ids))
        with self._read() as db:
            out.update(r[0] for r in _rows_in(db, "SELECT id FROM pending WHERE id IN ({marks}) EXCEPT "
                                              "SELECT id FROM elements WHERE id IN ({marks})", unique))
        return out

    def uncommitted_by_source(self) -> dict[str, set[str]]:
        """Every uncommitted id by the source that claimed it (what ``gc`` removes)."""
        out: dict[str, set[str]] = {}
        with self._read() as db:
            for source, i in db.execute("SELECT source, id FROM pending p "
                                        "WHERE NOT EXISTS (SELECT 1 FROM elements e WHERE e.id = p.id)"):
                out.setdefault(source, set()).add(i)
        return out

    def drop_claims(self, source: str, ids: Iterable[str]) -> None:
        """Forget claims (after their records were deleted from the indexes)."""
        with self._tx() as db:
            old = _keys_of(db, source)
            db.executemany("DELETE FROM pending WHERE source = ? AND id = ?", [(source, i) for i in ids])
            _mark_released(db, old)

    def object_keys_of(self, source: str) -> set[str]:
        """Object keys of a source's committed elements and claims."""
        with self._read() as db:
            rows = db.execute("SELECT object_key FROM elements WHERE source = ? AND object_key IS NOT NULL "
                              "UNION SELECT object_key FROM pending WHERE source = ? AND object_key IS NOT NULL",
                              (source, source)).fetchall()
        return {r[0] for r in rows}

    def referenced_keys(self) -> set[str]:
        """Every object key a committed element or a claim refers to."""
        with self._read() as db:
            rows = db.execute("SELECT object_key FROM elements WHERE object_key IS NOT NULL UNION "
                              "SELECT object_key FROM pending WHERE object_key IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def release(self, candidates: Iterable[str], delete: Callable[[list[str]], None]) -> list[str]:
        """Delete those ``candidates`` no committed element and no claim refers to; returns them.

        ``delete`` runs inside the write transaction, so a concurrent :meth:`claim` of one of these keys waits
        until the object is gone and then writes it again.
        """
        keys = sorted(set(candidates))
        if not keys:
            return []
        with self._tx() as db:
            referenced: set[str] = set()
            referenced.update(r[0] for r in _rows_in(
                db, "SELECT object_key FROM elements WHERE object_key IN ({marks}) UNION "
                "SELECT object_key FROM pending WHERE object_key IN ({marks})", keys))
            unreferenced = [k for k in keys if k not in referenced]
            if unreferenced:
                delete(unreferenced)
        return unreferenced

    def commit(self, source: str, fingerprint: str, elements: Iterable[tuple[str, str, str | None]],
               places: Iterable[Place] = ()) -> None:
        """Make ``elements`` ((id, kind, object_key) triples) the committed content of ``source``; clear its claims.

        ``places`` (where its shareable elements, images, appear in it) replace the source's previous places.
        """
        rows = list(elements)
        kinds: dict[str, int] = {}
        for _, kind, _ in rows:
            kinds[kind] = kinds.get(kind, 0) + 1
        with self._tx() as db:
            old = _keys_of(db, source)
            db.execute("DELETE FROM elements WHERE source = ?", (source,))
            db.executemany("INSERT OR REPLACE INTO elements VALUES (?, ?, ?, ?)", [(source, *r) for r in rows])
            db.execute("DELETE FROM places WHERE source = ?", (source,))
            db.executemany("INSERT OR REPLACE INTO places VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [p.row() for p in places if p.source == source])
            db.execute("DELETE FROM pending WHERE source = ?", (source,))
            db.execute("DELETE FROM leases WHERE source = ?", (source,))
            db.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                (source, fingerprint, len(rows), json.dumps(kinds, sort_keys=True), time.time()),
            )
            _mark_released(db, old)

    def forget(self, source: str) -> None:
        """Drop a source and its claims (after its vectors were deleted)."""
        with self._tx() as db:
            old = _keys_of(db, source)
            for table in ("sources", "elements", "pending", "places", "leases"):
                db.execute(f"DELETE FROM {table} WHERE source = ?", (source,))  # noqa: S608 - fixed table names
            _mark_released(db, old)

    def release_orphans(self, delete: Callable[[list[str]], None]) -> list[str]:
        """Delete the objects commits and removals left unreferenced (see the module docstring)."""
        with self._read() as db:
            candidates = [r[0] for r in db.execute("SELECT object_key FROM released")]
        if not candidates:
            return []
        deleted = self.release(candidates, delete)
        with self._tx() as db:
            db.executemany("DELETE FROM released WHERE object_key = ?", [(k,) for k in candidates])
        return deleted

    def totals(self, sources: Iterable[str] | None = None) -> dict[str, int]:
        """Committed elements by kind over all sources, or over ``sources`` (an element several share counts once)."""
        if sources is None:
            with self._read():
                rows = self._db.execute("SELECT kind, COUNT(DISTINCT id) FROM elements GROUP BY kind").fetchall()
            return {k: n for k, n in rows}
        seen: dict[str, str] = {}
        unique = sorted(set(sources))
        with self._read() as db:
            seen.update(_rows_in(db, "SELECT id, kind FROM elements WHERE source IN ({marks})", unique))
        out: dict[str, int] = {}
        for kind in seen.values():
            out[kind] = out.get(kind, 0) + 1
        return out

    # --- places of shared elements ------------------------------------------------------------------------

    def places(self, ids: Iterable[str]) -> dict[str, list[Place]]:
        """The committed places of each of ``ids`` (ids without any are left out), in (source, seq) order."""
        out: dict[str, list[Place]] = {}
        unique = sorted(set(ids))
        with self._read() as db:
            for row in _rows_in(db, "SELECT * FROM places WHERE id IN ({marks}) ORDER BY id, source, seq", unique):
                out.setdefault(row[0], []).append(Place.from_row(row))
        return out

    def places_in(self, sources: Iterable[str]) -> dict[str, list[Place]]:
        """Every place of the elements that have a place in one of ``sources`` and in another source too."""
        unique = sorted(set(sources))
        ids: set[str] = set()
        with self._read() as db:
            if db.execute("SELECT NOT EXISTS (SELECT 1 FROM places)").fetchone()[0]:
                return {}
            ids.update(r[0] for r in _rows_in(db, "SELECT id FROM places WHERE source IN ({marks})", unique))
        return {i: places for i, places in self.places(ids).items() if len({p.source for p in places}) > 1}

    def holders(self, ids: Iterable[str]) -> dict[str, set[str]]:
        """The sources each of ``ids`` is committed for (ids committed for none are left out)."""
        out: dict[str, set[str]] = {}
        unique = sorted(set(ids))
        with self._read() as db:
            for i, source in _rows_in(db, "SELECT id, source FROM elements WHERE id IN ({marks})", unique):
                out.setdefault(i, set()).add(source)
        return out


def _keys_of(db: sqlite3.Connection, source: str) -> set[str]:
    rows = db.execute("SELECT object_key FROM elements WHERE source = ? AND object_key IS NOT NULL UNION "
                      "SELECT object_key FROM pending WHERE source = ? AND object_key IS NOT NULL", (source, source))
    return {r[0] for r in rows}


def _mark_released(db: sqlite3.Connection, keys: set[str]) -> None:
    """Record which of ``keys`` nothing refers to any more (their objects are deleted by release_orphans)."""
    for key in keys:
        if not db.execute("SELECT EXISTS (SELECT 1 FROM elements WHERE object_key = ?) OR "
                          "EXISTS (SELECT 1 FROM pending WHERE object_key = ?)", (key, key)).fetchone()[0]:
            db.execute("INSERT OR IGNORE INTO released VALUES (?)", (key,))
