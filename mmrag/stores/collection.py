"""A collection: two vector spaces, an object store and a manifest, opened from Settings.

Where things live (``MMRAG_HOME`` defaults to ``./.mmrag``)::

    MMRAG_HOME/<collection>/manifest.sqlite   sources, element ids, models and dimensions (FAISS)
    MMRAG_HOME/<collection>/text/, image/     the FAISS indexes (vector_store=faiss)
    MMRAG_HOME/<collection>/objects/          raw objects (unless MMRAG_S3_BUCKET is set)

With pgvector (and with OpenSearch when ``MMRAG_PG_DSN`` is set next to it) the manifest is in PostgreSQL
(:mod:`mmrag.stores.pg_manifest`), so a collection is one shared thing: any machine whose settings point at the
same database (and bucket) lists, searches and ingests into it, with nothing under its ``MMRAG_HOME`` but caches.

With OpenSearch the spaces are the indexes ``mmrag-<collection>-text`` and ``-image``; with pgvector the
tables ``mmrag_<collection>_text`` and ``_image`` (a name with ``-`` gets a hash: see
:func:`~mmrag.stores.pgvector.collection_table`); S3 objects go under ``<prefix><collection>/``. Every one of
these maps different collection names to different names (collection names have no ``/``, and OpenSearch
keeps ``-`` and ``_`` apart), so two collections never share an index, a table or a prefix.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mmrag.errors import ConfigError, NotFoundError
from mmrag.stores.base import Space, VectorIndex
from mmrag.stores.committed import CommittedView
from mmrag.stores.manifest import Manifest, ManifestStore

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.stores._pg_session import PgSession

__all__ = [
    "Collection", "ObjectStore", "SpaceInfo", "delete_collection", "list_collections", "open_collection",
    "require_collection",
]

logger = logging.getLogger(__name__)

RESERVED = frozenset({"cache", "objects", "tmp"})


class ObjectStore(Protocol):
    """``BaseStore[str, bytes]`` plus content-addressed ``put`` and an openable ``uri`` per key."""

    def put(self, data: bytes, mime_type: str | None) -> str: ...

    def uri(self, key: str) -> str: ...

    def mget(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def mdelete(self, keys: Sequence[str]) -> None: ...

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]: ...


@dataclass(frozen=True, slots=True)
class SpaceInfo:
    """Which model fills a space, and its vector length. A collection never mixes models."""

    model: str
    dimensions: int


@dataclass(frozen=True)
class Collection:
    """Everything one collection is made of. Open it with :func:`open_collection`.

    ``text`` and ``image`` are :class:`~mmrag.stores.committed.CommittedView` s of the backend indexes: their
    searches never return an element whose source was not committed.
    """

    name: str
    text: VectorIndex
    image: VectorIndex
    objects: ObjectStore
    manifest: ManifestStore
    backend: str
    root: Path | None = None
    """This machine's folder for the collection (``MMRAG_HOME/<name>``: FAISS files, local caches)."""

    def index(self, space: Space) -> VectorIndex:
        return self.text if space == "text" else self.image


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name) or name in RESERVED:
        raise ConfigError(
            f"collection name {name!r} is not allowed: use lowercase letters, digits, - and _ "
            f"(not {', '.join(sorted(RESERVED))})"
        )


def collection_root(settings: Settings, name: str | None = None) -> Path:
    name = name or settings.collection
    _check_name(name)
    return Path(settings.home) / name


def manifest_kind(settings: Settings) -> str:
    """``postgres`` when the manifest is shared (pgvector, or OpenSearch with ``MMRAG_PG_DSN``), else ``sqlite``;
    ``MMRAG_MANIFEST`` overrides it (``sqlite`` keeps a pgvector collection's manifest on this machine only)."""
    if settings.manifest != "auto":
        return settings.manifest
    if settings.vector_store == "pgvector" or (settings.vector_store == "opensearch" and settings.pg_dsn):
        return "postgres"
    return "sqlite"


