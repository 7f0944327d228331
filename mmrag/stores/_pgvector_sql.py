"""The SQL side of :class:`~mmrag.stores.pgvector.PgVectorIndex`: table and index names, the schema (created or
checked on connect), filters as SQL conditions, keyword queries, and DSNs described without their password.

Pure functions over a psycopg connection; the index keeps the connection, its transaction model and its errors.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmrag.errors import StoreError
from mmrag.stores.base import Filter, check_filter

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["MAX_HNSW_DIMENSIONS", "TABLE_NAME", "TS_CONFIG", "TableSpec", "collection_table", "describe_dsn",
           "ensure_schema", "filter_sql", "index_name", "no_nul", "or_tsquery"]

logger = logging.getLogger(__name__)

TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
"""Lowercase, so psql users can find the table; PostgreSQL truncates identifiers past 63 bytes."""
TS_CONFIG = "english"
MAX_HNSW_DIMENSIONS = 2000  # pgvector's limit for an HNSW index on the vector type
_FILTER_TYPES: dict[str, type] = {"source": str, "kind": str, "page": int, "mime_type": str}
_OWNER_MARK = "mmrag collection: "
_COLUMNS = frozenset({"id", "source", "kind", "page", "mime_type", "payload", "text", "tsv", "embedding"})


@dataclass(frozen=True)
class TableSpec:
    """What one index's table must be: its name, vector size, owning collection, HNSW build parameters, and
    where the server is (for messages)."""

    table: str
    dimensions: int
    owner: str | None
    where: str
    m: int = 16
    ef_construction: int = 64


def collection_table(collection: str, space: str) -> str:
    """The table of one space of one collection; different collections always get different tables.

    ``mmrag_<collection>_<space>`` when the collection name is already a plain identifier that fits (so the
    tables of ``default`` stay ``mmrag_default_text``); otherwise (a ``-`` in the name, or too long for
    PostgreSQL's 63 bytes) the name is shortened and a hash of the exact name is added, so ``team-a`` and
    ``team_a`` no longer share ``mmrag_team_a_text``. The table's comment records its collection as well, and
    opening a table that belongs to another collection fails (see ``PgVectorIndex(owner=...)``).
    """
    plain = f"mmrag_{collection}_{space}"
    if re.fullmatch(r"[a-z0-9_]+", collection) and len(plain) <= 63:
        return plain
    digest = hashlib.sha256(collection.encode("utf-8")).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9_]", "_", collection)[: 63 - len(f"mmrag___{digest}_{space}")]
    return f"mmrag_{slug}__{digest}_{space}"


def index_name(table: str, suffix: str) -> str:
    """``<table>_<suffix>``, or a shortened table name plus a hash of it when that would pass 63 bytes."""
    name = f"{table}_{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{table[: 63 - len(suffix) - 10]}_{digest}_{suffix}"


def or_tsquery(lexemes: Sequence[str]) -> str:
    """A tsquery matching any of these (already normalised) lexemes, each quoted for the tsquery parser.

    Feeding user text to ``to_tsquery`` lets its operators through (``!``, ``&``, ``(``) and fails on stray
    ones; ``plainto_tsquery`` ANDs the words, so "europe revenue" would miss a text with only "revenue".
    """
    return " | ".join("'" + lx.replace("\\", "\\\\").replace("'", "''") + "'" for lx in lexemes)


def no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters: a space instead."""
    return text.replace("\x00", " ")


def filter_sql(filter: Filter | None) -> tuple[sql.Composable | None, list[Any]]:
    """The SQL condition for a filter (None without one) and its parameters.

    Values of the wrong type for a column (a string for ``page``) match nothing, as in
    :func:`~mmrag.stores.base.matches_filter`.
    """
    from psycopg import sql

    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for field, values in check_filter(filter).items():
        column = sql.Identifier(field)
        wanted = [v for v in values if isinstance(v, _FILTER_TYPES[field]) and not isinstance(v, bool)]
        parts: list[sql.Composable] = []
        if wanted:
            parts.append(sql.SQL("{} = ANY(%s)").format(column))
            params.append(wanted)
        if None in values:
            parts.append(sql.SQL("{} IS NULL").format(column))
        clauses.append(sql.SQL("({})").format(sql.SQL(" OR ").join(parts)) if parts else sql.SQL("FALSE"))
    if not clauses:
        return None, []
    return sql.SQL(" AND ").join(clauses), params


def describe_dsn(dsn: str) -> tuple[str, str | None]:
    """Where the server is, for messages (never the password), and the password, to scrub it from them."""
    import psycopg

    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "an unparseable DSN", None
    host = str(info.get("host") or info.get("hostaddr") or "the local socket")
    port = f":{info['port']}" if info.get("port") else ""
    db = f"/{info['dbname']}" if info.get("dbname") else ""
    password = info.get("password")
    return f"{host}{port}{db}", str(password) if password else None


def ensure_schema(conn: psycopg.Connection[Any], spec: TableSpec) -> bool:
    """Create what is missing (the extension, the table, its HNSW, GIN and source indexes) and check what exists
    (columns, vector size, owning collection); returns whether pgvector scans HNSW iteratively (>= 0.8)."""
    from psycopg import errors, sql

    version_sql = "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    row = conn.execute(version_sql).fetchone()
    if row is None:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except (errors.FeatureNotSupported, errors.UndefinedFile) as e:
            raise StoreError(f"PostgreSQL at {spec.where} has no pgvector extension: install pgvector on the "
                             "server (https://github.com/pgvector/pgvector#installation)") from e
        except errors.InsufficientPrivilege as e:
            raise StoreError(f"PostgreSQL at {spec.where}: this user may not create the pgvector extension: "
                             "have a superuser run CREATE EXTENSION vector in this database") from e
        row = conn.execute(version_sql).fetchone()
    version = tuple(int(p) for p in re.findall(r"\d+", str(row[0] if row else ""))[:2])
    if version < (0, 5):
        raise StoreError(f"pgvector {row[0] if row else '?'} at {spec.where} has no HNSW index: "
                         "run ALTER EXTENSION vector UPDATE (pgvector >= 0.5 is needed)")
    iterative_scan = version >= (0, 8)

    t = sql.Identifier(spec.table)
    names = [index_name(spec.table, suffix) for suffix in ("embedding_hnsw", "tsv_gin", "source")]
    table_found, indexes_found = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL, bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) AS n",
        [t.as_string(conn), [sql.Identifier(n).as_string(conn) for n in names]],
    ).fetchone() or (False, False)
    if table_found:
        _check_table(conn, spec)
        _check_owner(conn, spec)
        if indexes_found:
            return iterative_scan
    # Only a missing table or index gets here: CREATE INDEX waits for other sessions' pending writes.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["mmrag:" + spec.table])
    conn.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, source text NOT NULL, kind text NOT NULL, "
        "page integer, mime_type text, payload jsonb NOT NULL, text text NOT NULL DEFAULT '', "
        "tsv tsvector GENERATED ALWAYS AS (to_tsvector({cfg}::regconfig, text)) STORED, "
        "embedding vector({d}) NOT NULL)"
    ).format(t=t, cfg=sql.Literal(TS_CONFIG), d=sql.Literal(spec.dimensions)))
    _check_table(conn, spec)  # another process may have created it first, with other dimensions
    _check_owner(conn, spec)
    hnsw, gin, source = (sql.Identifier(n) for n in names)
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} USING hnsw (embedding vector_cosine_ops) "
                         "WITH (m = {m}, ef_construction = {efc})").format(
        i=hnsw, t=t, m=sql.Literal(spec.m), efc=sql.Literal(spec.ef_construction)))
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} USING gin (tsv)").format(i=gin, t=t))
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (source)").format(i=source, t=t))
    logger.info("created table %s (or its missing indexes) on %s", spec.table, spec.where)
    return iterative_scan


