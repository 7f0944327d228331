"""``mmrag collections migrate NAME``: move a collection's local sqlite manifest into the shared database.

Collections made with pgvector (or OpenSearch) before manifests were shared keep their manifest in
``MMRAG_HOME/<name>/manifest.sqlite``, where only that machine sees it. Migrating copies every row (meta,
sources, elements, claims, released keys, places) into the PostgreSQL manifest in one transaction, then renames
the local file to ``manifest.sqlite.migrated``. It is idempotent (rows already there are kept) and resumable: a
run that stops before its commit leaves nothing, and running it again copies everything.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError, NotFoundError, StoreError

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = ["migrate_collection"]

logger = logging.getLogger(__name__)

_COPY = {
    "meta": ("key, value", "ON CONFLICT (key) DO NOTHING"),
    "sources": ("source, fingerprint, elements, kinds, ingested_at", "ON CONFLICT (source) DO NOTHING"),
    "elements": ("source, id, kind, object_key", "ON CONFLICT (source, id) DO NOTHING"),
    "pending": ("source, id, object_key", "ON CONFLICT (source, id) DO NOTHING"),
    "released": ("object_key", "ON CONFLICT (object_key) DO NOTHING"),
    "places": ("id, source, seq, in_document, page, bbox, text, mime_type, object_key, metadata",
               "ON CONFLICT (id, source, seq) DO NOTHING"),
}


def migrate_collection(settings: Settings, name: str) -> dict[str, Any]:
    """Copy ``name``'s local manifest into the shared one; returns the rows copied per table.

    Raises:
        ConfigError: these settings keep manifests locally (FAISS): there is nothing to migrate to.
        NotFoundError: there is no local manifest of that name (already migrated, or never made here).
    """
    from mmrag.stores.collection import _session, collection_root, manifest_kind
    from mmrag.stores.pg_manifest import PgManifest

    if manifest_kind(settings) != "postgres":
        raise ConfigError("migrate moves a manifest into PostgreSQL: set MMRAG_VECTOR_STORE=pgvector (or opensearch "
                          "with MMRAG_PG_DSN) and MMRAG_PG_DSN first")
    path = collection_root(settings, name) / "manifest.sqlite"
    if not path.is_file():
        done = path.with_name("manifest.sqlite.migrated").is_file()
        raise NotFoundError(f"collection {name!r} has no local manifest at {path}"
                            + (" (it was migrated already)" if done else ""))
    rows = _read_local(path)
    session = _session(settings)
    manifest = PgManifest(session, name, create=True)
    copied: dict[str, int] = {}
    try:
        with manifest.atomic(), session.lock:
            conn = session.connection()
            for table, (columns, conflict) in _COPY.items():
                data = rows[table]
                marks = ", ".join(["%s"] * len(columns.split(",")))
                with conn.cursor() as cur:
                    cur.executemany(manifest._sql(  # noqa: SLF001 - the manifest's own table names
                        f"INSERT INTO {{{table}}} ({columns}) VALUES ({marks}) {conflict}"), data)
                copied[table] = len(data)
    finally:
        session.drop()
    path.rename(path.with_name("manifest.sqlite.migrated"))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    logger.info("migrated collection %s: %s", name, copied)
    return {"name": name, "copied": copied}


def _read_local(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot read the local manifest ({e})") from e
    try:
        out = {}
        for table, (columns, _) in _COPY.items():
            rows = db.execute(f"SELECT {columns} FROM {table}").fetchall()  # noqa: S608 - fixed names
            if table == "places":
                rows = [(*r[:6], r[6].replace("\x00", " "), *r[7:]) for r in rows]
            out[table] = rows
        return out
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot read the local manifest ({e})") from e
    finally:
        db.close()
