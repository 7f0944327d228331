"""One picture, one element on the scale-out path: pgvector (embedded PostgreSQL) + S3 objects (moto server).

The places live in the manifest (the same sqlite file for every backend); what this adds over the FAISS unit
tests is the backend side: the page's records replacing the files' in pgvector, and, after removing the page,
the pictures indexed again from their files with the bytes read back from S3.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmrag.chains.ingestion import ingest
from mmrag.chains.upkeep import remove_sources
from mmrag.config import Settings
from mmrag.providers.cache import CachedCaptioner, CachedEmbeddings, CachedImageEmbedder, ModelCache
from mmrag.providers.factory import Providers
from mmrag.providers.local.local_caption import LocalCaptioner
from mmrag.providers.local.local_image import LocalImageEmbedder
from mmrag.providers.local.local_text import HashingEmbeddings
from mmrag.stores.collection import SpaceInfo, open_collection
from mmrag.testing.postgres import EmbeddedPostgres
from mmrag.testing.s3 import MotoS3Server

pytestmark = pytest.mark.integration

PAGE = "Two_002dDimensional-Plots.html"
FIGURES = ("errorbar.png", "hist.png", "plot.png", "polar.png")


def test_files_then_page_then_remove_the_page_on_pgvector_and_s3(postgres: EmbeddedPostgres, s3: MotoS3Server,
                                                                  tmp_path: Path, data_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    s3.client().create_bucket(Bucket="mmrag-dedup")
    folder = tmp_path / "octave"
    shutil.copytree(data_dir / "html" / "octave", folder)
    settings = Settings(home=tmp_path / "home", vector_store="pgvector", pg_dsn=postgres.dsn,  # type: ignore[arg-type]
                        s3_bucket="mmrag-dedup", s3_endpoint_url=s3.endpoint_url, aws_region="us-east-1",
                        collection="dedup")
    cache = ModelCache(settings.home / "cache" / "models.sqlite")
    image = LocalImageEmbedder()
    providers = Providers(CachedEmbeddings(HashingEmbeddings(), cache), CachedImageEmbedder(image, cache),
                          CachedCaptioner(LocalCaptioner(None), cache, "local-captioner-v1|ocr=none"), None, None, ())
    collection = open_collection(settings, text=SpaceInfo("hashing-384", 384),
                                 image=SpaceInfo(image.model_id, image.dimensions))
    files = [folder / f for f in FIGURES]
    assert ingest(files, settings, providers=providers, collection=collection).ok
    ids = sorted({i for f in files for i in collection.manifest.element_ids(str(f))})
    assert len(ids) == 4 and {e.source for e in collection.image.get(ids)} == {str(f) for f in files}
    page = ingest([folder / PAGE], settings, providers=providers, collection=collection)
    assert page.ok and page.elements["image"] == 4
    # The page's places won: the same four records, now with the page's figure captions; no second copy.
    assert collection.image.count() == 4
    records = collection.image.get(ids)
    assert {e.source for e in records} == {str(folder / PAGE)} and all("Figure" in e.text for e in records)
    assert {len(p) for p in collection.manifest.places(ids).values()} == {2}
    removed = remove_sources([str(folder / PAGE)], settings, collection=collection, providers=providers)
    assert removed[0]["shared"] == 4
    records = collection.image.get(ids)  # indexed again from the files, the bytes read back from S3
    assert len(records) == 4 and {e.source for e in records} == {str(f) for f in files}
    assert not any("Figure" in e.text for e in records) and collection.image.count() == 4
    assert not [h for h in collection.text.keyword_search("Figure 15.4 Polar plot", k=5) if h.id in ids]
    remove_sources([str(f) for f in files], settings, collection=collection, providers=providers)
    assert collection.image.count() == 0 and collection.manifest.places(ids) == {}
    listed = s3.client().list_objects_v2(Bucket="mmrag-dedup")
    assert not [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".png")]
