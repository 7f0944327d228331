"""The cost curve of the embedded store: build, disk, memory and hybrid retrieval at 10k, 100k and 1M elements.

    python bench/scale.py [--sizes 10000,100000,1000000] [--workdir DIR] [--queries 200] [--cold-asks 3] [--clean]

For each size, a collection of synthetic text elements is built once under ``--workdir`` (default
``$TMPDIR/mmrag-bench-scale``; reused by later runs: delete it or pass ``--clean`` to rebuild) in an
``MMRAG_HOME`` the real CLI can open (profile local, the MiniLM text model's id and 384 dimensions).

Synthetic data, seeded (``--seed``), shaped like real embeddings and chunks rather than uniform noise:

- vectors: a mixture of 2000 clusters on the 384-dim unit sphere (cluster sizes Zipfian), each vector its cluster
  centre plus Gaussian noise (cosine to its centre about 0.75), plus a direction shared by every vector (cosine
  between unrelated vectors about 0.1, as with sentence embeddings), then normalised;
- texts: 60-160 words from a 100k-word vocabulary with Zipfian frequencies (a few words in most chunks, most
  words rare), a third of them drawn from the cluster's own topical words, so BM25 posting lists are as long as
  in real text and the keyword list agrees in part with the dense one;
- queries: a fresh point of a random cluster, and 4-8 words (common and topical).

Elements are written through the store's public add path (``FaissIndex.add`` via the collection's text space, in
batches of 20k), not through the ingest chain (which would spend hours parsing and embedding); then ``persist``
builds the FAISS index and writes its cache (timed apart). Each figure is measured in a fresh process:

- warm hybrid retrieval: ``chains.query.retrieve_all`` (the ``mmrag ask`` retrieve stage: dense + BM25 + the
  cue lists, through the collection's committed view) then ``reciprocal_rank_fusion`` (the fuse stage), with the
  query embedding faked (a lookup of the precomputed vector); p50/p95 over ``--queries`` after 20 warm-up queries;
  the dense and BM25 calls are timed on their own too;
- RSS: growth of the process's resident memory from before the collection is opened to after the queries, against
  the float32 floor (n x 384 x 4 bytes); the whole process's RSS alongside;
- recall@10 of the index the store chose (HNSW above ``hnsw_threshold``) against exact search over the same
  vectors regenerated from the seed (numpy), on 100 queries;
- cold ``mmrag ask`` (largest size): a fresh ``python -m mmrag ask`` process, profile local (MiniLM, extractive
  answer), answer cache off; median of ``--cold-asks``, the first run shown too.

The growth exponent is log(p50 at the largest size / p50 at the one before) / log(size ratio). The machine's load
average is printed with every figure: absolute milliseconds only mean something on a quiet machine. Last line:
one JSON object with ``p50_ms_1m``, ``p95_ms_1m``, ``rss_ratio_1m``, ``cold_ask_s_1m``, ``exponent``,
``recall_at_10`` (figures of the largest size run, whatever it is).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIMS = 384
CLUSTERS = 2000
VOCAB = 100_000
TOPICAL = 40  # topical words per cluster
BATCH = 20_000
COLLECTION = "scale"
GENERATOR = 2  # bump when the data recipe changes: cached collections of another recipe are rebuilt


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rss(field: str = "VmRSS") -> int:
    """Resident bytes of this process (``RssAnon``: its own memory; ``RssFile``: mapped file pages, such as the
    FAISS cache's, shared with the page cache)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


class Data:
    """The seeded generator of vectors, texts and queries (the same seed gives the same collection)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((CLUSTERS, DIMS)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        shared = rng.standard_normal(DIMS).astype(np.float32)
        self.shared = shared / np.linalg.norm(shared)
        sizes = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.7
        self.cluster_p = np.cumsum(sizes / sizes.sum())
        ranks = 1.0 / (np.arange(VOCAB) + 2.7) ** 1.05  # Zipf-Mandelbrot
        self.word_p = np.cumsum(ranks / ranks.sum())
        self.words = np.array([_word(i) for i in range(VOCAB)], dtype=object)
        # Topical words: mid-frequency ranks, a different set per cluster.
        self.topical = rng.integers(300, 60_000, size=(CLUSTERS, TOPICAL))

    def _clusters(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cluster_p, rng.random(n)), CLUSTERS - 1)

    def _vectors(self, rng: np.random.Generator, clusters: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal((len(clusters), DIMS), dtype=np.float32) * (0.85 / math.sqrt(DIMS))
        v = self.centres[clusters] + noise + 0.35 * self.shared
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def _text(self, rng: np.random.Generator, cluster: int, length: int) -> str:
        general = np.minimum(np.searchsorted(self.word_p, rng.random(length)), VOCAB - 1)
        topical = self.topical[cluster][rng.integers(0, TOPICAL, size=length)]
        ids = np.where(rng.random(length) < 1 / 3, topical, general)
        return " ".join(self.words[ids].tolist())

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, list[str]]:
        """Vectors and texts of elements ``start`` to ``stop`` (a batch is generated alone: seeded by its start)."""
        rng = np.random.default_rng([self.seed, start])
        clusters = self._clusters(rng, stop - start)
        vectors = self._vectors(rng, clusters)
        lengths = rng.integers(60, 161, size=stop - start)
        return vectors, [self._text(rng, int(c), int(n)) for c, n in zip(clusters, lengths, strict=True)]

    def queries(self, n: int) -> tuple[np.ndarray, list[str]]:
        rng = np.random.default_rng([self.seed, 10**12])
        clusters = self._clusters(rng, n)
        vectors = self._vectors(rng, clusters)
        texts = [f"q{i} " + self._text(rng, int(c), int(rng.integers(4, 9))) for i, c in enumerate(clusters)]
        return vectors, texts


def _word(i: int) -> str:
    letters = "bcdfghjklmnprstvz"
    out = ""
    i += len(letters)
    while i:
        i, r = divmod(i, len(letters))
        out += letters[r] + "aeiou"[r % 5]
    return out


def _settings_env(home: Path) -> dict[str, str]:
    return {"MMRAG_HOME": str(home), "MMRAG_PROFILE": "local", "MMRAG_COLLECTION": COLLECTION, "MMRAG_CACHE": "false"}


def _batches(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, BATCH):
        yield start, min(n, start + BATCH)


def build(home: Path, n: int, seed: int) -> dict[str, Any]:
    """Build the collection of ``n`` elements in ``home`` (in this process); returns its build figures."""
    from mmrag.chains._components import open_components
    from mmrag.config import Settings
    from mmrag.elements import Element
    from mmrag.stores.base import IndexRecord

    if home.exists():
        shutil.rmtree(home)
    os.environ.update(_settings_env(home))
    _, collection = open_components(Settings(), create=True)
    data = Data(seed)
    t0 = time.perf_counter()
    gen = 0.0
    for start, stop in _batches(n):
        g0 = time.perf_counter()
        vectors, texts = data.batch(start, stop)
        records = [IndexRecord(Element(kind="text", source=f"synthetic/doc{i // 20:06d}.txt", text=t,
                                       page=1 + i % 20, metadata={"i": i}), v, t)  # v: a list, as embedders give
                   for i, t, v in zip(range(start, stop), texts, vectors.tolist(), strict=True)]
        gen += time.perf_counter() - g0
        collection.text.add(records)
        if stop % 200_000 == 0 or stop == n:
            print(f"  {stop} rows written ({time.perf_counter() - t0:.0f} s, load {_load()})", flush=True)
    add_s = time.perf_counter() - t0 - gen
    t1 = time.perf_counter()
    collection.text.persist()
    persist_s = time.perf_counter() - t1
    collection.text.close()
    disk = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    figures = {"n": n, "seed": seed, "generator": GENERATOR, "add_s": round(add_s, 1), "generate_s": round(gen, 1),
               "index_build_s": round(persist_s, 1), "disk_bytes": disk, "build_load": _load()}
    (home / "built.json").write_text(json.dumps(figures))
    return figures


def measure(home: Path, n: int, seed: int, queries: int) -> dict[str, Any]:
    """Warm retrieval latency, RSS growth and recall@10 on the collection in ``home`` (in a fresh process)."""
    import faiss
    from langchain_core.embeddings import Embeddings

    from mmrag.chains.query import QueryOptions, retrieve_all
    from mmrag.config import Settings
    from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion
    from mmrag.retrievers.multimodal import MultimodalRetriever
    from mmrag.stores.collection import SpaceInfo, open_collection

    faiss.omp_set_num_threads(1)  # one query at a time: OpenMP threads only add noise on a loaded 2-core box
    os.environ.update(_settings_env(home))
    data = Data(seed)
    qvectors, qtexts = data.queries(queries + 20)
    lookup = {t: v.tolist() for t, v in zip(qtexts, qvectors, strict=True)}

    class Lookup(Embeddings):  # the query embedding, faked: the precomputed vector of the query text
        def embed_query(self, text: str) -> list[float]:
            return lookup[text]

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [lookup[t] for t in texts]

    meta = json.loads((home / "built.json").read_text())
    info = json.loads((home / "spaces.json").read_text())
    rss0, anon0, file0 = _rss(), _rss("RssAnon"), _rss("RssFile")
    t0 = time.perf_counter()
    collection = open_collection(Settings(), text=SpaceInfo(**info["text"]), image=SpaceInfo(**info["image"]),
                                 create=False)
    open_s = time.perf_counter() - t0
    retriever = MultimodalRetriever(collection=collection, text_embeddings=Lookup(), k=QueryOptions().k)
    t0 = time.perf_counter()
    retrieve_all(retriever, [qtexts[0]])
    first_s = time.perf_counter() - t0
    for q in qtexts[1:20]:
        retrieve_all(retriever, [q])
    walls, dense, bm25 = [], [], []
    for q in qtexts[20:]:
        t0 = time.perf_counter()
        reciprocal_rank_fusion(retrieve_all(retriever, [q]), RRF_K, limit=QueryOptions().context_size)
        walls.append(time.perf_counter() - t0)
    for q in qtexts[20:]:
        t0 = time.perf_counter()
        collection.text.search(lookup[q], k=QueryOptions().k)
        t1 = time.perf_counter()
        collection.text.keyword_search(q, k=QueryOptions().k)
        dense.append(t1 - t0)
        bm25.append(time.perf_counter() - t1)
    rss1, anon1, file1 = _rss(), _rss("RssAnon"), _rss("RssFile")
    inner = collection.text.inner
    kind = inner._ann.kind if inner._ann is not None else "?"
    # recall@10 of what the store returns against exact search over the regenerated vectors
    rq = qvectors[20:120]
    best = np.full((len(rq), 10), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(rq), 10), dtype=np.int64)
    for start, stop in _batches(n):
        vectors, _ = data.batch(start, stop)
        scores = rq @ vectors.T
        merged = np.concatenate([best, scores], axis=1)
        ids = np.concatenate([best_i, np.arange(start, stop)[None, :].repeat(len(rq), 0)], axis=1)
        top = np.argsort(-merged, axis=1)[:, :10]
        best, best_i = np.take_along_axis(merged, top, 1), np.take_along_axis(ids, top, 1)
    found = 0
    for row, q in zip(best_i, rq, strict=True):
        got = {h.element.metadata["i"] for h in inner.search(q.tolist(), k=10)}
        found += len(got & set(row.tolist()))
    recall = found / (10 * len(rq))
    floor = n * DIMS * 4
    return {"n": n, "kind": kind, "open_s": round(open_s, 3), "first_query_s": round(first_s, 3),
            "p50_ms": round(1000 * statistics.median(walls), 2),
            "p95_ms": round(1000 * float(np.percentile(walls, 95)), 2),
            "dense_p50_ms": round(1000 * statistics.median(dense), 2),
            "bm25_p50_ms": round(1000 * statistics.median(bm25), 2),
            "bm25_p95_ms": round(1000 * float(np.percentile(bm25, 95)), 2),
            "rss_growth_bytes": rss1 - rss0, "rss_anon_growth_bytes": anon1 - anon0,
            "rss_file_growth_bytes": file1 - file0, "rss_bytes": rss1, "floor_bytes": floor,
            "rss_ratio": round((rss1 - rss0) / floor, 3), "recall_at_10": round(recall, 4),
            "build": meta, "load": _load()}


def cold_ask(home: Path, runs: int, seed: int) -> list[float]:
    env = {**os.environ, **_settings_env(home)}
    _, questions = Data(seed).queries(1000 + runs)  # words of the collection's vocabulary, unlike the warm queries
    out = []
    for question in questions[-runs:]:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mmrag", "ask", question],
                              env=env, capture_output=True, text=True, cwd=ROOT)
        out.append(time.perf_counter() - t0)
        if done.returncode:
            raise SystemExit(f"mmrag ask failed: {done.stderr.strip()[-2000:]}")
    return out


def _child(mode: str, home: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, f"--_{mode}", str(home), "--sizes", str(n), "--seed", str(args.seed),
           "--queries", str(args.queries)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{mode} of {n} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    sys.stdout.write("".join(line + "\n" for line in done.stdout.splitlines()[:-1]))
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _fresh(home: Path, n: int, seed: int) -> bool:
    try:
        meta = json.loads((home / "built.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(meta.get("n") == n and meta.get("seed") == seed and meta.get("generator") == GENERATOR)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "mmrag-bench-scale"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cold-asks", type=int, default=3)
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--clean", action="store_true", help="rebuild every collection")
    ap.add_argument("--_build", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args._build:
        figures = build(Path(args._build), sizes[0], args.seed)
        print(json.dumps(figures))
        return
    if args._measure:
        print(json.dumps(measure(Path(args._measure), sizes[0], args.seed, args.queries)))
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"scale bench: sizes {sizes}, workdir {work}, load average {_load()} (2-core box shared: absolute ms "
          "only mean something at load < 1)")
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        home = work / f"n{n}"
        if args.clean or not _fresh(home, n, args.seed):
            print(f"building {n} elements in {home} ...", flush=True)
            _child("build", home, n, args)
            _spaces(home)
        r = _child("measure", home, n, args)
        results[n] = r
        b = r["build"]
        print(f"{n:>9}: {r['kind']:<4} add {b['add_s']} s, index build {b['index_build_s']} s, disk "
              f"{b['disk_bytes'] / 2**20:.0f} MB; open {r['open_s']} s, first query {r['first_query_s']} s; "
              f"hybrid p50 {r['p50_ms']} ms p95 {r['p95_ms']} ms (dense p50 {r['dense_p50_ms']} ms, BM25 p50 "
              f"{r['bm25_p50_ms']} ms p95 {r['bm25_p95_ms']} ms); RSS +{r['rss_growth_bytes'] / 2**20:.0f} MB = "
              f"{r['rss_ratio']}x the float32 floor ({r['floor_bytes'] / 2**20:.0f} MB; anon "
              f"+{r['rss_anon_growth_bytes'] / 2**20:.0f} MB, mapped files "
              f"+{r['rss_file_growth_bytes'] / 2**20:.0f} MB; process "
              f"{r['rss_bytes'] / 2**20:.0f} MB); recall@10 {r['recall_at_10']}; load {r['load']}", flush=True)
    largest = max(sizes)
    asks = cold_ask(work / f"n{largest}", args.cold_asks, args.seed) if args.cold_asks else []
    if asks:
        print(f"cold mmrag ask on {largest}: median {statistics.median(asks):.2f} s, runs "
              f"{', '.join(f'{a:.2f}' for a in asks)} (load {_load()})")
    exponent = None
    if len(sizes) > 1:
        a, b = sorted(sizes)[-2:]
        exponent = round(math.log(results[b]["p50_ms"] / results[a]["p50_ms"]) / math.log(b / a), 3)
        print(f"growth of p50 from {a} to {b}: exponent {exponent} (1 = linear)")
    top = results[largest]
    print(json.dumps({
        "bench": "scale", "metric": "hybrid retrieval p50 ms at the largest size", "value": top["p50_ms"],
        "goal": 50, "size": largest, "p50_ms_1m": top["p50_ms"], "p95_ms_1m": top["p95_ms"],
        "rss_ratio_1m": top["rss_ratio"], "cold_ask_s_1m": round(statistics.median(asks), 3) if asks else None,
        "exponent": exponent, "recall_at_10": top["recall_at_10"], "load": _load(),
        "baseline": {"float32_floor_bytes": top["floor_bytes"], "sizes": {str(n): results[n] for n in sizes}},
    }))


def _spaces(home: Path) -> None:
    """Record the collection's space models (from its manifest) so measuring needs no model."""
    from mmrag.stores.manifest import Manifest

    meta = Manifest(home / COLLECTION / "manifest.sqlite").meta()
    (home / "spaces.json").write_text(json.dumps({
        space: {"model": meta[f"{space}_model"], "dimensions": meta[f"{space}_dimensions"]}
        for space in ("text", "image")}))


if __name__ == "__main__":
    main()
