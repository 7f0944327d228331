"""A vector index in a PostgreSQL table with pgvector: ``pip install 'mmrag[pgvector]'``.

One :class:`PgVectorIndex` is one vector space of one collection: one table, created on first use with an HNSW
index (``vector_cosine_ops``) for vector search, a generated ``tsvector`` column with a GIN index for keyword
search, and a btree on ``source`` for deletes by source::

    index = PgVectorIndex("postgresql://app:secret@db.internal/rag", "docs_text", dimensions=1024)
    index.add(records)
    index.persist()          # commit
    hits = index.search(query_vector, k=10, filter={"kind": ["table", "image"]})

Transaction model: writes (``add``, ``delete``, ``delete_source``) go into one open transaction and
:meth:`PgVectorIndex.persist` commits it, so every write since the last ``persist`` lands together or not at
all, as with FAISS's file swap. Other connections see nothing before ``persist``; this index's own reads see
its pending writes. A write that fails is undone alone (a savepoint) and the writes before it stay pending,
unless the connection itself is lost, which loses every pending write (the error says so). Reads with no write
pending run in autocommit mode, so an idle index never holds a transaction (or its locks) open.
:meth:`PgVectorIndex.close` (or leaving a ``with`` block) rolls back what was not persisted.

Keyword search is PostgreSQL full-text search standing in for BM25 (true BM25 is not built into PostgreSQL):
the ``english`` configuration stems words and drops stop words ("revenues" finds "revenue"), which suits the
English embedding models mmrag uses; ``simple`` would not stem and so miss plural/tense variants. Query words
are OR-ed and ranked with ``ts_rank`` (term frequency with a log length normalisation, no IDF).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mmrag.elements import Element
from mmrag.errors import MissingDependencyError, StoreError
from mmrag.stores._pgvector_sql import (
    MAX_HNSW_DIMENSIONS,
    TABLE_NAME,
    TS_CONFIG,
    TableSpec,
    collection_table,
    ensure_schema,
    filter_sql,
    no_nul,
    or_tsquery,
)
from mmrag.stores.base import Filter, IndexRecord, ScoredRecord, element_from_payload, element_payload

if TYPE_CHECKING:
    import numpy as np
    import psycopg
    from psycopg import sql

    from mmrag.stores._pg_session import PgSession

__all__ = ["PgVectorIndex", "collection_table"]

logger = logging.getLogger(__name__)

_SAVEPOINT = "mmrag_op"


def _require_sdk() -> None:
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(e.name or "psycopg", "pgvector", feature="PgVectorIndex") from e


class PgVectorIndex:
    """A :class:`~mmrag.stores.base.VectorIndex` in one PostgreSQL table (see the module docstring).

    Args:
        dsn: libpq connection string or URI, e.g. ``postgresql://user:password@host:5432/db``.
        table: table name: lowercase letters, digits, ``_`` and ``-``, at most 63 characters.
        dimensions: vector size (1 to 2000, the HNSW limit); an existing table must have the same.
        ef_search: HNSW candidate list size per query (pgvector's default is 40; raised to k when k is
            larger, capped at 1000). Higher is more exact and slower.
        m: HNSW links per node, used when the index is created.
        ef_construction: HNSW build-time candidate list size, used when the index is created.
        batch_size: rows per pipelined ``executemany`` in :meth:`add`.
        connect_timeout: seconds to wait for a connection.
        owner: the collection this table belongs to. It is recorded in the table's comment when the table is
            created (or first opened without one), and opening a table recorded for another collection raises
            :class:`~mmrag.errors.StoreError`, so two collections can never read each other's records.

    The constructor only checks its arguments; the first call connects and creates what is missing
    (``CREATE EXTENSION vector``, the table and its indexes); :meth:`warm_up` does that eagerly. Each index
    has one connection, which threads share one call at a time (a lock).
    """

    def __init__(
        self,
        dsn: str,
        table: str,
        dimensions: int,
        *,
        ef_search: int = 100,
        m: int = 16,
        ef_construction: int = 64,
        batch_size: int = 500,
        connect_timeout: int = 10,
        owner: str | None = None,
        session: PgSession | None = None,
    ) -> None:
        if not TABLE_NAME.fullmatch(table):
            raise StoreError(f"invalid table name {table!r}: use 1-63 lowercase letters, digits, '_' or '-', "
                             "starting with a letter or '_'")
        if isinstance(dimensions, bool) or not 1 <= dimensions <= MAX_HNSW_DIMENSIONS:
            raise StoreError(f"dimensions must be 1 to {MAX_HNSW_DIMENSIONS} (pgvector's HNSW limit), not {dimensions}")
        if not 1 <= ef_search <= 1000:
            raise StoreError(f"ef_search must be 1 to 1000, not {ef_search}")
        _require_sdk()
        from psycopg import sql

        from mmrag.stores._pg_session import PgSession

        self.table, self.dimensions, self.ef_search = table, dimensions, ef_search
        self.owner = owner
        self._t = sql.Identifier(table)
        self._m, self._ef_construction = m, ef_construction
        self._batch_size = max(1, batch_size)
        # A collection's indexes and manifest share one session (one connection, one transaction): see
        # mmrag.stores._pg_session. An index on its own gets a private one.
        self._owns_session = session is None
        self._session = session or PgSession(dsn, connect_timeout=connect_timeout)
        self._where, self._password = self._session.where, self._session.password
        self._prepared = False
        self._iterative_scan = False  # pgvector >= 0.8: HNSW scans go on until filtered queries fill k
        self._lock = self._session.lock

    @property
    def _dirty(self) -> bool:
        """Writes pending since the last persist (on the shared session: by any of its users)."""
        return self._session.dirty

    # --- protocol ----------------------------------------------------------------------------------------

    def add(self, records: Sequence[IndexRecord]) -> None:
        """Upsert records by element id (pending until :meth:`persist`)."""
        from psycopg import sql

        rows = [self._row(r) for r in records]
        upsert = sql.SQL(
            "INSERT INTO {t} (id, source, kind, page, mime_type, payload, text, embedding) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, "
            "kind = EXCLUDED.kind, page = EXCLUDED.page, mime_type = EXCLUDED.mime_type, "
            "payload = EXCLUDED.payload, text = EXCLUDED.text, embedding = EXCLUDED.embedding"
        ).format(t=self._t)
        if rows:
            with self._op(f"adding {len(rows)} records", write=True) as cur:
                for start in range(0, len(rows), self._batch_size):
                    cur.executemany(upsert, rows[start : start + self._batch_size])

    def search(self, vector: Sequence[float], k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """The k nearest records by cosine similarity (``1 - (embedding <=> query)``), best first.

        HNSW is approximate. With a filter, pgvector >= 0.8 scans the graph iteratively (``hnsw.iterative_scan
        = strict_order``, up to ``hnsw.max_scan_tuples``) so that rare filter values still fill k results.
        On small tables PostgreSQL rightly prefers an exact scan; :meth:`explain` shows its plan.
        """
        query, params = self._search_sql(vector, k, filter)
        if k <= 0:
            return []
        rows = self._tuned("searching", query, params, k)
        return [ScoredRecord(element_from_payload(p), 1.0 - float(d), text) for p, text, d in rows]

    def keyword_search(self, query: str, k: int = 10, filter: Filter | None = None) -> list[ScoredRecord]:
        """Records whose text matches any word of ``query``, best first by PostgreSQL full-text ranking.

        This stands in for BM25: ``ts_rank`` with length normalisation 1 over the ``english`` configuration;
        scores are positive but not on BM25's scale. Any text is safe: words are extracted by ``to_tsvector``
        and OR-ed, never parsed as query syntax. A query of only stop words matches nothing.
        """
        from psycopg import sql

        condition, params = filter_sql(filter)
        if k <= 0 or not query.strip():
            return []
        stmt = sql.SQL(
            "SELECT payload, text, ts_rank(tsv, query.q, 1) AS score FROM {t}, (SELECT %s::tsquery AS q) AS query "
            "WHERE tsv @@ query.q{filter} ORDER BY score DESC, id LIMIT %s"
        ).format(t=self._t, filter=sql.SQL(" AND ") + condition if condition else sql.SQL(""))
        with self._op("keyword search", write=False) as cur:
            cur.execute("SELECT lexeme FROM unnest(to_tsvector(%s::regconfig, %s))", [TS_CONFIG, no_nul(query)])
            lexemes = [row[0] for row in cur.fetchall()]
            if not lexemes:
                return []
            cur.execute(stmt, [or_tsquery(lexemes), *params, k])
            rows = cur.fetchall()
        return [ScoredRecord(element_from_payload(p), float(score), text) for p, text, score in rows]

    def get(self, ids: Sequence[str]) -> list[Element]:
        """The stored elements with these ids, in the order asked (missing ids are left out)."""
        from psycopg import sql

        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        with self._op("reading records", write=False) as cur:
            cur.execute(sql.SQL("SELECT id, payload FROM {t} WHERE id = ANY(%s)").format(t=self._t), [wanted])
            found = dict(cur.fetchall())
        return [element_from_payload(found[i]) for i in wanted if i in found]

    def delete(self, ids: Sequence[str]) -> int:
        """Delete these ids (pending until :meth:`persist`); returns how many were there."""
        return self._delete("id = ANY(%s)", list(ids)) if ids else 0

    def delete_source(self, source: str) -> int:
        """Delete every record of one source (pending until :meth:`persist`); returns how many."""
        return self._delete("source = %s", source)

    def count(self) -> int:
        from psycopg import sql

        with self._op("counting", write=False) as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=self._t))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def persist(self) -> None:
        """Commit every write since the last persist (inside the session's ``atomic`` block: at its end)."""
        self._session.commit()

    def drop_table(self) -> None:
        """Drop this index's table (deleting its collection); pending until :meth:`persist`, like every write."""
        from psycopg import sql

        with self._op("dropping the table", write=True) as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=self._t))

    # --- lifecycle ---------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Connect and create the extension, table and indexes if missing (otherwise done on first use)."""
        with self._lock:
            self._connect()

    def close(self) -> None:
        """Close the connection; writes not persisted are rolled back. The index reconnects if used again.

        On a shared session (a collection's) the connection stays open for the others; closing the collection
        closes it."""
        with self._lock:
            if not self._owns_session:
                return
            if self._dirty:
                logger.warning("closing %s with writes that were never persisted: rolled back", self.table)
            self._drop()

    def __enter__(self) -> PgVectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgVectorIndex({self._where}, table={self.table!r}, dimensions={self.dimensions})"

    def explain(self, vector: Sequence[float], k: int = 10, filter: Filter | None = None) -> str:
        """PostgreSQL's plan for :meth:`search` with these arguments (does it use the HNSW index?)."""
        from psycopg import sql

        query, params = self._search_sql(vector, k, filter)
        return "\n".join(row[0] for row in self._tuned("explaining a search", sql.SQL("EXPLAIN ") + query, params, k))

    # --- SQL ---------------------------------------------------------------------------------------------

    def _vector(self, vector: Sequence[float], what: str, *, query: bool = False) -> np.ndarray[Any, Any]:
        import numpy as np

        array = np.asarray(vector, dtype=np.float32).reshape(-1)
        if array.size != self.dimensions:
            raise StoreError(f"{what} has {array.size} dimensions; this index ({self.table}) has {self.dimensions}")
        if not np.isfinite(array).all():
            raise StoreError(f"{what} is not finite")
        if query and not np.any(array):
            raise StoreError(f"{what} is zero: cosine similarity needs a direction")
        return array

    def _row(self, record: IndexRecord) -> tuple[Any, ...]:
        from psycopg.types.json import Jsonb

        e = record.element
        return (e.id, e.source, e.kind, e.page, e.mime_type, Jsonb(element_payload(e)),
                no_nul(record.text), self._vector(record.vector, f"the vector of element {e.id}"))

    def _search_sql(self, vector: Sequence[float], k: int, filter: Filter | None) -> tuple[sql.Composed, list[Any]]:
        from psycopg import sql

        array = self._vector(vector, "the query vector", query=True)
        condition, params = filter_sql(filter)
        query = sql.SQL(
            # A stored zero vector has no cosine distance (NaN, sorted last): score it 0, as FAISS does.
            "SELECT payload, text, coalesce(nullif(embedding <=> %s, 'NaN'), 1) AS distance FROM {t}{where} "
            "ORDER BY embedding <=> %s LIMIT %s"
        ).format(t=self._t, where=sql.SQL(" WHERE ") + condition if condition else sql.SQL(""))
        return query, [array, *params, array, max(k, 0)]

    def _tuned(self, what: str, query: sql.Composed, params: list[Any], k: int) -> list[tuple[Any, ...]]:
        """Run a vector query after setting the HNSW parameters, in one round trip (a pipeline)."""
        ef_search = str(min(1000, max(self.ef_search, k)))
        with self._op(what, write=False) as cur:
            conn = cur.connection
            with conn.pipeline():
                # Session settings (we own the connection): SET LOCAL would not outlive an autocommit read.
                conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", [ef_search])
                if self._iterative_scan:
                    conn.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', false)")
                cur.execute(query, params)
            return cur.fetchall()

    def _delete(self, condition: str, value: Any) -> int:
        from psycopg import sql

        with self._op("deleting", write=True) as cur:
            cur.execute(sql.SQL("DELETE FROM {t} WHERE ").format(t=self._t) + sql.SQL(condition), [value])
            return max(cur.rowcount, 0)

    # --- connection, schema and errors -------------------------------------------------------------------

    @contextmanager
    def _op(self, what: str, *, write: bool) -> Iterator[psycopg.Cursor[Any]]:
        """One operation. Reads with no transaction open run in autocommit, so an idle index holds no locks;
        writes, and reads among pending writes, run under a savepoint, so a failure undoes only themselves."""
        import psycopg
        from psycopg.pq import TransactionStatus

        with self._lock:
            conn = self._connect()
            guarded = write or conn.info.transaction_status != TransactionStatus.IDLE
            try:
                if guarded:
                    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
                else:
                    conn.autocommit = True
                with conn.cursor() as cur:
                    yield cur
                if guarded:
                    conn.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                    self._session.dirty = self._session.dirty or write
            except BaseException as e:
                lost = self._undo(conn, guarded)
                if isinstance(e, psycopg.Error):
                    raise self._error(what, e, lost=lost) from e
                raise
            finally:
                if not guarded and not conn.closed:
                    conn.autocommit = False

    def _undo(self, conn: psycopg.Connection[Any], guarded: bool) -> bool:
        """Undo a failed operation; returns whether pending writes were lost with the connection."""
        if not conn.broken:
            try:
                if guarded:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                    conn.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                    if not self._dirty:
                        conn.rollback()  # nothing else pending: leave no transaction open
                return False
            except Exception:
                logger.debug("could not roll back on %s", self._where, exc_info=True)
        lost = self._dirty
        self._drop()
        return lost

    def _drop(self) -> None:
        self._session.drop()

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create or check this index's table on a new connection (run by the session)."""
        import psycopg
        from pgvector.psycopg import register_vector

        try:
            self._iterative_scan = ensure_schema(conn, TableSpec(self.table, self.dimensions, self.owner, self._where,
                                                                 self._m, self._ef_construction))
            register_vector(conn)
        except psycopg.Error as e:
            raise self._error("preparing the table", e) from e

    def _connect(self) -> psycopg.Connection[Any]:
        with self._lock:
            if not self._prepared:
                self._prepared = True
                try:
                    self._session.on_connect(self._prepare)
                except BaseException:
                    self._prepared = False
                    raise
            return self._session.connection()

    def _error(self, what: str, e: Exception, *, lost: bool = False) -> StoreError:
        import psycopg
        from psycopg import errors

        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if self._password:
            reason = reason.replace(self._password, "***")
        if isinstance(e, errors.InsufficientPrivilege):
            hint = "; grant this user the privilege, or use a table it owns"
        elif isinstance(e, errors.UndefinedTable):
            hint = "; the table was dropped while in use: close() the index and use it again to recreate it"
        elif isinstance(e, psycopg.OperationalError):
            hint = "; check that the server is running and reachable, and the user and password in the DSN"
        else:
            hint = ""
        lost_note = "; the writes since the last persist() were lost: add them again" if lost else ""
        return StoreError(f"PostgreSQL at {self._where} (table {self.table}): {what} failed: {reason}{hint}{lost_note}")


