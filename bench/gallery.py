"""Image→image search latency against raw FAISS, and the time to render a 50-hit gallery.

    python bench/gallery.py [--sizes 1000,10000] [--queries 100] [--repeat 3]

Each size is a collection image space (``FaissIndex``) of N images: the 34 bundled gallery images
(tests/data/i2i/gallery) described by the local image descriptor, plus N-34 random unit vectors of the same
dimension standing in for other pictures (each pointing at one of the real objects, so thumbnails are real).
Queries are the bundled images transformed (crop 80%, resize 50%, grayscale, JPEG q40, rotate 5°).

Per query, three timings (wall clock, best of ``--repeat`` rounds, contenders back to back):

- ``search``: :func:`mmrag.retrievers.search.search_image` without the embedding: the query's header check (the
  pixels are decoded once, by the embedder, timed apart), the index search (k x 3 candidates),
  elements rebuilt from SQLite, duplicates collapsed, the places of shared pictures read from the manifest,
  object links resolved;
- ``raw``: raw FAISS ``IndexFlatIP.search`` on the same normalised vectors, k=10;
- ``embed``: the query image described by the local descriptor (the same in every profile's pipeline, so it is
  reported separately rather than charged to either side).

Then the gallery of 50 hits is rendered (thumbnails decoded, downscaled and embedded) ``--repeat`` times; its
best time and size are reported. The last line printed is one JSON object; the metric is the p50 latency ratio
(ours / raw FAISS) at the largest size.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faiss
import numpy as np
from PIL import Image, ImageOps

from mmrag.elements import Element
from mmrag.providers.local.local_image import LocalImageEmbedder
from mmrag.render import gallery_html
from mmrag.retrievers.search import search_image
from mmrag.stores.base import IndexRecord
from mmrag.stores.collection import Collection
from mmrag.stores.faiss import FaissIndex
from mmrag.stores.manifest import Manifest
from mmrag.stores.objects import LocalObjectStore

K = 10
GALLERY = Path(__file__).resolve().parent.parent / "tests" / "data" / "i2i" / "gallery"


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def queries(paths: list[Path], n: int) -> list[bytes]:
    """``n`` query images: the gallery images under the five transforms, round robin."""
    out: list[bytes] = []
    transforms = [
        lambda im: _jpeg(im.crop((im.width // 10, im.height // 10, im.width * 9 // 10, im.height * 9 // 10))),
        lambda im: _jpeg(im.resize((im.width // 2, im.height // 2))),
        lambda im: _jpeg(ImageOps.grayscale(im)),
        lambda im: _jpeg(im, 40),
        lambda im: _jpeg(im.rotate(5, expand=True, fillcolor="white")),
    ]
    while len(out) < n:
        i = len(out)
        with Image.open(paths[i % len(paths)]) as img:
            out.append(transforms[i % len(transforms)](img.convert("RGB")))
    return out


def build(folder: Path, n: int, real: np.ndarray, keys: list[str], objects: LocalObjectStore) -> tuple[Any, Any]:
    rng = np.random.default_rng(n)
    dims = real.shape[1]
    filler = rng.standard_normal((n - len(real), dims)).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    vectors = np.vstack([real, filler]).astype(np.float32)
    index = FaissIndex(folder / f"image-{n}", dims)
    records = []
    for i, row in enumerate(vectors):
        key = keys[i % len(keys)] if i < len(keys) else f"{keys[i % len(keys)][:-4]}-{i}.jpg"
        element = Element(kind="image", source=f"/bench/pictures/img_{i:05d}.jpg", text=f"picture {i}",
                          mime_type="image/jpeg", object_key=key, metadata={"caption": f"picture {i}"})
        records.append(IndexRecord(element, row.tolist(), element.text))
    for start in range(0, len(records), 2000):
        index.add(records[start : start + 2000])
    index.persist()
    raw = faiss.IndexFlatIP(dims)
    raw.add(vectors)
    collection = Collection(f"bench{n}", index, index, objects, Manifest(folder / f"manifest-{n}.sqlite"), "faiss")
    return collection, raw


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def run_size(n: int, folder: Path, real: np.ndarray, keys: list[str], objects: LocalObjectStore,
             qs: list[bytes], vectors: list[list[float]], repeat: int) -> dict[str, Any]:
    collection, raw = build(folder, n, real, keys, objects)
    providers = SimpleNamespace(image_embedder=SimpleNamespace(embed_images=None))
    ours: list[float] = []
    base: list[float] = []
    for q, v in zip(qs, vectors, strict=True):
        providers.image_embedder.embed_images = lambda _images, v=v: [v]  # the embedding was timed apart
        row = np.array([v], dtype=np.float32)
        row /= np.linalg.norm(row)
        best_ours, best_raw = float("inf"), float("inf")
        for r in range(repeat):
            for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                t = time.perf_counter()
                if which == 0:
                    search_image(q, providers, collection, k=K)  # type: ignore[arg-type]
                else:
                    raw.search(row, K)
                dt = time.perf_counter() - t
                if which == 0:
                    best_ours = min(best_ours, dt)
                else:
                    best_raw = min(best_raw, dt)
        ours.append(best_ours)
        base.append(best_raw)
    out = {"n": n, "ours_p50_ms": round(percentile(ours, 50) * 1e3, 3),
           "ours_p95_ms": round(percentile(ours, 95) * 1e3, 3),
           "raw_p50_ms": round(percentile(base, 50) * 1e3, 3), "raw_p95_ms": round(percentile(base, 95) * 1e3, 3)}
    out["p50_ratio"] = round(out["ours_p50_ms"] / max(out["raw_p50_ms"], 1e-6), 2)
    print(f"{n} images: search_image p50 {out['ours_p50_ms']} ms / p95 {out['ours_p95_ms']} ms; raw FAISS "
          f"p50 {out['raw_p50_ms']} ms / p95 {out['raw_p95_ms']} ms; ratio {out['p50_ratio']}")
    out["collection"] = collection
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    paths = sorted(GALLERY.glob("img_*.jpg"))
    embedder = LocalImageEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        objects = LocalObjectStore(folder / "objects", fsync=False)
        keys = [objects.put(p.read_bytes(), "image/jpeg") for p in paths]
        real = np.array(embedder.embed_images([p.read_bytes() for p in paths]), dtype=np.float32)
        qs = queries(paths, args.queries)
        embed_times = []
        vectors = []
        for q in qs:
            t = time.perf_counter()
            [v] = embedder.embed_images([q])
            embed_times.append(time.perf_counter() - t)
            vectors.append(v)
        embed = {"p50_ms": round(percentile(embed_times, 50) * 1e3, 2),
                 "p95_ms": round(percentile(embed_times, 95) * 1e3, 2)}
        print(f"query embedding (local descriptor): p50 {embed['p50_ms']} ms, p95 {embed['p95_ms']} ms")
        results = [run_size(int(s), folder, real, keys, objects, qs, vectors, args.repeat)
                   for s in args.sizes.split(",")]
        # The gallery: the 50 best hits of one query, each thumbnail decoded, downscaled and embedded.
        collection = results[0]["collection"]
        providers = SimpleNamespace(image_embedder=SimpleNamespace(embed_images=lambda _i: [vectors[0]]))
        found = search_image(qs[0], providers, collection, k=50)  # type: ignore[arg-type]
        # Filler elements point at keys that hold nothing: give each hit a real picture to draw.
        hits = [replace(h, element=Element.restore(id=h.element.id, kind="image", source=h.element.source,
                                                   text=h.element.text, mime_type="image/jpeg",
                                                   object_key=keys[i % len(keys)], metadata=h.element.metadata))
                for i, h in enumerate(found)]
        renders, size = [], 0
        for _ in range(args.repeat):
            t = time.perf_counter()
            page = gallery_html(hits, objects=objects, query="bench")
            renders.append(time.perf_counter() - t)
            size = len(page.encode())
        gallery = {"hits": len(hits), "render_s": round(min(renders), 3), "bytes": size}
        print(f"gallery of {len(hits)} hits: {gallery['render_s']} s to render, {size / 1e6:.2f} MB")
    for r in results:
        r.pop("collection")
    last = results[-1]
    print(json.dumps({"bench": "gallery", "metric": f"i2i_search_p50_ratio_vs_raw_faiss_{last['n']}",
                      "value": last["p50_ratio"], "goal": 1.11,
                      "baseline": {"sizes": results, "query_embedding": embed, "gallery": gallery,
                                   "queries": len(qs), "k": K}}))


if __name__ == "__main__":
    main()
