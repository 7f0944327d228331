"""The model cache in PostgreSQL, so that no machine pays twice for a caption, an OCR read or an embedding.

One table, ``mmrag_model_cache``, for every collection in the database: keys are content hashes of (kind, model
key, input), so entries are valid wherever the same input meets the same model. Used when the manifest is
shared (pgvector, or OpenSearch with ``MMRAG_PG_DSN``) unless ``MMRAG_CACHE_STORE=local``.

The table is created on the first write; reads of a database without it find nothing (and create nothing), so
``ask`` and ``search`` never write to the shared store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from mmrag.errors import StoreError
from mmrag.providers.cache import ModelCache
from mmrag.stores._pg_session import PgSession, require_psycopg

__all__ = ["TABLE", "PgModelCache"]

TABLE = "mmrag_model_cache"
_BATCH = 1000


class PgModelCache(ModelCache):
    """A :class:`~mmrag.providers.cache.ModelCache` whose entries live in PostgreSQL (``BYTEA`` values).

    Args:
        dsn: libpq connection string or URI (never shown in messages).
    """

    def __init__(self, dsn: str) -> None:  # noqa: D107 - no sqlite file: the parent's __init__ is not wanted
        require_psycopg("the shared model cache")
        self.session = PgSession(dsn)
        self.path = None  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._exists: bool | None = None

    @property
    def where(self) -> str:
        return f"PostgreSQL at {self.session.where} (table {TABLE})"

    def close(self) -> None:
        self.session.drop()

    def __len__(self) -> int:
        if not self._table_exists():
            return 0
        rows = self._run(f"SELECT count(*) FROM {TABLE}", ())
        return int(rows[0][0]) if rows else 0

    def _table_exists(self) -> bool:
        if not self._exists:
            rows = self._run("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
            self._exists = bool(rows and rows[0][0])
        return self._exists

    def _run(self, statement: str, params: Sequence[Any], *, many: Sequence[Sequence[Any]] | None = None
             ) -> list[tuple[Any, ...]]:
        import psycopg

        with self.session.lock:
            conn = self.session.connection()
            try:
                with conn.cursor() as cur:
                    if many is not None:
                        cur.executemany(statement, many)  # type: ignore[arg-type]
                        rows: list[tuple[Any, ...]] = []
                    else:
                        cur.execute(statement, params)  # type: ignore[arg-type]
                        rows = cur.fetchall() if cur.description else []
                conn.commit()
                return rows
            except psycopg.Error as e:
                self.session.rollback()
                raise StoreError(f"{self.where}: the model cache failed: {self.session.redact(e)}") from e

    def _get(self, keys: Sequence[str]) -> dict[str, Any]:
        unique = list(dict.fromkeys(keys))
        if not unique or not self._table_exists():
            return {}
        found: dict[str, Any] = {}
        for i in range(0, len(unique), _BATCH):
            part = unique[i : i + _BATCH]
            found.update((k, bytes(v)) for k, v in self._run(f"SELECT key, value FROM {TABLE} WHERE key = ANY(%s)",
                                                            (part,)))
        return found

    def _put(self, rows: Iterable[tuple[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if not self._table_exists():
            self._run(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, value BYTEA NOT NULL)", ())
            self._exists = True
        self._run(f"INSERT INTO {TABLE} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                  "SET value = EXCLUDED.value", (), many=rows)
