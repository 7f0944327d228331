"""The SQLite side of :class:`~mmrag.stores.faiss.FaissIndex`: the source of truth.

One database per index folder holds every record (element payload as JSON, the fields a search filters on),
its normalised float32 vector (in a table of its own) and an FTS5 table over the indexed text for BM25. Every
write is one transaction, so a crash leaves the last committed state. Rows are never updated: an upsert deletes
the old row and inserts a new one, and ``AUTOINCREMENT`` never hands out a row id twice, so a row id always
names the same vector. That lets the FAISS side cache vectors by row id and catch up on any change by a diff
of row ids.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from mmrag._sqlite import connect_wal
from mmrag.elements import Element
from mmrag.errors import StoreError
from mmrag.stores._faiss_wal import WAL_HEADER as _WAL_HEADER
from mmrag.stores._faiss_wal import WalIndexHeader
from mmrag.stores.base import Filter, IndexRecord, check_filter, element_from_payload, element_payload

__all__ = [
    "DB_ERRORS", "MATCH_BUDGET", "RecordDB", "SqlErrors", "WalIndexHeader", "filter_sql",
    "fts_query", "fts_terms", "restore_element",
]

SCHEMA_VERSION = 1
_CHUNK = 900  # ids per IN (...) list: well under SQLite's host-parameter limit
# VACUUM (rewriting the whole file) pays when at least this share of the file and this many bytes are free pages:
# after a large remove or gc, not after the small churn of a re-ingest.
VACUUM_MIN_FREE_SHARE = 0.25
VACUUM_MIN_FREE_BYTES = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    dimensions INTEGER NOT NULL,
    version INTEGER NOT NULL,      -- +1 per committed write: tags the FAISS cache
    uid TEXT NOT NULL,             -- tells this database from a recreated one
    schema INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    element_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    page INTEGER,
    mime_type TEXT,
    text TEXT NOT NULL,
    payload TEXT NOT NULL
);
-- Vectors apart from the records: a search reads a few compact record rows, a rebuild scans only vectors.
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY,        -- = records.id
    vector BLOB NOT NULL           -- float32, unit length
);
CREATE INDEX IF NOT EXISTS records_source ON records(source);
CREATE INDEX IF NOT EXISTS records_kind_page ON records(kind, page);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(
    text, content='records', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS records_ai AFTER INSERT ON records BEGIN
    INSERT INTO records_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS records_ad AFTER DELETE ON records BEGIN
    INSERT INTO records_fts(records_fts, rowid, text) VALUES ('delete', old.id, old.text);
    DELETE FROM vectors WHERE id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS records_immutable BEFORE UPDATE ON records BEGIN
    SELECT RAISE(ABORT, 'records are immutable: delete and insert instead');
END;
"""

_TOKEN = re.compile(r"\w+")
_MAX_TOKENS = 64


MATCH_BUDGET = 5000
"""Most records one BM25 search scores, at any index size. FTS5 scores every record that matches (about 5-10 us
each), and with every word of a query OR-ed, one common word makes that most of a large index: seconds per query at
1M records. So the query's words are taken rarest first while their records add up to at most this many (each
word's count is read from its posting list, stopping past the budget); the more common words are left out of the
match, as stop words are. A query whose rarest word alone is in more records than this is ranked among the first
this many records holding all its words, then (if fewer than asked) holding any."""


def fts_terms(query: str) -> list[str]:
    """Every word of ``query`` lower-cased and quoted (at most 64), so no user text is FTS5 syntax."""
    tokens = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(query)))[:_MAX_TOKENS]
    return [f'"{t}"' for t in tokens]


def fts_query(query: str) -> str:
    """A safe FTS5 query: every word of ``query`` quoted and OR-ed, so no user text is FTS5 syntax."""
    return " OR ".join(fts_terms(query))


