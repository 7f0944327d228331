"""FaissIndex at size: the mapped cache (no copy on open, checked in the background), bounded BM25, ANN recall."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from mmrag.stores import _faiss_cache, _faiss_db
from mmrag.stores.faiss import CACHE_NAME, FaissIndex
from mmrag.testing.conformance import make_record


def _unit(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    v = rng.standard_normal((n, dims)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _filled(folder: Path, n: int, dims: int, hnsw_threshold: int = 50_000) -> tuple[FaissIndex, np.ndarray]:
    vectors = _unit(np.random.default_rng(7), n, dims)
    index = FaissIndex(folder, dims, hnsw_threshold=hnsw_threshold)
    index.add([make_record(f"chunk {i}", v.tolist()) for i, v in enumerate(vectors)])
    index.persist()
    return index, vectors


@pytest.mark.parametrize("hnsw_threshold", [50_000, 10], ids=["flat", "hnsw"])
def test_a_cold_open_uses_the_cache_file_in_place(tmp_path: Path, hnsw_threshold: int) -> None:
    _, vectors = _filled(tmp_path / "idx", 40, 8, hnsw_threshold)
    again = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=hnsw_threshold)
    assert again.search(vectors[3].tolist(), k=1)[0].text == "chunk 3"
    ann = again._ann
    assert ann is not None and ann.mapping is not None  # the vectors were not copied into the process
    import faiss

    flat = ann.index if ann.kind == "flat" else faiss.downcast_index(ann.index.storage)
    assert not flat.codes.is_owned

    # A write makes the index its own copy first (FAISS cannot resize a mapped vector), then applies it.
    again.add([make_record("a late arrival", [0.0] * 7 + [1.0])])
    assert again.search([0.0] * 7 + [1.0], k=1)[0].text == "a late arrival"
    assert again._ann is not None and again._ann.mapping is None
    assert again.delete([again.search(vectors[5].tolist(), k=1)[0].id]) == 1
    assert "chunk 5" not in {h.text for h in again.search(vectors[5].tolist(), k=5)}


def test_a_large_cache_is_checked_after_it_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    _, vectors = _filled(tmp_path / "idx", 60, 8)
    cache = tmp_path / "idx" / CACHE_NAME
    data = bytearray(cache.read_bytes())
    data[-13] ^= 0xFF  # a byte of the last stored vector
    cache.write_bytes(bytes(data))
    monkeypatch.setattr(_faiss_cache, "VERIFY_NOW_BYTES", 0)  # every body counts as large

    again = FaissIndex(tmp_path / "idx", 8)
    with caplog.at_level(logging.WARNING, logger="mmrag.stores._faiss_cache"):
        assert again.search(vectors[0].tolist(), k=1)[0].text == "chunk 0"  # served at once from the file
        for t in threading.enumerate():
            if t.name == "mmrag-faiss-verify":
                t.join(timeout=30)
    assert "fails its checksum" in caplog.text
    assert again._ann is None  # dropped: the next search rebuilds from the database
    for i, v in enumerate(vectors):
        [hit] = again.search(v.tolist(), k=1)
        assert hit.text == f"chunk {i}" and math.isclose(hit.score, 1.0, abs_tol=1e-5)
    assert cache.read_bytes() != bytes(data)  # rewritten...
    caplog.clear()
    fresh = FaissIndex(tmp_path / "idx", 8)
    fresh.search(vectors[1].tolist(), k=1)
    for t in threading.enumerate():
        if t.name == "mmrag-faiss-verify":
            t.join(timeout=30)
    assert "fails its checksum" not in caplog.text and fresh._ann is not None  # ...and sound


def test_a_cache_whose_length_disagrees_with_its_header_is_not_used(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, vectors = _filled(tmp_path / "idx", 30, 8)
    cache = tmp_path / "idx" / CACHE_NAME
    cache.write_bytes(cache.read_bytes() + b"\0" * 64)
    monkeypatch.setattr(_faiss_cache, "VERIFY_NOW_BYTES", 0)
    again = FaissIndex(tmp_path / "idx", 8)
    assert again.search(vectors[2].tolist(), k=1)[0].text == "chunk 2"
    assert _faiss_cache.read_cache(cache, again._db.uid, 8) is not None  # rebuilt and rewritten at once


def _bm25_index(folder: Path) -> FaissIndex:
    index = FaissIndex(folder, 4)
    records = [make_record(f"the common words of chunk number {i}", [1.0, 0.0, 0.0, float(i)]) for i in range(30)]
    records += [make_record(f"the common words of a rare chunk {i}", [0.0, 1.0, 0.0, float(i)]) for i in range(2)]
    index.add(records)
    return index


def test_bm25_takes_the_rarest_words_within_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _bm25_index(tmp_path / "idx")
    assert len(index.keyword_search("common rare", k=10)) == 10  # every word counts in a small index
    monkeypatch.setattr(_faiss_db, "MATCH_BUDGET", 5)
    hits = index.keyword_search("common rare", k=10)
    assert sorted(h.text for h in hits) == ["the common words of a rare chunk 0", "the common words of a rare chunk 1"]


def test_bm25_of_common_words_only_ranks_a_bounded_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _bm25_index(tmp_path / "idx")
    monkeypatch.setattr(_faiss_db, "MATCH_BUDGET", 4)
    hits = index.keyword_search("common words", k=10)  # both in every record: the first 4 holding both
    assert [h.text for h in hits] == [f"the common words of chunk number {i}" for i in range(4)]
    hits = index.keyword_search("number the", k=3)
    assert len(hits) == 3 and all("number" in h.text for h in hits)
    assert index.keyword_search("absent", k=3) == []


def test_the_graph_an_index_switches_to_keeps_recall(tmp_path: Path) -> None:
    """Past ``hnsw_threshold`` the store searches an HNSW graph: on clustered vectors (like embeddings) its top 10
    must hold at least 95 % of the exact top 10."""
    rng = np.random.default_rng(3)
    dims, n = 48, 4000
    centres = _unit(rng, 60, dims)
    vectors = centres[rng.integers(0, 60, n)] + rng.standard_normal((n, dims)).astype(np.float32) * 0.12
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FaissIndex(tmp_path / "idx", dims, hnsw_threshold=1000)
    index.add([make_record(f"chunk {i}", v.tolist()) for i, v in enumerate(vectors)])
    index.persist()
    assert index._ann is not None and index._ann.kind == "hnsw"
    queries = vectors[rng.integers(0, n, 60)] + rng.standard_normal((60, dims)).astype(np.float32) * 0.05
    found = 0
    for q in queries:
        exact = {f"chunk {i}" for i in np.argsort(-(vectors @ q))[:10]}
        found += len(exact & {h.text for h in index.search(q.tolist(), k=10)})
    assert found / (10 * len(queries)) >= 0.95


@pytest.mark.parametrize("hnsw_threshold", [50_000, 10], ids=["flat", "hnsw"])
def test_a_cold_open_of_an_up_to_date_cache_reads_no_rows(tmp_path: Path, hnsw_threshold: int) -> None:
    _, vectors = _filled(tmp_path / "idx", 40, 8, hnsw_threshold)
    again = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=hnsw_threshold)
    statements: list[str] = []
    again._db.conn.set_trace_callback(statements.append)
    assert again.search(vectors[7].tolist(), k=1)[0].text == "chunk 7"
    assert not [s for s in statements if s.startswith("SELECT id FROM records") or "FROM vectors" in s], statements


def test_a_cache_saved_with_tombstones_is_compared_with_the_database(tmp_path: Path) -> None:
    _, vectors = _filled(tmp_path / "idx", 60, 8, hnsw_threshold=10)
    index = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=10)
    gone = index.search(vectors[3].tolist(), k=1)[0]
    assert index.delete([gone.id]) == 1
    index.search(vectors[3].tolist(), k=1)
    index.persist()  # an HNSW graph keeps the deleted row as a tombstone, which the cache does not hold
    again = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=10)
    hits = again.search(vectors[3].tolist(), k=3)
    assert len(hits) == 3 and gone.id not in {h.id for h in hits}


@pytest.mark.parametrize("hnsw_threshold", [50_000, 10], ids=["flat", "hnsw"])
def test_a_query_runs_faiss_on_one_thread_and_restores_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   hnsw_threshold: int) -> None:
    import faiss

    from mmrag.stores import _faiss_ann

    index, vectors = _filled(tmp_path / "idx", 40, 8, hnsw_threshold)
    before = faiss.omp_get_max_threads()
    seen: list[int] = []

    def record(threads: int) -> None:
        seen.append(threads)
        faiss.omp_set_num_threads(threads)

    monkeypatch.setattr(_faiss_ann, "_omp_set", record)
    assert index.search(vectors[1].tolist(), k=1)[0].text == "chunk 1"  # the fast path
    assert index.search(vectors[2].tolist(), k=100)[0].text == "chunk 2"  # the general path
    assert seen == [1, before, 1, before] and faiss.omp_get_max_threads() == before


def test_a_large_graph_searches_wider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.stores import _faiss_ann

    assert _faiss_ann.ef_search(100_000) == 64 and _faiss_ann.ef_search(1_000_000) == 250
    assert _faiss_ann.ef_search(10_000_000) == 256
    monkeypatch.setattr(_faiss_ann, "HNSW_ROWS_PER_EF", 4)  # a 600-vector graph counts as a large one
    index, vectors = _filled(tmp_path / "idx", 600, 8, hnsw_threshold=10)
    assert index._ann is not None and index._ann.index.hnsw.efSearch == 150
    again = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=10)  # and so does the graph loaded from the cache
    assert again.search(vectors[9].tolist(), k=1)[0].text == "chunk 9"
    assert again._ann is not None and again._ann.index.hnsw.efSearch == 150
