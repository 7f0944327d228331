"""Vector search throughput of FaissIndex against raw FAISS.

    python bench/search.py [--sizes 10000,100000] [--queries 1000] [--dims 384] [--repeat 3]

For each size: random ``--dims`` vectors (unit length) go into a FaissIndex (in batches, as ingest adds them)
and into a raw FAISS index of the same type built the same way: ``IndexFlatIP`` up to the index's HNSW threshold
(50k), ``IndexHNSWFlat`` (M=32, efConstruction=40, efSearch=64, inner product) above it. Then ``--queries``
random queries, one call each, k=10. Our side: ``FaissIndex.search`` with the query as a list of Python floats
(what an embedder returns), out a list of ``ScoredRecord`` (element, cosine score, indexed text), all built
eagerly: the lock, the database version check, the list packed into float32, FAISS's C++ search, the scores
scaled to cosines, row ids mapped, elements from the element cache (or SQLite). Raw side: ``index.search`` (the
faiss Python API) with the query already a unit-length float32 (1, dims) array, out the two numpy arrays. Each
query runs on both back to back, ``--repeat`` rounds; each keeps its best time (robust to a busy machine).
FAISS runs single-threaded (``--threads``) on both sides.

Times are thread CPU time (steady on a shared machine); wall-clock figures are reported alongside. The value is
the worse queries/s ratio over the sizes; goal >= 0.9. The raw index and ours hold the same vectors in different
memory (and, at 100k, two HNSW graphs), and on a small shared VM the same search on two such indexes can differ by
5-30%; so a third contender, ``index.search`` on FaissIndex's own FAISS index (same query array as raw), gives our
overhead with FAISS's own time held equal (``own_index_*``).

Repeated rounds over the same queries find their rows in FaissIndex's element cache (what a user's repeated or
related questions meet). The first touch of a row costs a SQLite read, JSON and an element rebuild: the
``first_touch`` figures time a fresh FaissIndex on the folder over ``--queries`` new queries, each run once
(cold element cache, FAISS loaded from its file) against raw FAISS on the same queries, and report the element
cache's size and memory (tracemalloc) after the repeated rounds.

Run it against another checkout (the code before a change) with ``PYTHONPATH=/that/checkout``; the first line
names the mmrag it imported. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np

import mmrag
from mmrag.elements import Element
from mmrag.stores.base import IndexRecord
from mmrag.stores.faiss import FaissIndex

K = 10
BATCH = 2000
HNSW_THRESHOLD = 50_000


def per_query_best(calls: list[list[Callable[[], Any]]], repeat: int, clock: Callable[[], float]) -> list[float]:
    """Total of each call's best time over ``repeat`` rounds; ``calls[i]`` are the contenders for query ``i``.

    Contenders run back to back on the same query, in alternating order, and each query keeps its best time of
    the rounds: on a shared machine a descheduled moment then costs one sample, not a whole pass.
    """
    best = [[float("inf")] * len(calls) for _ in calls[0]]
    for r in range(repeat):
        for i, contenders in enumerate(calls):
            order = range(len(contenders)) if (i + r) % 2 == 0 else reversed(range(len(contenders)))
            for j in order:
                t = clock()
                contenders[j]()
                dt = clock() - t
                if dt < best[j][i]:
                    best[j][i] = dt
    return [sum(times) for times in best]


def unit_rows(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    x = rng.standard_normal((n, dims), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def fill(index: FaissIndex, vectors: np.ndarray) -> None:
    """Add like ingest does: batches of records whose elements look like PDF text chunks."""
    for start in range(0, len(vectors), BATCH):
        records = []
        for i, row in enumerate(vectors[start : start + BATCH].tolist(), start):
            element = Element(kind="text", source=f"reports/doc{i % 200}.pdf", page=i % 40 + 1,
                              text=f"chunk {i}: quarterly revenue grew in region {i % 17} " * 4,
                              bbox=(72.0, 100.0 + i % 500, 540.0, 160.0 + i % 500), mime_type="text/plain",
                              metadata={"chunk": i})
            records.append(IndexRecord(element, row, element.text))
        index.add(records)
    index.persist()


def raw_index(kind: str, vectors: np.ndarray) -> Any:
    index: Any
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = 64
    else:
        index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def run_size(n: int, dims: int, n_queries: int, repeat: int, folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    vectors = unit_rows(rng, n, dims)
    queries = unit_rows(rng, n_queries, dims)
    query_lists = [q.tolist() for q in queries]  # what an embedder hands over
    query_rows = [q.reshape(1, -1) for q in queries]
    kind = "hnsw" if n > HNSW_THRESHOLD else "flat"

    ours = FaissIndex(folder / f"n{n}", dims, hnsw_threshold=HNSW_THRESHOLD)
    t = time.perf_counter()
    fill(ours, vectors)  # persist() at the end builds the FAISS index and writes its cache
    t_add = time.perf_counter() - t
    t = time.perf_counter()
    raw = raw_index(kind, vectors)
    t_raw_build = time.perf_counter() - t

    ours.search(query_lists[0], k=K)
    own = ours._ann.index  # our FAISS index itself: the same search without FaissIndex around it
    calls: list[list[Callable[[], Any]]] = [
        [partial(ours.search, ql, k=K), partial(raw.search, qr, K), partial(own.search, qr, K)]
        for ql, qr in zip(query_lists, query_rows, strict=True)
    ]
    for contenders in calls:  # warm up: page cache, SQLite statement cache
        for call in contenders:
            call()
    t_ours, t_raw, t_own = per_query_best(calls, repeat, time.thread_time)
    w_ours, w_raw, _ = per_query_best(calls, repeat, time.perf_counter)

    # Agreement of the top 10 with raw FAISS (flat: identical; HNSW: two graphs, both approximate).
    truth = [set(raw.search(q, K)[1][0].tolist()) for q in query_rows[:200]]
    overlap = 0
    for q, want in zip(query_lists[:200], truth, strict=True):
        got = {int(h.element.metadata["chunk"]) for h in ours.search(q, k=K)}
        overlap += len(got & want)
    qps_ours, qps_raw = n_queries / t_ours, n_queries / t_raw
    ours.close()
    first_ours, first_raw = first_touch(folder / f"n{n}", dims, raw, unit_rows(rng, n_queries, dims))
    cached_rows, cache_bytes = cache_footprint(folder / f"n{n}", dims, query_lists)
    result = {
        "n": n, "kind": kind, "qps_ours": round(qps_ours, 1), "qps_raw": round(qps_raw, 1),
        "ratio": round(qps_ours / qps_raw, 3),
        "add_and_persist_seconds": round(t_add, 2),
        "raw_build_seconds": round(t_raw_build, 2), "top10_overlap_with_raw": round(overlap / (200 * K), 3),
        "wall_qps_ours": round(n_queries / w_ours, 1), "wall_qps_raw": round(n_queries / w_raw, 1),
        "wall_ratio": round(w_raw / w_ours, 3),
        "overhead_us_per_query": round((t_ours - t_raw) / n_queries * 1e6, 1),
        "own_index_ratio": round(t_own / t_ours, 3),
        "own_index_overhead_us_per_query": round((t_ours - t_own) / n_queries * 1e6, 1),
        "first_touch_ratio": round(first_raw / first_ours, 3),
        "first_touch_overhead_us_per_query": round((first_ours - first_raw) / n_queries * 1e6, 1),
        "element_cache_rows": cached_rows, "element_cache_mb": round(cache_bytes / 2**20, 1),
    }
    print(f"{n} x {dims} ({kind}): FaissIndex {qps_ours:.0f} q/s, raw FAISS {qps_raw:.0f} q/s, "
          f"ratio {result['ratio']:.2f} (wall clock: {result['wall_ratio']:.2f}, "
          f"{result['overhead_us_per_query']:.0f} us overhead per query; against its own FAISS index searched bare: "
          f"{result['own_index_ratio']:.2f}, {result['own_index_overhead_us_per_query']:.0f} us); "
          f"add + persist (builds the index) {t_add:.1f} s vs raw build {t_raw_build:.1f} s; "
          f"top-10 overlap with raw {result['top10_overlap_with_raw']:.2f}; first touch (cold element cache): "
          f"ratio {result['first_touch_ratio']:.2f}, {result['first_touch_overhead_us_per_query']:.0f} us overhead; "
          f"element cache {cached_rows} rows, {result['element_cache_mb']} MB")
    return result


def cache_footprint(folder: Path, dims: int, queries: list[list[float]]) -> tuple[int, int]:
    """(rows, bytes) the element cache of a fresh FaissIndex holds after ``queries`` (traced apart from any timing:
    tracemalloc slows every allocation)."""
    fresh = FaissIndex(folder, dims, hnsw_threshold=HNSW_THRESHOLD)
    fresh.search(queries[0], k=K)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for q in queries:
        fresh.search(q, k=K)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    rows = len(getattr(fresh, "_hot", ()))  # the before-code has one too (smaller); a checkout without one: 0
    fresh.close()
    return rows, held


def first_touch(folder: Path, dims: int, raw: Any, queries: np.ndarray) -> tuple[float, float]:
    """CPU seconds of a fresh FaissIndex (cold element cache) and of raw FAISS over ``queries``, each run once."""
    fresh = FaissIndex(folder, dims, hnsw_threshold=HNSW_THRESHOLD)
    fresh.search(queries[0].tolist(), k=K)  # loads the FAISS index from its file (not a per-query cost)
    t_ours = t_raw = 0.0
    for q in queries[1:]:
        ql, qr = q.tolist(), q.reshape(1, -1)
        t = time.thread_time()
        fresh.search(ql, k=K)
        t_ours += time.thread_time() - t
        t = time.thread_time()
        raw.search(qr, K)
        t_raw += time.thread_time() - t
    fresh.close()
    return t_ours, t_raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated index sizes (default: %(default)s)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="FAISS OpenMP threads for both sides (default: %(default)s; one query per call gains nothing "
                         "from more, and on a busy 2-core machine their barriers make timings erratic)")
    args = ap.parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    print(f"mmrag from {Path(mmrag.__file__).parent}; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} "
          f"threads, k={K}, {args.queries} queries")
    with tempfile.TemporaryDirectory(prefix="mmrag-bench-search-") as tmp:
        results = [run_size(int(s), args.dims, args.queries, args.repeat, Path(tmp))
                   for s in args.sizes.split(",")]
    worst = min(results, key=lambda r: r["ratio"])
    print(json.dumps({
        "bench": "search",
        "metric": "qps_ratio_vs_raw_faiss",
        "value": worst["ratio"],
        "goal": 0.9,
        "baseline": {f"raw_faiss_{r['kind']}_{r['n']}_qps": r["qps_raw"] for r in results},
        "sizes": results,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