def filter_sql(filter: Filter | None, prefix: str = "") -> tuple[str, list[Any]]:
    """A SQL condition and its parameters for a filter, with the semantics of ``matches_filter``.

    Values of the wrong type never match (``page`` is an integer, the other fields are strings), as in Python:
    SQLite's type affinity would otherwise let ``page="2"`` match page 2.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for field, values in check_filter(filter).items():  # field is one of FILTER_FIELDS: safe to interpolate
        kind = int if field == "page" else str
        wanted = list(dict.fromkeys(v for v in values if isinstance(v, kind)))
        parts = []
        if wanted:
            parts.append(f"{prefix}{field} IN ({','.join('?' * len(wanted))})")
            params.extend(wanted)
        if None in values:
            parts.append(f"{prefix}{field} IS NULL")
        clauses.append(f"({' OR '.join(parts)})" if parts else "0")
    return " AND ".join(clauses) or "1", params


def restore_element(payload: str | dict[str, Any]) -> Element:
    """The element a row's payload was written from. Rows are written once from constructed elements and
    never updated, so the stored id is trusted (no re-hashing on the search path)."""
    return element_from_payload(payload, verify=False)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class RecordDB:
    """The records of one index in SQLite (WAL, one transaction per write).

    Not thread-safe on its own: :class:`~mmrag.stores.faiss.FaissIndex` serialises calls with its lock.
    """

    def __init__(self, path: Path, dimensions: int) -> None:
        self.path = path
        try:
            # IF NOT EXISTS and INSERT OR IGNORE let two processes open a new folder at once.
            self.conn = connect_wal(path, _SCHEMA, timeout=30.0, synchronous="FULL")  # committed = survives power loss
            row = self.conn.execute("SELECT dimensions, uid, schema FROM state").fetchone()
            if row is None:  # a new database (an existing one is only read: search and ask never write)
                with self.transaction():
                    self.conn.execute("INSERT OR IGNORE INTO state VALUES (1, ?, 0, ?, ?)",
                                      (dimensions, uuid.uuid4().hex, SCHEMA_VERSION))
                    row = self.conn.execute("SELECT dimensions, uid, schema FROM state").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the index database {path}: {e}; check the folder is writable") from e
        stored, self.uid, schema = int(row[0]), str(row[1]), int(row[2])
        self._wal = WalIndexHeader(Path(f"{path}-shm"))
        self._seen_header: bytes | None = None  # the WAL-index header when _seen_version was read
        self._seen_version = -1
        if schema != SCHEMA_VERSION:
            self.close()
            raise StoreError(f"{path} has index schema {schema}, this mmrag reads {SCHEMA_VERSION}: re-ingest into "
                             "a new collection")
        if stored != dimensions:
            self.close()
            raise StoreError(
                f"the index at {path.parent} holds {stored}-dimensional vectors but {dimensions} dimensions were "
                f"asked for (a different embedding model?): use a new collection, or delete {path.parent} to "
                "start over"
            )

    def close(self) -> None:
        self._wal.close()
        self.conn.close()

    @contextmanager
    def transaction(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction: committed on success, rolled back on any error (the previous state stays)."""
        self.conn.execute(f"BEGIN {mode}")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def version(self) -> int:
        return int(self.conn.execute("SELECT version FROM state").fetchone()[0])

    def current_version(self) -> int:
        """:meth:`version`, without a statement when no connection (of any process) committed since the last call.

        After a flat search of 10k vectors has flushed the CPU caches, the statement costs 20-30 us; the WAL-index
        header costs one memory read. The header is read before the statement: a commit in between makes the next
        call run the statement again.
        """
        wal = self._wal.map  # inlined header(): this runs on every search
        header = wal[:_WAL_HEADER] if wal is not None else None
        if header is not None and header == self._seen_header:
            return self._seen_version
        version = self.version()
        self._seen_header, self._seen_version = header, version
        return version

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM records").fetchone()[0])

    # --- writes ------------------------------------------------------------------------------------------

    def upsert(self, records: Sequence[IndexRecord], vectors: npt.NDArray[np.float32]) -> int:
        """Insert or replace ``records`` (ids unique) with their normalised vectors; returns rows written.

        Payloads are serialised inside the transaction, so a bad record anywhere rolls back the whole batch.
        A record identical to the stored one is left alone (re-adding does not churn row ids).
        """
        existing: dict[str, tuple[str, str, bytes]] = {}
        with self.transaction() as conn:
            for ids in _chunks([r.id for r in records]):
                sql = ("SELECT r.element_id, r.payload, r.text, v.vector FROM records r JOIN vectors v ON v.id = r.id "
                       f"WHERE r.element_id IN ({_marks(ids)})")
                existing.update((row[0], (row[1], row[2], row[3])) for row in conn.execute(sql, ids))
            written = 0
            for record, vector in zip(records, vectors, strict=True):
                e = record.element
                try:
                    payload = json.dumps(element_payload(e), ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as err:
                    raise StoreError(f"element {e.id} ({e.source}): metadata must be JSON-serialisable: {err}") from err
                blob = vector.tobytes()
                old = existing.get(e.id)
                if old is not None:
                    if old == (payload, record.text, blob):
                        continue
                    conn.execute("DELETE FROM records WHERE element_id = ?", (e.id,))
                rowid = conn.execute(
                    "INSERT INTO records (element_id, source, kind, page, mime_type, text, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (e.id, e.source, e.kind, e.page, e.mime_type, record.text, payload),
                ).lastrowid
                conn.execute("INSERT INTO vectors (id, vector) VALUES (?, ?)", (rowid, blob))
                written += 1
            if written:
                conn.execute("UPDATE state SET version = version + 1")
        return written

    def delete_where(self, condition: str, params: Sequence[Any]) -> int:
        with self.transaction() as conn:
            removed = conn.execute(f"DELETE FROM records WHERE {condition}", params).rowcount
            if removed:
                conn.execute("UPDATE state SET version = version + 1")
        return int(removed)

    def delete_ids(self, ids: Sequence[str]) -> int:
        unique = list(dict.fromkeys(ids))
        with self.transaction() as conn:
            removed = 0
            for chunk in _chunks(unique):
                removed += conn.execute(f"DELETE FROM records WHERE element_id IN ({_marks(chunk)})", chunk).rowcount
            if removed:
                conn.execute("UPDATE state SET version = version + 1")
        return removed

    def vacuum_if_worthwhile(self) -> bool:
        """Give free pages back to the file system when they are many (:data:`VACUUM_MIN_FREE_SHARE`, bytes).

        Row ids are kept (``records.id`` is the INTEGER PRIMARY KEY), so the FAISS cache stays valid. Returns
        whether it ran.
        """
        page_size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        if free * page_size < VACUUM_MIN_FREE_BYTES or free < pages * VACUUM_MIN_FREE_SHARE:
            return False
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file shrinks once the WAL is checkpointed
        return True

    # --- reads -------------------------------------------------------------------------------------------

    def rowids(self, condition: str = "1", params: Sequence[Any] = ()) -> npt.NDArray[np.int64]:
        """Sorted row ids of the records matching ``condition``."""
        rows = self.conn.execute(f"SELECT id FROM records WHERE {condition} ORDER BY id", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors_after(self, rowid: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Row ids above ``rowid`` (sorted) and their vectors as one (n, dims) array."""
        rows = self.conn.execute("SELECT id, vector FROM vectors WHERE id > ? ORDER BY id", (rowid,)).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return ids, flat.reshape(len(rows), -1) if rows else flat.reshape(0, 0)

    def payloads(self, rowids: Sequence[int]) -> dict[int, tuple[dict[str, Any], str]]:
        """Row id → (decoded payload, indexed text) for the rows that still exist."""
        out: dict[int, tuple[dict[str, Any], str]] = {}
        for chunk in _chunks(rowids):
            sql = f"SELECT id, payload, text FROM records WHERE id IN ({_marks(chunk)})"
            rows = self.conn.execute(sql, chunk).fetchall()
            # One json.loads for all rows: its fixed cost per call is most of the cost of a small payload.
            decoded = json.loads("[" + ",".join(r[1] for r in rows) + "]")
            out.update((r[0], (d, r[2])) for r, d in zip(rows, decoded, strict=True))
        return out

    def payloads_by_element(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            sql = f"SELECT element_id, payload FROM records WHERE element_id IN ({_marks(chunk)})"
            out.update(self.conn.execute(sql, chunk).fetchall())
        return out

    def keyword(self, query: str, k: int, filter: Filter | None) -> list[tuple[str, str, float]]:
        """(payload, text, BM25 score > 0) of the best ``k`` matches of ``query``, best first.

        Bounded at any index size: see :data:`MATCH_BUDGET`.
        """
        terms = fts_terms(query)
        if not terms or k <= 0:
            return []
        condition, params = filter_sql(filter, prefix="r.")
        selective: list[str] = []
        total = 0
        for count, term in sorted((self._matches(t, MATCH_BUDGET), t) for t in terms):  # rarest first
            if total + count > MATCH_BUDGET:
                break
            selective.append(term)
            total += count
        if selective:
            # Ranked on row ids alone, then joined: a sort that carries every match's payload and text costs
            # 2-3x more. FTS5's bm25() is negative, lower is better, and never 0 for a match (IDF floored at 1e-6).
            joined = f"JOIN records r ON r.id = f.rowid WHERE records_fts MATCH ? AND {condition}" if filter else \
                "WHERE records_fts MATCH ?"
            sql = (
                "SELECT r.payload, r.text, -s.score FROM (SELECT f.rowid AS id, bm25(records_fts) AS score FROM "
                f"records_fts f {joined} ORDER BY score LIMIT ?) s JOIN records r ON r.id = s.id ORDER BY s.score"
            )
            args = [" OR ".join(selective), *params, k] if filter else [" OR ".join(selective), k]
            return [(p, t, float(s)) for p, t, s in self.conn.execute(sql, args)]
        window = (
            "SELECT r.payload, r.text, s.score FROM (SELECT rowid AS id, -bm25(records_fts) AS score FROM records_fts "
            f"WHERE records_fts MATCH ? LIMIT {MATCH_BUDGET}) s JOIN records r ON r.id = s.id WHERE {condition} "
            "ORDER BY s.score DESC LIMIT ?"
        )
        found = [(p, t, float(s)) for p, t, s in self.conn.execute(window, [" AND ".join(terms), *params, k])]
        if len(found) < k and len(terms) > 1:
            seen = {p for p, _, _ in found}
            more = self.conn.execute(window, [" OR ".join(terms), *params, k])
            found += [(p, t, float(s)) for p, t, s in more if p not in seen][: k - len(found)]
        return found

    def _matches(self, term: str, most: int) -> int:
        """How many records hold ``term``, counted up to ``most`` + 1 (reads at most that much of its posting list)."""
        sql = "SELECT count(*) FROM (SELECT rowid FROM records_fts WHERE records_fts MATCH ? LIMIT ?)"
        return int(self.conn.execute(sql, (term, most + 1)).fetchone()[0])


class SqlErrors:
    """A context that turns database errors into :class:`StoreError` naming the index and the action. A class,
    not a ``contextmanager`` generator: it wraps every database call, and is cheaper to enter and leave."""

    __slots__ = ("action", "path")

    def __init__(self, path: Path, action: str) -> None:
        self.path = path
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is not None:
            self.convert(error)

    def convert(self, error: BaseException) -> None:
        """Raise the :class:`StoreError` for ``error`` if it is a database error (for a ``try`` block where even
        this context's two calls count: the search fast path)."""
        if isinstance(error, sqlite3.Error):
            raise StoreError(f"could not {self.action} the index at {self.path}: {error}") from error
        if isinstance(error, json.JSONDecodeError):
            raise StoreError(f"the index at {self.path} holds a damaged record ({error}): delete the folder and "
                             "re-ingest") from error


DB_ERRORS = (sqlite3.Error, json.JSONDecodeError)
"""What :class:`SqlErrors` converts."""


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))
