"""FaissIndex's per-query path (QueryRow + Ann.top): the same hits and scores as the general path, for every query."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import faiss
import numpy as np
import pytest

from mmrag.errors import StoreError
from mmrag.stores._faiss_ann import Ann, QueryRow, as_query
from mmrag.stores.base import IndexRecord, ScoredRecord
from mmrag.stores.faiss import FaissIndex
from mmrag.testing.conformance import make_record

DIMS = 8


def _index(tmp_path: Path, n: int = 40, seed: int = 0, **kwargs: int) -> tuple[FaissIndex, list[IndexRecord]]:
    rng = np.random.default_rng(seed)
    records = [make_record(f"record {i}", rng.standard_normal(DIMS).tolist(), indexed_text=f"indexed {i}")
               for i in range(n)]
    index = FaissIndex(tmp_path / "idx", DIMS, **kwargs)
    index.add(records)
    index.persist()
    return index, records


def _cosines(records: list[IndexRecord], query: list[float]) -> np.ndarray:
    vectors = np.array([r.vector for r in records], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors @ (np.array(query) / np.linalg.norm(query))


@pytest.mark.parametrize("hnsw_threshold", [50_000, 20], ids=["flat", "hnsw"])
def test_scores_are_cosines_whatever_the_query_length(tmp_path: Path, hnsw_threshold: int) -> None:
    index, records = _index(tmp_path, hnsw_threshold=hnsw_threshold)
    query = np.random.default_rng(1).standard_normal(DIMS).tolist()
    hits = index.search(query, k=5)
    cosines = _cosines(records, query)
    best = np.argsort(-cosines)[:5]
    assert [h.id for h in hits] == [records[i].id for i in best]
    assert [h.score for h in hits] == pytest.approx([cosines[i] for i in best], abs=1e-6)
    longer = index.search([7.5 * x for x in query], k=5)
    assert [h.id for h in longer] == [h.id for h in hits]
    assert [h.score for h in longer] == pytest.approx([h.score for h in hits], abs=1e-6)


def test_every_path_gives_a_query_the_same_scores(tmp_path: Path) -> None:
    index, _ = _index(tmp_path)
    query = np.random.default_rng(2).standard_normal(DIMS).astype(np.float32)
    as_list = query.tolist()  # float32 values: every form below holds the same numbers
    fast = [(h.id, h.score) for h in index.search(as_list, k=6)]
    assert index._query is not None  # the list went through the fast path
    for form in (tuple(as_list), query, query.astype(np.float64)):  # a tuple: fast; arrays: the general path
        assert [(h.id, h.score) for h in index.search(form, k=6)] == fast  # type: ignore[arg-type]
    # A filter that allows everything, resolved in SQL (general path): 40 rows are scored by numpy, and with
    # exact_filter_limit=0 by FAISS with an id selector. The same numbers either way.
    by_faiss, _ = _index(tmp_path / "selector", exact_filter_limit=0)
    for filtering in (index, by_faiss):
        filtered = [(h.id, h.score) for h in filtering.search(as_list, k=6, filter={"source": ["doc.pdf"]})]
        assert [i for i, _ in filtered] == [i for i, _ in fast]
        assert [s for _, s in filtered] == pytest.approx([s for _, s in fast], abs=1e-6)


def test_hits_are_ordinary_frozen_scored_records(tmp_path: Path) -> None:
    index, records = _index(tmp_path)
    stored = {e.id: e for e in index.get([r.id for r in records])}
    for _ in range(2):  # a first touch (from SQLite), then from the element cache
        hits = index.search(list(records[4].vector), k=3)
        assert hits[0].id == records[4].id
        for h in hits:
            assert type(h) is ScoredRecord
            assert h == ScoredRecord(stored[h.id], h.score, f"indexed {h.element.text.split()[-1]}")
            assert hash(h) == hash(ScoredRecord(h.element, h.score, h.text))
            with pytest.raises(dataclasses.FrozenInstanceError):
                h.score = 0.0  # type: ignore[misc]


def test_queries_the_fast_path_does_not_take_still_search(tmp_path: Path) -> None:
    index, records = _index(tmp_path)
    assert [h.score for h in index.search([0.0] * DIMS, k=3)] == [0.0, 0.0, 0.0]  # a zero vector: no scaling
    big = [1e38] + [1e-30] * (DIMS - 1)  # finite in float32, but its square overflows float32
    for form in (big, np.array(big)):
        hits = index.search(form, k=3)  # type: ignore[arg-type]
        assert [h.score for h in hits] == pytest.approx(sorted(_cosines(records, big), reverse=True)[:3], abs=1e-5)
    # NaN, infinity, or beyond float32 (1e39 becomes inf): an error that says so, not arbitrary "perfect" hits
    for bad in ([math.nan] * DIMS, [math.inf] + [0.0] * (DIMS - 1), [1e39] + [0.0] * (DIMS - 1)):
        for form in (bad, np.array(bad)):
            with warnings.catch_warnings(), pytest.raises(StoreError, match="NaN or infinite"):
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warning on the conversion
                index.search(form, k=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        index.search(["a"] * DIMS, k=3)  # type: ignore[list-item]
    assert index.search(list(records[0].vector), k=1)[0].id == records[0].id  # the row is fine afterwards


def test_k_beyond_the_index_and_k_changing_between_calls(tmp_path: Path) -> None:
    index, records = _index(tmp_path, n=5)
    query = list(records[2].vector)
    assert len(index.search(query, k=50)) == 5
    for k in (1, 3, 5, 2, 4, 1, 7, 6, 9, 8, 10, 3):  # more sizes than the row keeps buffers for
        hits = index.search(query, k=k)
        assert len(hits) == min(k, 5) and hits[0].id == records[2].id


def test_top_drops_the_padding_of_a_short_result() -> None:
    """An index that finds fewer than k (an IVF list probed alone) pads with -1; Ann.top drops it as search does."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((64, DIMS)).astype(np.float32)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIMS), DIMS, 8, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors)
    ivf.add(vectors)
    ivf.nprobe = 1
    rowids = np.arange(100, 164, dtype=np.int64)
    ann = Ann("flat", ivf, rowids, version=1)
    query = rng.standard_normal(DIMS).tolist()
    found = ann.top(QueryRow(DIMS), query, 40)
    assert found is not None
    scores, rows, scale = found
    row, general_scale = as_query(query)
    want_scores, want_rows = ann.search(row, 40)
    assert 0 < len(rows) < 40 and rows == want_rows.tolist()
    assert scores == want_scores.tolist() and scale == general_scale
