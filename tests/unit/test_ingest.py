"""Ingest on real documents with real local models, the embedded FAISS index and a local object folder.

Hashing embeddings and OCR-less captions keep these fast; the full offline default (MiniLM + OCR) runs in
tests/e2e. Model calls are counted by the real cache wrappers, as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.chains.ingestion import ingest
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.errors import ConfigError
from mmrag.providers.cache import CachedCaptioner, CachedEmbeddings, CachedImageEmbedder, ModelCache
from mmrag.providers.factory import Providers
from mmrag.providers.local.local_caption import LocalCaptioner
from mmrag.providers.local.local_image import LocalImageEmbedder
from mmrag.providers.local.local_text import HashingEmbeddings
from mmrag.stores.collection import Collection, SpaceInfo, open_collection

PDF = "pdf/tabula-data.pdf"
HTML = "html/octave/Two_002dDimensional-Plots.html"
IMAGE = "images/img_029.png"


def _providers(home: Path) -> Providers:
    cache = ModelCache(home / "cache" / "models.sqlite")
    return Providers(
        text_embeddings=CachedEmbeddings(HashingEmbeddings(), cache),
        image_embedder=CachedImageEmbedder(LocalImageEmbedder(), cache),
        captioner=CachedCaptioner(LocalCaptioner(None), cache, "local-captioner-v1|ocr=none"),
        fast_chat=None,
        strong_chat=None,
        roles=(),
    )


def _open(settings: Settings, providers: Providers) -> Collection:
    return open_collection(
        settings,
        text=SpaceInfo("hashing-384", 384),
        image=SpaceInfo(providers.image_embedder.model_id, providers.image_embedder.dimensions),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def docs(tmp_path: Path, data_dir: Path) -> Path:
    """A private copy of a few real documents (tests change some of them)."""
    root = tmp_path / "docs"
    for rel in (PDF, HTML, IMAGE):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / rel, root / rel)
    for png in (data_dir / "html/octave").glob("*.png"):  # the page's images, found by relative links
        shutil.copy(png, root / "html/octave" / png.name)
    return root


def _run(settings: Settings, sources: list[Path | str], **kwargs: object):  # type: ignore[no-untyped-def]
    providers = _providers(settings.home)
    collection = _open(settings, providers)
    report = ingest(sources, settings, providers=providers, collection=collection, **kwargs)  # type: ignore[arg-type]
    return report, collection


def test_first_ingest_indexes_every_element_in_both_spaces(settings: Settings, docs: Path) -> None:
    report, col = _run(settings, [docs / PDF, docs / HTML, docs / IMAGE])
    assert report.ok, report.to_dict()
    by_source = {Path(s.source).name: s for s in report.sources}
    assert [s.status for s in report.sources] == ["new"] * 3
    pdf = by_source["tabula-data.pdf"]
    assert pdf.elements == {"table": 4}  # the four data tables of the tabula sample
    html = by_source["Two_002dDimensional-Plots.html"]
    assert html.elements.get("image", 0) >= 3  # the page's plots, loaded through relative links
    total = sum(report.elements.values())
    visual = report.elements.get("image", 0) + report.elements.get("page", 0)
    assert col.text.count() == total
    assert col.image.count() == visual
    assert report.model_calls["new"] > 0 and report.model_calls["cached"] == 0
    assert report.estimated_cost_usd == 0.0  # local models
    # Raw objects live in the object store; elements keep the key and the same id as when parsed.
    hits = col.image.search([1.0] * col.image.dimensions, k=50)
    assert len(hits) == visual
    stored = hits[0].element
    assert stored.data is None and stored.object_key
    [blob] = col.objects.mget([stored.object_key])
    assert blob is not None and len(blob) > 100
    assert col.objects.uri(stored.object_key).startswith("file://")
    # Table CSV moved to the object store, markdown stays searchable.
    tables = col.text.keyword_search("table", k=50, filter={"kind": "table"})
    assert tables and all(t.element.object_key for t in tables)
    assert all("csv" not in t.element.metadata for t in tables)


def test_reingest_unchanged_does_no_model_calls_and_no_writes(settings: Settings, docs: Path) -> None:
    _run(settings, [docs])
    files = {p: p.stat().st_mtime_ns for p in (settings.home / "default").rglob("*") if p.is_file()}
    report, col = _run(settings, [docs])
    assert report.ok and {s.status for s in report.sources} == {"unchanged"}
    assert report.model_calls["new"] == 0 and report.model_calls["cached"] == 0
    changed = [p for p, m in files.items() if p.exists() and p.stat().st_mtime_ns != m
               and not p.name.endswith(("-wal", "-shm"))]
    assert changed == []
    assert col.text.count() == sum(report.elements.values())


def test_changed_source_replaces_its_elements_without_duplicates(settings: Settings, docs: Path) -> None:
    page = docs / HTML
    _run(settings, [page])
    html = page.read_text(encoding="utf-8")
    marker = "zanzibarquux"
    page.write_text(html.replace("<body", f"<body><p>{marker} appears in the new version.</p><!-- -->", 1)
                    .replace("plot", "graph", 3), encoding="utf-8")
    report, col = _run(settings, [page])
    [s] = report.sources
    assert s.status == "updated" and s.added >= 1 and s.removed >= 1
    assert col.text.count() == sum(s.elements.values())
    ids = set(col.manifest.element_ids(s.source))
    assert {h.id for h in col.text.search([1.0] * 384, k=1000)} == {i for i in ids if col.text.get([i])}
    assert [h.element.source for h in col.text.keyword_search(marker, k=5)] == [s.source]
    # Unchanged images were not embedded again: only the changed text went to the models.
    assert report.model_calls["by_role"].get("image embeddings", {}).get("new", 0) == 0


def test_bad_sources_fail_alone_with_their_reason(settings: Settings, docs: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    report, col = _run(settings, [broken, docs / PDF, tmp_path / "missing.pdf"])
    assert not report.ok
    status = {Path(s.source).name: s for s in report.sources}
    assert status["broken.pdf"].status == "failed" and status["broken.pdf"].error
    assert status["missing.pdf"].status == "failed" and "no such file" in (status["missing.pdf"].error or "")
    assert status["tabula-data.pdf"].status == "new"
    assert [e.source for e in col.manifest.sources()] == [status["tabula-data.pdf"].source]
    assert col.text.count() == sum(status["tabula-data.pdf"].elements.values())


def test_force_reprocesses_from_the_cache(settings: Settings, docs: Path) -> None:
    first, _ = _run(settings, [docs / PDF])
    again, col = _run(settings, [docs / PDF], force=True)
    assert again.sources[0].status == "updated"
    assert again.model_calls["new"] == 0 and again.model_calls["cached"] == first.model_calls["new"]
    assert col.text.count() == sum(first.elements.values())


def test_collection_refuses_vectors_from_another_model(settings: Settings, docs: Path) -> None:
    _run(settings, [docs / IMAGE])
    with pytest.raises(ConfigError, match="text model 'hashing-384', not 'other-model'"):
        open_collection(settings, text=SpaceInfo("other-model", 384), image=SpaceInfo("x", 8))


_CRASH_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from unit.test_ingest import _open, _providers
    from mmrag.chains.ingestion import ingest
    from mmrag.config import Settings

    settings = Settings(home=Path({home!r}))
    providers = _providers(settings.home)
    slow = providers.text_embeddings
    inner = slow.inner.embed_documents

    def embed_slowly(texts):  # a slow model: gives the test time to kill the run mid-way
        time.sleep(0.3)
        return inner(texts)

    slow.inner.embed_documents = embed_slowly
    ingest(sys.argv[1:], settings, providers=providers, collection=_open(settings, providers), batch_size=1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_ingest_resumes_to_a_complete_consistent_collection(settings: Settings, data_dir: Path,
                                                                   tmp_path: Path) -> None:
    sources = [str(p) for p in sorted((data_dir / "html/octave").glob("*.png"))] + [str(data_dir / PDF),
                                                                                      str(data_dir / HTML)]
    script = _CRASH_SCRIPT.format(tests=str(Path(__file__).parents[1]), home=str(settings.home))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script, *sources], env=env)
    manifest_path = settings.home / "default" / "manifest.sqlite"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if manifest_path.exists() and proc.poll() is None:
                import sqlite3

                try:
                    with sqlite3.connect(manifest_path) as db:
                        done = db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
                except sqlite3.OperationalError:  # the manifest's tables are being created
                    done = 0
                if done >= 2:
                    break
            assert proc.poll() is None, "the ingest finished before it could be killed: make it slower"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    report, col = _run(settings, sources)
    assert report.ok
    statuses = [s.status for s in report.sources]
    assert "unchanged" in statuses and ("new" in statuses or "updated" in statuses)
    committed = {i for e in col.manifest.sources() for i in col.manifest.element_ids(e.source)}
    assert len(col.manifest.sources()) == len(sources)
    in_text = {h.id for h in col.text.search([1.0] * 384, k=10_000)}
    assert in_text <= committed and col.text.count() == len(in_text)  # no orphans, no duplicates
    assert col.image.count() == report.elements.get("image", 0) + report.elements.get("page", 0)
    assert not any(col.manifest.pending_ids(s) for s in sources)


def test_cli_ingest_json_then_unchanged_then_collections(tmp_path: Path, docs: Path) -> None:
    runner = CliRunner()
    env = {"MMRAG_HOME": str(tmp_path / "clihome"), "MMRAG_OCR": "off"}
    first = runner.invoke(cli, ["ingest", str(docs / IMAGE), "--collection", "pics", "--json"], env=env)
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["collection"] == "pics" and out["sources"][0]["status"] == "new"
    assert out["elements"] == {"image": 1} and set(out["model_calls"]) >= {"new", "cached"}
    second = runner.invoke(cli, ["ingest", str(docs / IMAGE), "-c", "pics", "--json"], env=env)
    again = json.loads(second.stdout)
    assert again["sources"][0]["status"] == "unchanged" and again["model_calls"]["new"] == 0
    listed = runner.invoke(cli, ["collections", "--json"], env=env)
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["name"] == "pics" and row["sources"] == 1 and row["elements"] == {"image": 1}
    bad = runner.invoke(cli, ["ingest", str(tmp_path / "nope.pdf"), "-c", "pics"], env=env)
    assert bad.exit_code == 3 and f"nothing to ingest ({tmp_path / 'nope.pdf'}: no such file)" in bad.stderr
    nowhere = runner.invoke(cli, ["ingest", str(tmp_path / "nope.pdf"), str(tmp_path / "no*.pdf"), "-c", "new"],
                            env=env)
    assert nowhere.exit_code == 3 and "the pattern matches no files" in nowhere.stderr
    assert not (tmp_path / "clihome" / "new").exists()  # nothing to read: no collection created
    mixed = runner.invoke(cli, ["ingest", str(docs / IMAGE), str(tmp_path / "nope.pdf"), "-c", "pics", "--json"],
                          env=env)
    assert mixed.exit_code == 1  # one source to read: the missing one fails in the report, the other goes on
    statuses = {Path(s["source"]).name: s["status"] for s in json.loads(mixed.stdout)["sources"]}
    assert statuses == {Path(IMAGE).name: "unchanged", "nope.pdf": "failed"}
    gone = runner.invoke(cli, ["collections", "delete", "pics", "--yes"], env=env)
    assert gone.exit_code == 0 and not (tmp_path / "clihome" / "pics").exists()
    missing = runner.invoke(cli, ["collections", "delete", "pics", "--yes"], env=env)
    assert missing.exit_code == 3 and "collection 'pics' does not exist" in missing.output


def test_cli_search_image_to_image_and_text_to_image(tmp_path: Path, data_dir: Path, i2i_queries: Path) -> None:
    env = {"MMRAG_HOME": str(tmp_path / "s"), "MMRAG_OCR": "off"}
    runner = CliRunner()
    gallery = data_dir / "i2i" / "gallery"
    assert runner.invoke(cli, ["ingest", str(gallery), "--json"], env=env).exit_code == 0
    # q01 is a JPEG crop of img_002 (the cat): image→image must rank img_002 first.
    found = runner.invoke(cli, ["search", "--image", str(i2i_queries / "q01_crop.jpg"), "--json", "-k", "3"],
                          env=env)
    assert found.exit_code == 0, found.output
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert len(rows) == 3 and Path(rows[0]["source"]).name == "img_002.jpg" and rows[0]["object_uri"]
    assert rows[0]["score"] >= rows[1]["score"]
    # Text→image offline goes through the text around each image: the octave page's histogram figure.
    page = data_dir / "html/octave/Two_002dDimensional-Plots.html"
    assert runner.invoke(cli, ["ingest", str(page), "--json"], env=env).exit_code == 0
    text = runner.invoke(cli, ["search", "histogram", "--images", "--json", "-k", "4"], env=env)
    rows = [json.loads(r) for r in text.stdout.splitlines()]
    assert text.exit_code == 0 and rows and {r["kind"] for r in rows} == {"image"}
    assert rows[0]["src"].endswith("hist.png")
    both = runner.invoke(cli, ["search", "cat", "--image", str(gallery / "img_002.jpg")], env=env)
    assert both.exit_code == 2 and "either a text QUERY or --image" in both.output
