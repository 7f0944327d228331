"""The manifest in PostgreSQL, so that every machine with the same settings sees one collection.

Seven tables per collection, named like its vector tables (``mmrag_<collection>_mf_sources``..., a hash for
names that need one: :func:`manifest_table`), created together in one transaction, in the same database and
schema as the pgvector tables. The collection's indexes and this manifest share one connection
(:class:`~mmrag.stores._pg_session.PgSession`), so inside :meth:`PgManifest.atomic` a source's vectors and its
commit are one transaction: another machine sees both or neither.

Many writers: every manifest write takes a transaction-scoped advisory lock on the collection
(``pg_advisory_xact_lock``), so claims, commits and releases of objects are serialised as sqlite serialises
them (a release checks references and deletes objects while no claim can slip in). Leases (table ``leases``)
keep two machines from ingesting one source at once; their clock is the database's (``clock_timestamp()``), so
machines with skewed clocks agree on when a lease has expired. ``remove`` and ``gc`` take a session-level
advisory lock exclusively, every ingest takes it shared (:meth:`PgManifest.writers`).

Read-only use (``ask``, ``search``, ``collections``) never creates anything: without ``create=True`` a missing
manifest is :class:`~mmrag.errors.NotFoundError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mmrag.errors import NotFoundError, StoreError
from mmrag.stores._manifest_types import Place, SourceEntry, entry_from_row
from mmrag.stores._pg_session import PgSession, require_psycopg
from mmrag.stores._pgvector_sql import collection_table, no_nul

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgManifest", "manifest_table", "pg_collection_names"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_PARTS = ("meta", "sources", "elements", "pending", "released", "places", "leases")
_DDL = (
    "CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {sources} (source TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
    "elements INTEGER NOT NULL, kinds TEXT NOT NULL, ingested_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {elements} (source TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, "
    "object_key TEXT, PRIMARY KEY (source, id))",
    "CREATE INDEX IF NOT EXISTS {elements_by_id} ON {elements} (id)",
    "CREATE INDEX IF NOT EXISTS {elements_by_object} ON {elements} (object_key)",
    "CREATE TABLE IF NOT EXISTS {pending} (source TEXT NOT NULL, id TEXT NOT NULL, object_key TEXT, "
    "PRIMARY KEY (source, id))",
    "CREATE INDEX IF NOT EXISTS {pending_by_id} ON {pending} (id)",
    "CREATE INDEX IF NOT EXISTS {pending_by_object} ON {pending} (object_key)",
    "CREATE TABLE IF NOT EXISTS {released} (object_key TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS {places} (id TEXT NOT NULL, source TEXT NOT NULL, seq INTEGER NOT NULL, "
    "in_document INTEGER NOT NULL, page INTEGER, bbox TEXT, text TEXT NOT NULL, mime_type TEXT, object_key TEXT, "
    "metadata TEXT NOT NULL, PRIMARY KEY (id, source, seq))",
    "CREATE INDEX IF NOT EXISTS {places_by_source} ON {places} (source)",
    "CREATE TABLE IF NOT EXISTS {leases} (source TEXT PRIMARY KEY, owner TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL)",
)
_META_SUFFIX = "_mf_meta"


def manifest_table(collection: str, part: str) -> str:
    """The table of one part of a collection's manifest (injective in the collection name, like the vector
    tables: no part name ends with another part's or a space's name after ``_``)."""
    return collection_table(collection, f"mf_{part}")


def pg_collection_names(session: PgSession) -> list[str]:
    """The collections whose manifest is in this database (current schema), sorted; creates nothing.

    A collection whose manifest this user may not read is left out (and logged at debug level)."""
    import psycopg
    from psycopg import sql

    with session.lock:
        conn = session.connection()
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
                [f"mmrag\\_%{_META_SUFFIX.replace('_', chr(92) + '_')}"]).fetchall()]
            names: list[str] = []
            for table in tables:
                try:
                    conn.execute("SAVEPOINT mmrag_list")
                    row = conn.execute(sql.SQL("SELECT value FROM {} WHERE key = 'name'").format(
                        sql.Identifier(table))).fetchone()
                    conn.execute("RELEASE SAVEPOINT mmrag_list")
                except psycopg.Error:
                    conn.execute("ROLLBACK TO SAVEPOINT mmrag_list")
                    logger.debug("cannot read %s: skipped", table, exc_info=True)
                    continue
                if row is not None:
                    name = json.loads(row[0])
                    if manifest_table(name, "meta") == table:
                        names.append(name)
        except psycopg.Error as e:
            raise StoreError(f"PostgreSQL at {session.where}: listing collections failed: {session.redact(e)}") from e
        finally:
            if idle and not conn.closed:
                conn.rollback()
    return sorted(names)


class PgManifest:
    """A :class:`~mmrag.stores.manifest.ManifestStore` in PostgreSQL (see the module docstring).

    Args:
        session: the collection's shared session (its pgvector indexes use the same one).
        collection: the collection's name (recorded in the ``meta`` table).
        create: create the tables if this collection has none (only ingest should); otherwise a missing
            manifest raises :class:`~mmrag.errors.NotFoundError` on first use.
    """

    def __init__(self, session: PgSession, collection: str, *, create: bool = False) -> None:
        require_psycopg("the PostgreSQL manifest")
        from psycopg import sql

        self.session, self.collection, self._create = session, collection, create
        self.tables = {part: manifest_table(collection, part) for part in _PARTS}
        names: dict[str, sql.Composable] = {p: sql.Identifier(t) for p, t in self.tables.items()}
        for suffix in ("elements_by_id", "elements_by_object", "pending_by_id", "pending_by_object",
                       "places_by_source"):
            part = suffix.split("_by_")[0]
            names[suffix] = sql.Identifier(f"{self.tables[part][:50]}_{suffix.split('_by_')[1]}_ix")
        self._names = names
        self._prepared = False

    # --- plumbing ----------------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"PostgreSQL at {self.session.where} (manifest of collection {self.collection!r})"

    def _sql(self, text: str) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(**{k: v for k, v in self._names.items() if "{" + k + "}" in text})

    def _lock_key(self, what: str) -> tuple[str, str]:
        return (f"mmrag-{what}", self.collection)

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        import psycopg

        try:
            found = {part for part, table in self.tables.items()
                     if conn.execute("SELECT to_regclass(%s)", [table]).fetchone() != (None,)}
            if not found:
                if not self._create:
                    raise NotFoundError(f"collection {self.collection!r} does not exist in PostgreSQL at "
                                        f"{self.session.where}")
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", self._lock_key("ddl"))
                for statement in _DDL:
                    conn.execute(self._sql(statement))
                conn.execute(self._sql("INSERT INTO {meta} VALUES ('name', %s), ('schema_version', %s) "
                                       "ON CONFLICT (key) DO NOTHING"),
                             [json.dumps(self.collection), json.dumps(SCHEMA_VERSION)])
                return
            missing = sorted(self.tables[p] for p in set(_PARTS) - found)
            if missing:
                raise StoreError(f"{self.where}: the manifest is incomplete (missing tables: {', '.join(missing)}); "
                                 "it was changed outside mmrag: restore those tables from a backup, or delete the "
                                 f"collection with `mmrag collections delete {self.collection}` and ingest again")
            row = conn.execute(self._sql("SELECT value FROM {meta} WHERE key = 'schema_version'")).fetchone()
            version = json.loads(row[0]) if row else SCHEMA_VERSION
            if not isinstance(version, int) or version > SCHEMA_VERSION:
                raise StoreError(f"{self.where}: the manifest was written by a newer mmrag (manifest schema "
                                 f"{version}; this mmrag reads {SCHEMA_VERSION}): upgrade mmrag "
                                 "(pip install -U mmrag) on this machine")
        except psycopg.Error as e:
            raise self._error("open", e) from e

    def _conn(self) -> psycopg.Connection[Any]:
        with self.session.lock:
            if not self._prepared:
                self._prepared = True
                try:
                    self.session.on_connect(self._prepare)
                except BaseException:
                    self._prepared = False
                    self.session._prepare.remove(self._prepare)  # noqa: SLF001 - undo our own registration
                    raise
            return self.session.connection()

    def _error(self, what: str, e: BaseException) -> StoreError:
        from psycopg import errors

        if isinstance(e, errors.InsufficientPrivilege):
            hint = (f"; grant this database user SELECT, INSERT, UPDATE and DELETE on the tables "
                    f"{self.tables['meta'].rsplit('_mf_', 1)[0]}_mf_* (or CREATE on the schema, to create them)")
        elif isinstance(e, errors.OperationalError):
            hint = "; check that the server is running and reachable, and the user and password in the DSN"
        else:
            hint = ""
        return StoreError(f"{self.where}: cannot {what} the manifest: {self.session.redact(e)}{hint}")

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """A read: in the open transaction if there is one (it sees its own writes), else in autocommit mode
        (one round trip, and an idle session holds no snapshot or lock)."""
        import psycopg

        with self.session.lock:
            conn = self._conn()
            idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if idle:
                conn.autocommit = True
            try:
                yield conn
            except psycopg.Error as e:
                raise self._error("read", e) from e
            finally:
                if idle and not conn.closed:
                    conn.autocommit = False

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One write, under the collection's advisory lock, pipelined (one round trip unless it reads results);
        committed at once unless an ``atomic`` block is open (then with the block). Inside an open transaction
        it runs under a savepoint, so a failure undoes only itself."""
        import psycopg

        with self.session.lock:
            conn = self._conn()
            nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
            try:
                with conn.pipeline():
                    if nested:
                        conn.execute("SAVEPOINT mmrag_manifest")
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
                                 self._lock_key("manifest"))
                    yield conn
                    if nested:
                        conn.execute("RELEASE SAVEPOINT mmrag_manifest")
                    if not self.session.in_atomic:
                        conn.commit()
            except BaseException as e:
                if conn.broken:
                    self.session.drop()
                else:
                    try:
                        if nested:
                            conn.execute("ROLLBACK TO SAVEPOINT mmrag_manifest")
                        else:
                            conn.rollback()
                    except psycopg.Error:
                        self.session.drop()
                if isinstance(e, psycopg.Error):
                    raise self._error("write", e) from e
                raise
            if self.session.in_atomic or nested:
                self.session.dirty = True
                self.session.commit()

    def close(self) -> None:
        self.session.drop()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction for the block, holding the collection's manifest lock from its start: two machines'
        blocks never wait on each other's rows in opposite orders (no deadlock), at the cost of running one
        machine's write block at a time (the model stage, the long part, still runs in parallel)."""
        with self.session.atomic():
            with self.session.lock:
                conn = self._conn()
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", self._lock_key("manifest"))
                self.session.dirty = True  # the block's end commits, which releases the lock
            yield

    # --- collection facts --------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        with self._read() as db:
            rows = db.execute(self._sql("SELECT key, value FROM {meta}")).fetchall()
        return {k: json.loads(v) for k, v in rows if k not in ("name", "schema_version")}

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self._tx() as db, db.cursor() as cur:
            cur.executemany(self._sql("INSERT INTO {meta} VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                                      "SET value = EXCLUDED.value"), [(k, json.dumps(v)) for k, v in values.items()])

    # --- sources ------------------------------------------------------------------------------------------

    def get(self, source: str) -> SourceEntry | None:
        with self._read() as db:
            row = db.execute(self._sql("SELECT * FROM {sources} WHERE source = %s"), [source]).fetchone()
        return entry_from_row(row) if row else None

    def sources(self) -> list[SourceEntry]:
        with self._read() as db:
            rows = db.execute(self._sql("SELECT * FROM {sources} ORDER BY source")).fetchall()
        return [entry_from_row(r) for r in rows]

    def element_ids(self, source: str) -> set[str]:
        return self._column("SELECT id FROM {elements} WHERE source = %s", [source])

    def object_keys(self) -> set[str]:
        return self._column("SELECT DISTINCT object_key FROM {elements} WHERE object_key IS NOT NULL", [])

    def pending_ids(self, source: str) -> set[str]:
        return self._column("SELECT id FROM {pending} WHERE source = %s", [source])

    def sources_with_pending(self) -> list[str]:
        return sorted(self._column("SELECT DISTINCT source FROM {pending}", []))

    def _column(self, text: str, params: Sequence[Any]) -> set[str]:
        with self._read() as db:
            return {r[0] for r in db.execute(self._sql(text), list(params)).fetchall()}

    def claim(self, source: str, ids: Iterable[str | tuple[str, str | None]]) -> None:
        rows = [(source, i, None) if isinstance(i, str) else (source, i[0], i[1]) for i in ids]
        with self._tx() as db, db.cursor() as cur:
            cur.executemany(self._sql(
                "INSERT INTO {pending} (source, id, object_key) VALUES (%s, %s, %s) ON CONFLICT (source, id) "
                "DO UPDATE SET object_key = coalesce(EXCLUDED.object_key, {pending}.object_key)"), rows)

    def uncommitted_count(self) -> int:
        with self._read() as db:
            row = db.execute(self._sql("SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM {pending}) THEN 0 ELSE "
                                       "(SELECT count(DISTINCT id) FROM {pending} p WHERE NOT EXISTS "
                                       "(SELECT 1 FROM {elements} e WHERE e.id = p.id)) END")).fetchone()
        return int(row[0]) if row else 0

    def uncommitted(self, ids: Sequence[str]) -> set[str]:
        return self._column("SELECT id FROM {pending} WHERE id = ANY(%s) EXCEPT "
                            "SELECT id FROM {elements} WHERE id = ANY(%s)", [list(ids), list(ids)])

    def uncommitted_by_source(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        with self._read() as db:
            for source, i in db.execute(self._sql("SELECT source, id FROM {pending} p WHERE NOT EXISTS "
                                                  "(SELECT 1 FROM {elements} e WHERE e.id = p.id)")):
                out.setdefault(source, set()).add(i)
        return out

    def drop_claims(self, source: str, ids: Iterable[str]) -> None:
        with self._tx() as db:
            old = self._keys_of(db, source)
            db.execute(self._sql("DELETE FROM {pending} WHERE source = %s AND id = ANY(%s)"), [source, list(ids)])
            self._mark_released(db, old)

    def object_keys_of(self, source: str) -> set[str]:
        with self._read() as db:
            return self._keys_of(db, source)

    def referenced_keys(self) -> set[str]:
        return self._column("SELECT object_key FROM {elements} WHERE object_key IS NOT NULL UNION "
                            "SELECT object_key FROM {pending} WHERE object_key IS NOT NULL", [])

    def release(self, candidates: Iterable[str], delete: Callable[[list[str]], None]) -> list[str]:
        keys = sorted(set(candidates))
        if not keys:
            return []
        with self._tx() as db:
            referenced = {r[0] for r in db.execute(self._sql(
                "SELECT object_key FROM {elements} WHERE object_key = ANY(%s) UNION "
                "SELECT object_key FROM {pending} WHERE object_key = ANY(%s)"), [keys, keys])}
            unreferenced = [k for k in keys if k not in referenced]
            if unreferenced:
                delete(unreferenced)  # under the advisory lock: a concurrent claim waits for the deletion
        return unreferenced

    def release_orphans(self, delete: Callable[[list[str]], None]) -> list[str]:
        candidates = sorted(self._column("SELECT object_key FROM {released}", []))
        if not candidates:
            return []
        deleted = self.release(candidates, delete)
        with self._tx() as db:
            db.execute(self._sql("DELETE FROM {released} WHERE object_key = ANY(%s)"), [candidates])
        return deleted

    def commit(self, source: str, fingerprint: str, elements: Iterable[tuple[str, str, str | None]],
               places: Iterable[Place] = ()) -> None:
        import time

        rows = list(elements)
        kinds: dict[str, int] = {}
        for _, kind, _ in rows:
            kinds[kind] = kinds.get(kind, 0) + 1
        place_rows = [_place_row(p) for p in places if p.source == source]
        with self._tx() as db, db.cursor() as cur:
            old = self._keys_of(db, source)
            cur.execute(self._sql("DELETE FROM {elements} WHERE source = %s"), [source])
            cur.executemany(self._sql("INSERT INTO {elements} VALUES (%s, %s, %s, %s) ON CONFLICT (source, id) "
                                      "DO UPDATE SET kind = EXCLUDED.kind, object_key = EXCLUDED.object_key"),
                            [(source, *r) for r in rows])
            cur.execute(self._sql("DELETE FROM {places} WHERE source = %s"), [source])
            cur.executemany(self._sql("INSERT INTO {places} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                                      "ON CONFLICT (id, source, seq) DO NOTHING"), place_rows)
            cur.execute(self._sql("DELETE FROM {pending} WHERE source = %s"), [source])
            cur.execute(self._sql("DELETE FROM {leases} WHERE source = %s"), [source])
            cur.execute(self._sql("INSERT INTO {sources} VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source) DO UPDATE "
                                  "SET fingerprint = EXCLUDED.fingerprint, elements = EXCLUDED.elements, "
                                  "kinds = EXCLUDED.kinds, ingested_at = EXCLUDED.ingested_at"),
                        [source, fingerprint, len(rows), json.dumps(kinds, sort_keys=True), time.time()])
            self._mark_released(db, old)

    def forget(self, source: str) -> None:
        with self._tx() as db:
            old = self._keys_of(db, source)
            for part in ("sources", "elements", "pending", "places", "leases"):
                db.execute(self._sql(f"DELETE FROM {{{part}}} WHERE source = %s"), [source])
            self._mark_released(db, old)

    def totals(self, sources: Iterable[str] | None = None) -> dict[str, int]:
        with self._read() as db:
            if sources is None:
                rows = db.execute(self._sql("SELECT kind, count(DISTINCT id) FROM {elements} GROUP BY kind"))
            else:
                rows = db.execute(self._sql("SELECT kind, count(*) FROM (SELECT DISTINCT ON (id) id, kind FROM "
                                            "{elements} WHERE source = ANY(%s) ORDER BY id, source) s GROUP BY kind"),
                                  [sorted(set(sources))])
            return {k: int(n) for k, n in rows.fetchall()}

    # --- places --------------------------------------------------------------------------------------------

    def places(self, ids: Iterable[str]) -> dict[str, list[Place]]:
        out: dict[str, list[Place]] = {}
        with self._read() as db:
            for row in db.execute(self._sql("SELECT * FROM {places} WHERE id = ANY(%s) ORDER BY id, source, seq"),
                                  [sorted(set(ids))]).fetchall():
                out.setdefault(row[0], []).append(Place.from_row(row))
        return out

    def places_in(self, sources: Iterable[str]) -> dict[str, list[Place]]:
        ids = self._column("SELECT id FROM {places} WHERE source = ANY(%s)", [sorted(set(sources))])
        if not ids:
            return {}
        return {i: places for i, places in self.places(ids).items() if len({p.source for p in places}) > 1}

    def holders(self, ids: Iterable[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        with self._read() as db:
            for i, source in db.execute(self._sql("SELECT id, source FROM {elements} WHERE id = ANY(%s)"),
                                        [sorted(set(ids))]).fetchall():
                out.setdefault(i, set()).add(source)
        return out

    # --- many writers --------------------------------------------------------------------------------------

    def acquire(self, source: str, owner: str, seconds: float = 60.0) -> bool:
        with self._tx() as db:
            row = db.execute(self._sql(
                "INSERT INTO {leases} VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (source) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires "
                "WHERE {leases}.owner = EXCLUDED.owner OR {leases}.expires < clock_timestamp() RETURNING 1"),
                [source, owner, seconds]).fetchone()
        return row is not None

    def renew(self, owner: str, seconds: float = 60.0) -> int:
        with self._tx() as db:
            return len(db.execute(self._sql("UPDATE {leases} SET expires = clock_timestamp() + make_interval(secs => "
                                            "%s) WHERE owner = %s RETURNING 1"), [seconds, owner]).fetchall())

    def unlease(self, owner: str, sources: Iterable[str] | None = None) -> None:
        with self._tx() as db:
            if sources is None:
                db.execute(self._sql("DELETE FROM {leases} WHERE owner = %s"), [owner])
            else:
                db.execute(self._sql("DELETE FROM {leases} WHERE owner = %s AND source = ANY(%s)"),
                           [owner, list(sources)])

    @contextmanager
    def writers(self, *, exclusive: bool) -> Iterator[None]:
        """A session-level advisory lock on a connection of its own, held for the block."""
        import psycopg

        key = self._lock_key("writers")
        try:
            conn = psycopg.connect(self.session._dsn, autocommit=True,  # noqa: SLF001 - same DSN, own connection
                                   connect_timeout=self.session.connect_timeout)
        except psycopg.Error as e:
            raise self._error("lock", e) from e
        try:
            if exclusive:
                row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", key).fetchone()
                if not row or not row[0]:
                    raise StoreError(f"collection {self.collection!r} is being written by another mmrag process "
                                     "(an ingest, on this machine or another): run this again when it has finished")
            else:
                conn.execute("SELECT pg_advisory_lock_shared(hashtext(%s), hashtext(%s))", key)
            yield
        finally:
            conn.close()  # ends the session: PostgreSQL releases its advisory locks

    # --- helpers -------------------------------------------------------------------------------------------

    def _keys_of(self, db: psycopg.Connection[Any], source: str) -> set[str]:
        rows = db.execute(self._sql("SELECT object_key FROM {elements} WHERE source = %s AND object_key IS NOT NULL "
                                    "UNION SELECT object_key FROM {pending} WHERE source = %s AND object_key IS NOT "
                                    "NULL"), [source, source]).fetchall()
        return {r[0] for r in rows}

    def _mark_released(self, db: psycopg.Connection[Any], keys: set[str]) -> None:
        if keys:
            db.execute(self._sql(
                "INSERT INTO {released} SELECT k FROM unnest(%s::text[]) AS k WHERE NOT EXISTS (SELECT 1 FROM "
                "{elements} WHERE object_key = k) AND NOT EXISTS (SELECT 1 FROM {pending} WHERE object_key = k) "
                "ON CONFLICT DO NOTHING"), [sorted(keys)])

    def drop(self) -> None:
        """Drop every table of this manifest (deleting the collection)."""
        with self._tx() as db:
            for table in self.tables.values():
                db.execute(_drop_sql(table))


def _drop_sql(table: str) -> Any:
    from psycopg import sql

    return sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table))


def _place_row(place: Place) -> tuple[Any, ...]:
    row = list(place.row())
    row[6] = no_nul(row[6])
    return tuple(row)
