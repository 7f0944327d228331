"""What a shared manifest costs: sqlite under MMRAG_HOME vs PostgreSQL, per source and for a real ingest.

    python bench/shared_manifest.py [--sources 1000] [--data tests/data] [--ocr off] [--skip-ingest]

Part 1, the manifest alone: for each of ``--sources`` small sources, the calls one ingest makes for a new source
(acquire its lease, read its entry and claims, claim 4 ids, commit 4 elements; inside ``atomic`` like the write
stage) on a fresh sqlite manifest and on a fresh PostgreSQL manifest (embedded PostgreSQL on 127.0.0.1, started
here). Prints milliseconds per source for both and the difference (goal: a shared commit adds <= 5 ms a source),
and the manifest calls and PostgreSQL transactions per source (counted by the server, ``pg_stat_database``).

Part 2, ingest: the sample (``--data``) ingested with the local profile into pgvector twice, in fresh
collections of one database: with ``MMRAG_MANIFEST=sqlite`` (the old, single-machine manifest) and with the
shared PostgreSQL manifest, alternating order over two rounds, best of each. Goal: shared / local <= 1.1.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def manifest_round(manifest: Any, n: int, tag: str) -> float:
    began = time.perf_counter()
    for i in range(n):
        source = f"/docs/{tag}/file-{i}.pdf"
        assert manifest.acquire(source, "bench", 60.0)
        manifest.get(source)
        manifest.pending_ids(source)
        ids = [(f"{tag}-{i}-{j}", f"key-{i}-{j}" if j == 0 else None) for j in range(4)]
        manifest.claim(source, ids)
        with manifest.atomic():
            manifest.commit(source, f"fp-{i}", [(e, "image" if k else "text", k) for e, k in ids])
    return (time.perf_counter() - began) / n


def part_manifest(n: int, dsn: str, home: Path) -> dict[str, Any]:
    import psycopg

    from mmrag.stores._manifest_sqlite import SqliteManifest
    from mmrag.stores._pg_session import PgSession
    from mmrag.stores.pg_manifest import PgManifest

    sqlite = SqliteManifest(home / "bench" / "manifest.sqlite")
    session = PgSession(dsn)
    pg = PgManifest(session, "bench-manifest", create=True)
    pg.meta()
    manifest_round(sqlite, 20, "warm")
    manifest_round(pg, 20, "warm")
    with psycopg.connect(dsn, autocommit=True) as conn:
        def calls() -> int:
            row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                               "WHERE datname = current_database()").fetchone()
            return int(row[0]) if row else 0
        conn.execute("SELECT pg_stat_clear_snapshot()")
        before = calls()
        pg_ms = manifest_round(pg, n, "pg") * 1000
        time.sleep(0.6)  # statistics are flushed by the server at most every 500 ms
        conn.execute("SELECT pg_stat_clear_snapshot()")
        transactions = (calls() - before) / n
    sqlite_ms = manifest_round(sqlite, n, "sqlite") * 1000
    session.drop()
    sqlite.close()
    return {"sqlite_ms_per_source": round(sqlite_ms, 3), "postgres_ms_per_source": round(pg_ms, 3),
            "added_ms_per_source": round(pg_ms - sqlite_ms, 3), "manifest_calls_per_source": 6,
            "postgres_transactions_per_source": round(transactions, 2)}


def ingest_child(home: Path, data: str, env: dict[str, str]) -> float:
    code = ("import sys, time, json; from mmrag.chains.ingestion import ingest; t=time.perf_counter(); "
            f"r=ingest([{data!r}]); assert r.ok, r.to_dict(); print(json.dumps({{'s': time.perf_counter()-t, "
            "'elements': r.elements}))")
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}, **env, "MMRAG_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return float(json.loads(out.stdout.strip().splitlines()[-1])["s"])


def part_ingest(dsn: str, home: Path, data: str, ocr: str) -> dict[str, Any]:
    base = {"MMRAG_VECTOR_STORE": "pgvector", "MMRAG_PG_DSN": dsn, "MMRAG_OCR": ocr, "MMRAG_CACHE": "false"}
    best: dict[str, float] = {}
    runs = 0
    for order in (("local", "shared"), ("shared", "local")):
        for side in order:
            runs += 1
            env = {**base, "MMRAG_COLLECTION": f"bench-{side}-{runs}",
                   "MMRAG_MANIFEST": "sqlite" if side == "local" else "postgres"}
            seconds = ingest_child(home / f"{side}-{runs}", data, env)
            print(f"ingest {side:6s} manifest: {seconds:6.1f} s", file=sys.stderr)
            best[side] = min(best.get(side, seconds), seconds)
    return {"ingest_local_manifest_s": round(best["local"], 2), "ingest_shared_manifest_s": round(best["shared"], 2),
            "ingest_ratio": round(best["shared"] / best["local"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--data", default=str(ROOT / "tests" / "data"))
    parser.add_argument("--ocr", default="off", choices=["auto", "off"])
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    from mmrag.testing.postgres import EmbeddedPostgres

    with tempfile.TemporaryDirectory() as tmp, EmbeddedPostgres() as pg:
        home = Path(tmp)
        result: dict[str, Any] = part_manifest(args.sources, pg.dsn, home)
        print(f"manifest per source: sqlite {result['sqlite_ms_per_source']:.2f} ms, PostgreSQL "
              f"{result['postgres_ms_per_source']:.2f} ms (+{result['added_ms_per_source']:.2f} ms; "
              f"{result['postgres_transactions_per_source']} transactions)", file=sys.stderr)
        if not args.skip_ingest:
            result |= part_ingest(pg.dsn, home, args.data, args.ocr)
    line = {"bench": "shared_manifest", "metric": "added ms per source (shared vs local manifest)",
            "value": result["added_ms_per_source"], "goal": 5.0,
            "baseline": {"sqlite_ms_per_source": result["sqlite_ms_per_source"]}, **result}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
