"""FaissIndex builds its HNSW graph with the lock released: other threads keep searching meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mmrag.stores._faiss_ann import Ann, Kind
from mmrag.stores.base import IndexRecord, ScoredRecord
from mmrag.stores.faiss import CACHE_NAME, FaissIndex
from mmrag.testing.conformance import make_record


class PausedBuild(FaissIndex):
    """Holds every HNSW build until ``release`` is set (``started`` tells that one is under way)."""

    def __init__(self, path: Path, dimensions: int, **kwargs: int) -> None:
        super().__init__(path, dimensions, **kwargs)
        self.started = threading.Event()
        self.release = threading.Event()
        self.builds: list[Kind] = []

    def _build(self, kind: Kind, rowids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], version: int) -> Ann:
        self.builds.append(kind)
        if kind == "hnsw":
            self.started.set()
            assert self.release.wait(120), "the test never released the build"
        return super()._build(kind, rowids, vectors, version)


def _records(n: int, dims: int, seed: int) -> list[IndexRecord]:
    rng = np.random.default_rng(seed)
    return [make_record(f"record {seed}-{i}", rng.standard_normal(dims).tolist()) for i in range(n)]


def _search_in_thread(index: FaissIndex, vector: list[float]) -> list[ScoredRecord]:
    out: list[list[ScoredRecord]] = []
    thread = threading.Thread(target=lambda: out.append(index.search(vector, k=3)), daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the search waited for the HNSW build"
    return out[0]


def test_a_search_completes_while_the_graph_is_built(tmp_path: Path) -> None:
    index = PausedBuild(tmp_path / "idx", 8, hnsw_threshold=40)
    first, later = _records(30, 8, seed=1), _records(20, 8, seed=2)
    index.add(first)
    assert index.search(list(first[0].vector), k=1)[0].id == first[0].id  # a flat index, built at once
    index.add(later)  # now past the threshold: the next sync wants a graph

    persist = threading.Thread(target=index.persist, daemon=True)
    persist.start()
    assert index.started.wait(120)  # persist is building the graph, lock released

    hits = _search_in_thread(index, list(later[5].vector))  # served by the flat index, caught up with `later`
    assert hits[0].id == later[5].id
    more = _records(5, 8, seed=3)
    index.add(more)  # writes go on too, and the next search sees them
    assert _search_in_thread(index, list(more[0].vector))[0].id == more[0].id

    index.release.set()
    persist.join(120)
    assert not persist.is_alive()
    assert b'"kind": "hnsw"' in (tmp_path / "idx" / CACHE_NAME).read_bytes()[:200]
    for r in (first[3], later[7], more[4]):  # the graph, swapped in, caught up with the write made meanwhile
        assert index.search(list(r.vector), k=1)[0].id == r.id
    assert index.builds.count("hnsw") == 1
    index.close()


def test_without_an_index_to_serve_a_search_waits_for_the_build(tmp_path: Path) -> None:
    records = _records(60, 8, seed=4)
    FaissIndex(tmp_path / "idx", 8, hnsw_threshold=40).add(records)
    index = PausedBuild(tmp_path / "idx", 8, hnsw_threshold=40)
    (tmp_path / "idx" / CACHE_NAME).unlink(missing_ok=True)
    results: list[list[ScoredRecord]] = []
    searcher = threading.Thread(target=lambda: results.append(index.search(list(records[9].vector), k=1)), daemon=True)
    searcher.start()
    assert index.started.wait(120)
    other = threading.Thread(target=lambda: results.append(index.search(list(records[9].vector), k=1)), daemon=True)
    other.start()
    index.release.set()
    for t in (searcher, other):
        t.join(120)
        assert not t.is_alive()
    assert [r[0].id for r in results] == [records[9].id] * 2 and index.builds == ["hnsw"]
    index.close()
