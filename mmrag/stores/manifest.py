"""The manifest: which sources a collection holds, in which version, with which elements.

It is what makes ingest idempotent and resumable. A source is *committed* only after its vectors are durable,
so an interrupted run leaves either the old committed state or a *pending* claim: the element ids a run was
about to write. The next run cleans up pending ids it no longer needs, so a crash never leaves orphans.

One sqlite file per collection (WAL; every method is one transaction). The collection's models and vector
dimensions are kept in it too, so a collection is never filled with vectors from two different models.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.errors import StoreError

__all__ = ["Manifest", "SourceEntry"]

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
"""


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """A committed source: its fingerprint, element count, counts by kind, and when it was ingested."""

    source: str
    fingerprint: str
    elements: int
    kinds: Mapping[str, int]
    ingested_at: float


class Manifest:
    """The per-collection record of sources and their elements.

    Args:
        path: the sqlite file (created with its folder if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open the manifest ({e})") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- collection facts ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])

    # --- sources ------------------------------------------------------------------------------------------

    def get(self, source: str) -> SourceEntry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM sources WHERE source = ?", (source,)).fetchone()
        return _entry(row) if row else None

    def sources(self) -> list[SourceEntry]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM sources ORDER BY source").fetchall()
        return [_entry(r) for r in rows]

    def element_ids(self, source: str) -> set[str]:
        """The committed element ids of one source."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM elements WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def object_keys(self) -> set[str]:
        """Every object key any committed element points to (to find objects no element needs any more)."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT object_key FROM elements WHERE object_key IS NOT NULL")
            return {r[0] for r in rows.fetchall()}

    def pending_ids(self, source: str) -> set[str]:
        """Ids an interrupted run claimed for ``source`` but never committed."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM pending WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def sources_with_pending(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT source FROM pending ORDER BY source")]

    def claim(self, source: str, ids: Iterable[str]) -> None:
        """Record ids about to be written for ``source`` (before writing them to any index)."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?)", [(source, i) for i in ids])

    def commit(self, source: str, fingerprint: str, elements: Iterable[tuple[str, str, str | None]]) -> None:
        """Make ``elements`` ((id, kind, object_key) triples) the committed content of ``source``; clear its claims."""
        rows = list(elements)
        kinds: dict[str, int] = {}
        for _, kind, _ in rows:
            kinds[kind] = kinds.get(kind, 0) + 1
        with self._tx() as db:
            db.execute("DELETE FROM elements WHERE source = ?", (source,))
            db.executemany("INSERT OR REPLACE INTO elements VALUES (?, ?, ?, ?)", [(source, *r) for r in rows])
            db.execute("DELETE FROM pending WHERE source = ?", (source,))
            db.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                (source, fingerprint, len(rows), json.dumps(kinds, sort_keys=True), time.time()),
            )

    def forget(self, source: str) -> None:
        """Drop a source and its claims (after its vectors were deleted)."""
        with self._tx() as db:
            for table in ("sources", "elements", "pending"):
                db.execute(f"DELETE FROM {table} WHERE source = ?", (source,))  # noqa: S608 - fixed table names

    def totals(self) -> dict[str, int]:
        """Committed elements by kind over all sources."""
        with self._lock:
            rows = self._db.execute("SELECT kind, COUNT(*) FROM elements GROUP BY kind").fetchall()
        return {k: n for k, n in rows}


def _entry(row: tuple[Any, ...]) -> SourceEntry:
    source, fingerprint, elements, kinds, at = row
    return SourceEntry(source, fingerprint, elements, json.loads(kinds), at)