def _session(settings: Settings) -> PgSession:
    from mmrag.stores._pg_session import PgSession, require_psycopg

    require_psycopg(f"MMRAG_VECTOR_STORE={settings.vector_store} (its shared manifest in PostgreSQL)")

    if settings.pg_dsn is None:
        raise ConfigError("MMRAG_VECTOR_STORE=pgvector needs MMRAG_PG_DSN (postgresql://user:password@host/db)")
    return PgSession(settings.pg_dsn.get_secret_value())


def local_names(settings: Settings) -> list[str]:
    """Collections with a sqlite manifest under ``MMRAG_HOME``, sorted; creates nothing."""
    home = Path(settings.home)
    if not home.is_dir():
        return []
    return sorted(p.name for p in home.iterdir() if (p / "manifest.sqlite").is_file())


def collection_names(settings: Settings) -> list[str]:
    """The collections these settings can see (under ``MMRAG_HOME``, or in the shared database), sorted;
    creates nothing."""
    if manifest_kind(settings) == "sqlite":
        return local_names(settings)
    from mmrag.stores.pg_manifest import pg_collection_names

    session = _session(settings)
    try:
        return pg_collection_names(session)
    finally:
        session.drop()


def open_manifest(settings: Settings, name: str, *, create: bool = False,
                  session: PgSession | None = None) -> ManifestStore:
    """The manifest of collection ``name`` where these settings keep it.

    Raises:
        ConfigError: a shared-store collection still has only its old local manifest (migrate it first).
        NotFoundError: ``create`` is false and there is no such collection.
    """
    root = collection_root(settings, name)
    if manifest_kind(settings) == "sqlite":
        if not create and not (root / "manifest.sqlite").is_file():
            require_collection(settings, name)
        return Manifest(root / "manifest.sqlite")
    from mmrag.stores.pg_manifest import PgManifest, pg_collection_names

    session = session or _session(settings)
    if (root / "manifest.sqlite").is_file() and name not in pg_collection_names(session):
        raise _migrate_first(root / "manifest.sqlite", name)
    manifest = PgManifest(session, name, create=create)
    manifest.meta()  # connect now: a missing or damaged manifest fails here, with its reason
    return manifest


def _migrate_first(where: Path, name: str) -> ConfigError:
    """A shared-store collection that still has only its pre-shared local manifest."""
    return ConfigError(f"collection {name!r} has a local manifest ({where}) from before shared manifests: run "
                       f"`mmrag collections migrate {name}` once to move it into PostgreSQL, so that every machine "
                       "sees it")


def require_collection(settings: Settings, name: str | None = None) -> str:
    """The collection's name if it exists; otherwise :class:`NotFoundError` with the known names and the
    closest match. Read-only commands call this first so that they never create a collection.

    Raises:
        NotFoundError: there is no such collection.
    """
    import difflib

    name = name or settings.collection
    _check_name(name)
    known = collection_names(settings)
    if name in known:
        return name
    if manifest_kind(settings) == "postgres" and name in local_names(settings):
        raise _migrate_first(collection_root(settings, name), name)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(known) if known else "none yet: run `mmrag ingest SOURCE...` to create one"
    raise NotFoundError(f"collection {name!r} does not exist (known: {listed}){hint}")


def open_collection(
    settings: Settings, *, text: SpaceInfo, image: SpaceInfo, name: str | None = None, create: bool = True
) -> Collection:
    """Open (or, with ``create``, create) a collection for vectors from these models; refuses a collection built
    with others.

    Raises:
        ConfigError: the collection was filled by other models or dimensions, or a backend is misconfigured.
        NotFoundError: ``create`` is false and there is no such collection.
    """
    name = name or settings.collection
    root = collection_root(settings, name)
    session = _session(settings) if manifest_kind(settings) == "postgres" else None
    if session is not None and create and not settings.s3_bucket:
        logger.warning("collection %r is shared through PostgreSQL, but its objects (images, tables, page renders) "
                       "stay in %s on this machine: set MMRAG_S3_BUCKET so that other machines can open them",
                       name, root / "objects")
    manifest = open_manifest(settings, name, create=create, session=session)
    _check_models(manifest, name, settings.vector_store, {"text": text, "image": image})
    text_index = CommittedView(_vector_index(settings, name, root, "text", text.dimensions, session), manifest)
    image_index = CommittedView(_vector_index(settings, name, root, "image", image.dimensions, session), manifest)
    return Collection(name, text_index, image_index, _object_store(settings, name, root), manifest,
                      settings.vector_store, root)


