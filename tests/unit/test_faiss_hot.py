"""FaissIndex's search path: the element cache against other processes' writes, its bound, and query forms."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mmrag.stores._faiss_hits as faiss_hits
from mmrag.stores.base import IndexRecord
from mmrag.stores.faiss import FaissIndex
from mmrag.testing.conformance import make_record

DIMS = 8


def _records(n: int, seed: int = 0) -> list[IndexRecord]:
    rng = np.random.default_rng(seed)
    return [make_record(f"record {seed}-{i}", rng.standard_normal(DIMS).tolist(), metadata={"version": 1})
            for i in range(n)]


_OTHER_PROCESS = textwrap.dedent("""
    import dataclasses, sys
    from pathlib import Path
    import numpy as np
    from mmrag.stores.faiss import FaissIndex
    from mmrag.testing.conformance import make_record

    folder, replace_text, delete_text, add_text = sys.argv[1:5]
    index = FaissIndex(Path(folder), 8, hnsw_threshold=int(sys.argv[5]))
    rng = np.random.default_rng(0)
    records = {r.element.text: r for r in
               (make_record(f"record 0-{i}", rng.standard_normal(8).tolist(), metadata={"version": 1})
                for i in range(40))}
    old = records[replace_text]
    element = dataclasses.replace(old.element, metadata={"version": 2})  # same id: an upsert, a new row
    index.add([dataclasses.replace(old, element=element)])
    index.delete([records[delete_text].id])
    index.add([make_record(add_text, [1.0] * 8)])
    index.close()
""")


@pytest.mark.parametrize("hnsw_threshold", [50_000, 20], ids=["flat", "hnsw"])
def test_cached_elements_follow_another_processes_commits(tmp_path: Path, hnsw_threshold: int) -> None:
    folder = tmp_path / "idx"
    records = _records(40)
    index = FaissIndex(folder, DIMS, hnsw_threshold=hnsw_threshold)
    index.add(records)
    index.persist()
    replaced, deleted = records[3], records[7]
    for r in (replaced, deleted):  # both are now in the element cache
        hit = index.search(list(r.vector), k=1)[0]
        assert hit.id == r.id and hit.element.metadata["version"] == 1

    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(folder), replaced.element.text, deleted.element.text,
                    "added elsewhere", str(hnsw_threshold)], check=True, timeout=120)

    hit = index.search(list(replaced.vector), k=1)[0]
    assert hit.id == replaced.id and hit.element.metadata["version"] == 2  # the new row, not the cached one
    assert deleted.id not in {h.id for h in index.search(list(deleted.vector), k=40)}
    assert index.search([1.0] * DIMS, k=1)[0].element.text == "added elsewhere"
    assert index.count() == 40


def test_a_cache_smaller_than_k_still_returns_every_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_hits, "HOT_ROWS", 4)  # a size setting, so that eviction happens on every search
    records = _records(60, seed=1)
    index = FaissIndex(tmp_path / "idx", DIMS)
    index.add(records)
    stored = {e.id: e for e in index.get([r.id for r in records])}
    vectors = np.array([r.vector for r in records], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(2)
    for _ in range(10):
        query = rng.standard_normal(DIMS)
        hits = index.search(query.tolist(), k=12)
        best = np.argsort(-(vectors @ (query / np.linalg.norm(query))))[:12]
        assert [h.id for h in hits] == [records[i].id for i in best]
        assert all(h.element == stored[h.id] and h.text == stored[h.id].text for h in hits)
        assert len(index._hot) <= 12  # bounded by max(HOT_ROWS, k)


def test_a_cached_hit_equals_the_stored_element(tmp_path: Path) -> None:
    records = _records(20, seed=3)
    index = FaissIndex(tmp_path / "idx", DIMS)
    index.add(records)
    first = index.search(list(records[5].vector), k=5)
    again = index.search(list(records[5].vector), k=5)  # served from the cache
    assert [(h.element, h.score, h.text) for h in first] == [(h.element, h.score, h.text) for h in again]
    assert first[0].element == records[5].element


def test_every_query_form_gives_the_same_hits(tmp_path: Path) -> None:
    records = _records(30, seed=4)
    index = FaissIndex(tmp_path / "idx", DIMS)
    index.add(records)
    query = [float(x) for x in np.random.default_rng(5).integers(-3, 4, DIMS)]
    forms: list[object] = [query, tuple(query), [int(x) for x in query], [np.float64(x) for x in query],
                           np.array(query, dtype=np.float32), np.array(query, dtype=np.float64)]
    results = [[(h.id, round(h.score, 5)) for h in index.search(form, k=5)] for form in forms]  # type: ignore[arg-type]
    assert all(r == results[0] for r in results[1:])
    assert len(results[0]) == 5


_COMMIT = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[2] == "restart":  # checkpoint everything and truncate the WAL: the next commit restarts it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("UPDATE state SET version = version + 1")
    conn.close()
""")


def test_the_version_check_sees_every_commit_and_skips_sqlite_otherwise(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path / "idx", DIMS)
    index.add(_records(5))
    db = index._db
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    for mode in ("append", "restart", "append", "restart"):
        before = db.current_version()
        subprocess.run([sys.executable, "-c", _COMMIT, str(db.path), mode], check=True, timeout=120)
        assert db.current_version() == before + 1 == db.version()  # another process's commit is seen
        statements.clear()
        assert db.current_version() == before + 1
        assert statements == []  # nothing committed since: no statement ran
    index.add(_records(1, seed=9))  # this connection's own commit
    assert db.current_version() == db.version()
