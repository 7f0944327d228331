"""One collection, many machines: two ``MMRAG_HOME``s against one PostgreSQL + pgvector database and one S3 bucket.

Each "machine" is the real CLI in its own process with its own ``MMRAG_HOME``; nothing but the database and the
bucket is shared. OCR is off to keep the runs short (it changes no code path here).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mmrag.stores._pgvector_sql import collection_table
from mmrag.stores.pg_manifest import manifest_table
from mmrag.testing.postgres import EmbeddedPostgres
from mmrag.testing.s3 import MotoS3Server

pytestmark = [pytest.mark.integration, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

BUCKET = "team-bucket"
DOCS = ["pdf/tabula-data.pdf", "pdf/octave-refcard-a4.pdf", "html/octave/Two_002dDimensional-Plots.html"]
LEASE = 5.0  # MMRAG_LEASE_SECONDS of the kill -9 test: the dead run's sources are taken over after 5 s, not 60


@pytest.fixture(scope="module")
def shared(postgres: EmbeddedPostgres, s3: MotoS3Server) -> dict[str, str]:
    s3.client().create_bucket(Bucket=BUCKET)
    return {**s3.environ(), "MMRAG_VECTOR_STORE": "pgvector", "MMRAG_PG_DSN": postgres.dsn,
            "MMRAG_S3_BUCKET": BUCKET, "MMRAG_AWS_REGION": "us-east-1", "MMRAG_OCR": "off"}


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> list[str]:
    """One copy of the documents for the module: no test changes them, each ingests into a collection of its own."""
    root = tmp_path_factory.mktemp("docs")
    out = []
    for rel in DOCS:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / rel, target)
        out.append(str(target))
    for png in (data_dir / "html/octave").glob("*.png"):
        shutil.copy(png, root / "html/octave" / png.name)
    return out


@pytest.fixture(scope="module")
def solo(shared: dict[str, str], docs: list[str], tmp_path_factory: pytest.TempPathFactory,
         postgres: EmbeddedPostgres, s3: MotoS3Server) -> dict[str, Any]:
    """What one ingest of ``docs`` on one machine makes (ids by source, object keys): the reference of the
    concurrent and kill -9 tests, ingested once for both."""
    machine(tmp_path_factory.mktemp("solo"), shared, "ingest", *docs, "-c", "solo")
    return {"ids": ids_of(postgres.dsn, "solo"), "keys": bucket_keys(s3, "solo")}


def machine(home: Path, shared: dict[str, str], *args: str, check: bool = True,
            background: bool = False) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    env.update(shared, MMRAG_HOME=str(home))
    cmd = [sys.executable, "-m", "mmrag", *args]
    if background:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def ids_of(dsn: str, collection: str) -> dict[str, set[str]]:
    """What the database holds: committed element ids by source, and the record ids of both vector tables."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT source, id FROM {manifest_table(collection, 'elements')}").fetchall()
        out: dict[str, set[str]] = {}
        for source, i in rows:
            out.setdefault(source, set()).add(i)
        for space in ("text", "image"):
            table = collection_table(collection, space)
            exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone() != (None,)
            out[f"<{space}>"] = {r[0] for r in conn.execute(f"SELECT id FROM {table}")} if exists else set()
        out["<pending>"] = {r[0] for r in conn.execute(f"SELECT id FROM {manifest_table(collection, 'pending')}")}
    return out


def bucket_keys(s3: MotoS3Server, collection: str) -> set[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"mmrag/{collection}/")
    return {o["Key"].rsplit("/", 1)[1] for page in pages for o in page.get("Contents", [])}


def referenced(dsn: str, collection: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0].rsplit("/", 1)[-1] for r in conn.execute(
            f"SELECT object_key FROM {manifest_table(collection, 'elements')} WHERE object_key IS NOT NULL")}


def test_a_collection_made_on_one_machine_is_used_from_another(shared: dict[str, str], docs: list[str],
                                                                 tmp_path: Path, postgres: EmbeddedPostgres,
                                                                 s3: MotoS3Server) -> None:
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine(a, shared, "ingest", *docs[:2], "-c", "team")
    listed = [json.loads(line) for line in machine(b, shared, "collections", "--json").stdout.splitlines()]
    team = next(c for c in listed if c["name"] == "team")
    assert team["shared"] and team["sources"] == 2 and team["vector_store"] == "pgvector"
    answer = json.loads(machine(b, shared, "ask", "What does the octave reference card cover?", "-c", "team",
                                "--json").stdout)
    assert answer["citations"] and any("octave-refcard" in c["source"] for c in answer["citations"])
    hits = machine(b, shared, "search", "plot", "-c", "team", "--json").stdout.splitlines()
    assert hits and all(json.loads(line)["source"] for line in hits)
    assert not (b / "team" / "manifest.sqlite").exists()  # machine B holds no collection state
    # B adds a document; A sees it, and re-ingesting on B what A ingested costs nothing.
    machine(b, shared, "ingest", docs[2], "-c", "team")
    again = json.loads(machine(b, shared, "ingest", *docs[:2], "-c", "team", "--json").stdout)
    assert [s["status"] for s in again["sources"]] == ["unchanged", "unchanged"]
    assert again["model_calls"]["new"] == 0
    sources = {s for s in ids_of(postgres.dsn, "team") if not s.startswith("<")}
    assert sources == set(docs)
    # Removing on A: B's next search no longer shows the source.
    machine(a, shared, "remove", docs[0], "-c", "team")
    held = ids_of(postgres.dsn, "team")
    assert docs[0] not in held and held["<text>"] == set().union(*(v for k, v in held.items() if not k.startswith("<")))

    # Deleting from B drops the collection everywhere: its tables and its objects.
    machine(b, shared, "collections", "delete", "team", "--yes")
    listed = [json.loads(line)["name"] for line in machine(a, shared, "collections", "--json").stdout.splitlines()]
    assert "team" not in listed
    with psycopg.connect(postgres.dsn) as conn:
        left = conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'mmrag\\_team\\_%'").fetchall()
    assert left == [] and bucket_keys(s3, "team") == set()


