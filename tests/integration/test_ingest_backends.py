"""Ingest and query through the scale-out backends, wired from Settings exactly as users configure them:
pgvector (embedded PostgreSQL) + S3 objects (moto server), and OpenSearch (osmem-server)."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mmrag.chains.ingestion import ingest
from mmrag.chains.query import QueryOptions, build_query_chain
from mmrag.config import Settings
from mmrag.providers.cache import CachedCaptioner, CachedEmbeddings, CachedImageEmbedder, ModelCache
from mmrag.providers.factory import Providers
from mmrag.providers.local.local_caption import LocalCaptioner
from mmrag.providers.local.local_image import LocalImageEmbedder
from mmrag.providers.local.local_text import HashingEmbeddings
from mmrag.stores.collection import SpaceInfo, delete_collection, list_collections, open_collection
from mmrag.testing.postgres import EmbeddedPostgres
from mmrag.testing.s3 import MotoS3Server

pytestmark = pytest.mark.integration

HTML = "html/octave/Two_002dDimensional-Plots.html"
PDF = "pdf/tabula-data.pdf"


def _providers(home: Path) -> Providers:
    cache = ModelCache(home / "cache" / "models.sqlite")
    return Providers(CachedEmbeddings(HashingEmbeddings(), cache), CachedImageEmbedder(LocalImageEmbedder(), cache),
                     CachedCaptioner(LocalCaptioner(None), cache, "local-captioner-v1|ocr=none"), None, None, ())


def _open(settings: Settings, providers: Providers) -> Any:
    image = providers.image_embedder
    return open_collection(settings, text=SpaceInfo("hashing-384", 384), image=SpaceInfo(image.model_id,
                                                                                        image.dimensions))


def test_pgvector_and_s3_ingest_query_reingest_delete(postgres: EmbeddedPostgres, s3: MotoS3Server,
                                                      tmp_path: Path, data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    s3.client().create_bucket(Bucket="mmrag-test")
    settings = Settings(home=tmp_path / "home", vector_store="pgvector", pg_dsn=postgres.dsn,  # type: ignore[arg-type]
                        s3_bucket="mmrag-test", s3_endpoint_url=s3.endpoint_url, aws_region="us-east-1",
                        collection="pg-s3")
    providers = _providers(settings.home)
    collection = _open(settings, providers)
    report = ingest([data_dir / HTML, data_dir / PDF], settings, providers=providers, collection=collection)
    assert report.ok, report.to_dict()
    assert collection.text.count() == sum(report.elements.values())
    assert collection.image.count() == report.elements["image"] == 4
    # Objects are in the bucket under the collection's prefix, and citations link to them with presigned URLs.
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="mmrag-test")["Contents"]]
    assert keys and all(k.startswith("mmrag/pg-s3/") for k in keys)
    answer = build_query_chain(providers=providers, collection=collection,
                               options=QueryOptions(decompose=False)).invoke("What is the hp of the Mazda RX4?")
    assert any(Path(c.source).name == "tabula-data.pdf" and c.page == 1 for c in answer.citations)
    table = next(c for c in answer.citations if c.kind == "table")
    assert table.object_uri and table.object_uri.startswith(s3.endpoint_url) and "Signature" in table.object_uri
    with urllib.request.urlopen(table.object_uri, timeout=10) as resp:  # the presigned link opens: the CSV
        assert b"Mazda RX4" in resp.read()
    again = ingest([data_dir / HTML, data_dir / PDF], settings, providers=providers, collection=collection)
    assert {s.status for s in again.sources} == {"unchanged"} and again.model_calls["new"] == 0
    [listed] = list_collections(settings)
    assert listed["name"] == "pg-s3" and listed["vector_store"] == "pgvector"
    delete_collection(settings, "pg-s3")
    assert "Contents" not in s3.client().list_objects_v2(Bucket="mmrag-test")
    fresh = _open(settings, providers)  # the tables are empty again
    assert fresh.text.count() == 0 and fresh.image.count() == 0


def test_opensearch_ingest_is_idempotent_and_keyword_searchable(tmp_path: Path, data_dir: Path) -> None:
    osmem_server = pytest.importorskip("osmem_server")
    server = osmem_server.OsmemServer.start(japanese=False)
    try:
        settings = Settings(home=tmp_path / "home", vector_store="opensearch", opensearch_url=server.url,
                            opensearch_auth="none", collection="os")
        providers = _providers(settings.home)
        collection = _open(settings, providers)
        report = ingest([data_dir / PDF], settings, providers=providers, collection=collection)
        assert report.ok and collection.text.count() == report.elements["table"] == 4
        hits = collection.text.keyword_search("Mazda RX4", k=3)
        assert hits and Path(hits[0].element.source).name == "tabula-data.pdf" and hits[0].element.page == 1
        again = ingest([data_dir / PDF], settings, providers=providers, collection=collection)
        assert again.sources[0].status == "unchanged" and collection.text.count() == 4
        delete_collection(settings, "os")
        assert _open(settings, providers).text.count() == 0
    finally:
        server.close()