def _check_models(manifest: ManifestStore, name: str, backend: str, spaces: Mapping[str, SpaceInfo]) -> None:
    meta = manifest.meta()
    wanted: dict[str, str | int] = {f"{space}_model": info.model for space, info in spaces.items()}
    wanted |= {f"{space}_dimensions": info.dimensions for space, info in spaces.items()}
    if not meta:
        manifest.set_meta({**wanted, "vector_store": backend})
        return
    if meta.get("vector_store", backend) != backend:
        raise ConfigError(
            f"collection {name!r} lives in {meta['vector_store']}, not {backend}: set MMRAG_VECTOR_STORE="
            f"{meta['vector_store']} or use another --collection"
        )
    for key, value in wanted.items():
        if meta.get(key) != value:
            raise ConfigError(
                f"collection {name!r} was built with {key.replace('_', ' ')} {meta.get(key)!r}, not {value!r}: "
                "use another --collection, or delete it with `mmrag collections delete "
                f"{name}` and ingest again"
            )


def opensearch_index(name: str, space: str) -> str:
    """The OpenSearch index of one space of one collection (names are kept verbatim: injective)."""
    return f"mmrag-{name}-{space}"


def s3_collection_prefix(prefix: str, name: str) -> str:
    """The S3 key prefix of one collection's objects (a collection name has no ``/``: injective)."""
    return f"{prefix}{name}/"


def _vector_index(settings: Settings, name: str, root: Path, space: str, dims: int,
                  session: PgSession | None = None) -> VectorIndex:
    if settings.vector_store == "faiss":
        from mmrag.stores.faiss import FaissIndex

        return FaissIndex(root / space, dims, hnsw_threshold=settings.hnsw_threshold)
    if settings.vector_store == "opensearch":
        from mmrag.stores.opensearch import OpenSearchIndex, connect

        if not settings.opensearch_url:
            raise ConfigError("MMRAG_VECTOR_STORE=opensearch needs MMRAG_OPENSEARCH_URL")
        client = connect(
            settings.opensearch_url,
            auth=settings.opensearch_auth,
            user=settings.opensearch_user,
            password=settings.opensearch_password.get_secret_value() if settings.opensearch_password else None,
            region=settings.aws_region,
            profile=settings.aws_profile,
            service=settings.opensearch_service,
            verify_certs=settings.opensearch_verify_certs,
        )
        return OpenSearchIndex(client, opensearch_index(name, space), dims,
                               refresh=settings.opensearch_service != "aoss")
    from mmrag.stores.pgvector import PgVectorIndex, collection_table

    if settings.pg_dsn is None:
        raise ConfigError("MMRAG_VECTOR_STORE=pgvector needs MMRAG_PG_DSN (postgresql://user:password@host/db)")
    return PgVectorIndex(settings.pg_dsn.get_secret_value(), collection_table(name, space), dims, owner=name,
                         session=session)


def _object_store(settings: Settings, name: str, root: Path) -> ObjectStore:
    if settings.s3_bucket:
        from mmrag.stores.s3 import S3ObjectStore

        return S3ObjectStore(
            settings.s3_bucket,
            s3_collection_prefix(settings.s3_prefix, name),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region,
            profile=settings.aws_profile,
            presign_expiry=settings.presign_expiry,
        )
    from mmrag.stores.objects import LocalObjectStore

    return LocalObjectStore(root / "objects")