def test_read_only_commands_create_nothing_in_the_shared_store(shared: dict[str, str], tmp_path: Path,
                                                               postgres: EmbeddedPostgres) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        before = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    proc = machine(tmp_path / "c", shared, "ask", "anything?", "-c", "nobody", check=False)
    assert proc.returncode == 3 and "collection 'nobody' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and postgres.dsn.split(":")[2].split("@")[0] not in proc.stderr
    machine(tmp_path / "c", shared, "collections")
    with psycopg.connect(postgres.dsn) as conn:
        after = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert after == before


def test_two_machines_ingesting_overlapping_sources_at_once(shared: dict[str, str], docs: list[str], tmp_path: Path,
                                                            postgres: EmbeddedPostgres, s3: MotoS3Server,
                                                            solo: dict[str, Any]) -> None:
    expected = solo["ids"]
    first = machine(tmp_path / "a", shared, "ingest", *docs, "-c", "both", "--json", background=True)
    second = machine(tmp_path / "b", shared, "ingest", *reversed(docs), "-c", "both", "--json", background=True)
    for proc in (first, second):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    got = ids_of(postgres.dsn, "both")
    assert got == expected  # exactly the ids one ingest makes: no duplicate, no lost source
    assert bucket_keys(s3, "both") == referenced(postgres.dsn, "both") == solo["keys"]  # no orphan


def test_kill_9_of_one_machine_then_the_other_takes_over(shared: dict[str, str], docs: list[str], tmp_path: Path,
                                                         postgres: EmbeddedPostgres, s3: MotoS3Server,
                                                         solo: dict[str, Any]) -> None:
    expected = solo["ids"]
    short = {**shared, "MMRAG_LEASE_SECONDS": str(LEASE)}
    victim = machine(tmp_path / "a", short, "ingest", *docs, "-c", "crash", background=True)
    deadline, left = time.monotonic() + 300, None
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:  # kill it once it holds a lease mid-ingest
        while time.monotonic() < deadline and left is None:
            if conn.execute("SELECT to_regclass(%s)", [manifest_table("crash", "leases")]).fetchone() != (None,):
                left = conn.execute("SELECT extract(epoch FROM max(expires) - clock_timestamp()) FROM "
                                    f"{manifest_table('crash', 'leases')}").fetchone()[0]
            time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert left is not None and float(left) <= LEASE  # held for MMRAG_LEASE_SECONDS, not the default minute
    # The other machine's view is consistent at once: what it sees is committed, nothing else.
    seen = ids_of(postgres.dsn, "crash")
    committed = set().union(*(v for k, v in seen.items() if not k.startswith("<")))
    assert seen["<text>"] <= committed | seen["<pending>"]
    listed = machine(tmp_path / "b", shared, "search", "plot", "-c", "crash", "--json", check=False)
    assert listed.returncode in (0, 3)
    # B re-runs: it waits out the dead run's leases, takes the sources over and ends exactly where one ingest ends.
    began = time.monotonic()
    machine(tmp_path / "b", short, "ingest", *docs, "-c", "crash")
    assert time.monotonic() - began < 240
    got = ids_of(postgres.dsn, "crash")
    assert got == expected
    assert bucket_keys(s3, "crash") == referenced(postgres.dsn, "crash") == solo["keys"]


def test_a_local_manifest_is_migrated_once(shared: dict[str, str], docs: list[str], tmp_path: Path,
                                           postgres: EmbeddedPostgres) -> None:
    home = tmp_path / "old"
    old = {**shared, "MMRAG_VECTOR_STORE": "faiss"}  # a local manifest, as collections had before
    machine(home, old, "ingest", docs[0], "-c", "legacy")
    folder = home / "legacy"
    # Pretend it was a pgvector collection of an older mmrag: a local manifest that names pgvector.
    import sqlite3

    with sqlite3.connect(folder / "manifest.sqlite") as db:
        db.execute("UPDATE meta SET value = '\"pgvector\"' WHERE key = 'vector_store'")
    refused = machine(home, shared, "ask", "what?", "-c", "legacy", check=False)
    assert refused.returncode != 0 and "mmrag collections migrate legacy" in refused.stderr
    first = json.loads(machine(home, shared, "collections", "migrate", "legacy", "--json").stdout)
    assert first["copied"]["sources"] == 1 and first["copied"]["elements"] > 0
    assert (folder / "manifest.sqlite.migrated").is_file() and not (folder / "manifest.sqlite").exists()
    again = machine(home, shared, "collections", "migrate", "legacy")  # idempotent
    assert "already in the shared database: nothing to migrate" in again.stdout
    with psycopg.connect(postgres.dsn) as conn:
        n = conn.execute(f"SELECT count(*) FROM {manifest_table('legacy', 'elements')}").fetchone()[0]
    assert n == first["copied"]["elements"]