def _check_table(conn: psycopg.Connection[Any], spec: TableSpec) -> None:
    from psycopg import sql

    columns = dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        [sql.Identifier(spec.table).as_string(conn)],
    ).fetchall())
    missing = _COLUMNS - set(columns)
    if missing:
        raise StoreError(f"table {spec.table} at {spec.where} exists but is not an mmrag index (no "
                         f"{', '.join(sorted(missing))} column): choose another table name")
    if columns["embedding"] != f"vector({spec.dimensions})":
        raise StoreError(f"table {spec.table} at {spec.where} holds {columns['embedding']} embeddings, but this "
                         f"index has {spec.dimensions} dimensions: use the embedding model the table was built "
                         "with, or another table (collection)")


def _check_owner(conn: psycopg.Connection[Any], spec: TableSpec) -> None:
    """Refuse a table that another collection owns; record this one as the owner of an unowned table."""
    from psycopg import sql

    if spec.owner is None:
        return
    t = sql.Identifier(spec.table)
    row = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [t.as_string(conn)]).fetchone()
    comment = str(row[0]) if row and row[0] else ""
    mark = _OWNER_MARK + spec.owner
    if comment.startswith(_OWNER_MARK):
        if comment != mark:
            other = comment[len(_OWNER_MARK):]
            raise StoreError(f"table {spec.table} at {spec.where} belongs to collection {other!r}, not "
                             f"{spec.owner!r}: refusing to mix their records (name collision from an older "
                             "mmrag?); use another collection name or another database")
        return
    conn.execute(sql.SQL("COMMENT ON TABLE {t} IS {c}").format(t=t, c=sql.Literal(mark)))