def list_collections(settings: Settings) -> list[dict[str, Any]]:
    """Every collection these settings see: name, backend, models, sources, elements by kind, bytes on disk
    (``None`` for a collection in a shared database), and whether its manifest is ``shared``."""
    out: list[dict[str, Any]] = []
    shared = manifest_kind(settings) == "postgres"
    names = collection_names(settings) if shared else []
    session = _session(settings) if shared else None
    try:
        for name in names:
            out.append(_describe(name, open_manifest(settings, name, session=session), None, shared=True))
        for name in local_names(settings):
            if name in names:
                continue
            folder = Path(settings.home) / name
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            out.append(_describe(name, Manifest(folder / "manifest.sqlite"), size, shared=False))
    finally:
        if session is not None:
            session.drop()
    return sorted(out, key=lambda c: c["name"])


def _describe(name: str, manifest: ManifestStore, size: int | None, *, shared: bool) -> dict[str, Any]:
    try:
        meta = manifest.meta()
        return {
            "name": name,
            "vector_store": meta.get("vector_store", "faiss"),
            "text_model": meta.get("text_model"),
            "image_model": meta.get("image_model"),
            "sources": len(manifest.sources()),
            "elements": dict(sorted(manifest.totals().items())),
            "bytes": size,
            "shared": shared,
        }
    finally:
        if not shared:
            manifest.close()


def delete_collection(settings: Settings, name: str) -> dict[str, Any]:
    """Delete a collection: its vectors (in whichever backend), its objects, its manifest and its folder.

    Raises:
        NotFoundError: there is no such collection.
    """
    root = collection_root(settings, name)
    require_collection(settings, name)
    if manifest_kind(settings) == "postgres" and name in collection_names(settings):
        return _delete_shared(settings, name, root)
    manifest = Manifest(root / "manifest.sqlite")
    try:
        meta = manifest.meta()
        sources = manifest.sources()
        if meta.get("vector_store", "faiss") != "faiss" or settings.s3_bucket:
            # Remote backends keep data outside the folder: delete it there first, element by element.
            backend = settings.model_copy(update={"vector_store": meta.get("vector_store", "faiss")})
            for space in ("text", "image"):
                index = _vector_index(backend, name, root, space, int(meta[f"{space}_dimensions"]))
                for entry in sources:
                    index.delete(sorted(manifest.element_ids(entry.source) | manifest.pending_ids(entry.source)))
                index.persist()
            if settings.s3_bucket:
                _object_store(settings, name, root).mdelete(sorted(manifest.object_keys()))
    finally:
        manifest.close()
    shutil.rmtree(root)
    logger.info("deleted collection %s (%d sources)", name, len(sources))
    return {"name": name, "sources": len(sources)}


def _delete_shared(settings: Settings, name: str, root: Path) -> dict[str, Any]:
    """Objects first (a crash leaves a collection missing objects, which a re-ingest restores), then the vector
    tables (pgvector) or records (OpenSearch) and the manifest's tables in one transaction."""
    from mmrag.stores.pg_manifest import PgManifest

    session = _session(settings)
    manifest = PgManifest(session, name)
    try:
        with manifest.writers(exclusive=True):
            meta = manifest.meta()
            sources = manifest.sources()
            if settings.s3_bucket:
                _object_store(settings, name, root).mdelete(sorted(manifest.referenced_keys()))
            with manifest.atomic():
                for space in ("text", "image"):
                    index = _vector_index(settings.model_copy(update={"vector_store": meta.get("vector_store")}),
                                          name, root, space, int(meta[f"{space}_dimensions"]), session)
                    drop = getattr(index, "drop_table", None)
                    if callable(drop):
                        drop()
                        continue
                    for entry in sources:
                        index.delete(sorted(manifest.element_ids(entry.source) | manifest.pending_ids(entry.source)))
                    index.persist()
                manifest.drop()
    finally:
        session.drop()
    if root.is_dir():
        shutil.rmtree(root)
    logger.info("deleted collection %s (%d sources)", name, len(sources))
    return {"name": name, "sources": len(sources)}
