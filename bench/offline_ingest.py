"""Offline ingest of the bundled sample vs what a user would pick instead: a LangChain text-only pipeline.

    python bench/offline_ingest.py [--data tests/data] [--repeat 2] [--ocr auto] [--quick]

Both sides run in fresh child processes (imports and model loading count), one after the other, ``--repeat``
rounds in alternating order; each keeps its best round.

* mmrag: ``mmrag.chains.ingestion.ingest([data])`` with profile local, a fresh ``MMRAG_HOME`` and the model
  cache off: PDFs and HTML parsed into text chunks, tables, images and vector figures; images and scanned pages
  read by OCR; MiniLM text embeddings, local image features; FAISS + SQLite + object store writes.
* baseline: the same files loaded as LangChain's PyMuPDFLoader (``page.get_text()`` per page) and BSHTMLLoader
  (BeautifulSoup ``get_text()``) do, ``RecursiveCharacterTextSplitter(1000, 200)``, the same MiniLM, a FAISS
  ``IndexFlatIP`` written to disk. It extracts no tables, images, figures or OCR text.

Value: mmrag wall ÷ baseline wall (goal ≤ 1.5). The mmrag child also reports a stage breakdown: wall time
spent inside the OCR captioner, the text embedder and the image embedder (wrappers around the providers; the
stages overlap, so they do not add up to the total), and parse time (until the last source is parsed). CPU time
of each child is printed alongside: on a busy machine it is the steadier figure. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- children ------------------------------------------------------------------------------------------------


class _Timed:
    """Delegates to ``inner``; adds the wall time of calls to ``method`` to ``totals[stage]``."""

    def __init__(self, inner: Any, stage: str, methods: tuple[str, ...], totals: dict[str, float]) -> None:
        self._inner, self._stage, self._methods, self._totals = inner, stage, methods, totals

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._methods:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._totals[self._stage] = self._totals.get(self._stage, 0.0) + time.perf_counter() - t

        return timed


def child_mmrag(data: str) -> dict[str, Any]:
    from dataclasses import replace

    from mmrag.chains._components import open_components
    from mmrag.chains.ingestion import ingest
    from mmrag.config import Settings

    settings = Settings()
    providers, collection = open_components(settings)
    totals: dict[str, float] = {}
    providers = replace(
        providers,
        captioner=_Timed(providers.captioner, "ocr_and_table_summaries", ("caption",), totals),
        text_embeddings=_Timed(providers.text_embeddings, "text_embeddings", ("embed_documents",), totals),
        image_embedder=_Timed(providers.image_embedder, "image_embeddings", ("embed_images",), totals),
    )
    start = time.perf_counter()
    last_parse = [start]

    def progress(stage: str, advance: int, total: int | None) -> None:
        if stage == "sources":
            last_parse[0] = time.perf_counter()

    report = ingest([data], settings, providers=providers, collection=collection, progress=progress)
    ocr = getattr(getattr(providers.captioner, "_inner", None), "ocr", None)  # CachedOcrEngine: reads vs repeats
    reads = {"ocr_reads": ocr.misses, "ocr_repeats_served_once": ocr.hits} if hasattr(ocr, "misses") else {}
    return {"ok": report.ok, "elements": report.elements, "parse_until_last_source": last_parse[0] - start,
            **reads, **{k: round(v, 3) for k, v in totals.items()}}


def child_baseline(data: str, out: str) -> dict[str, Any]:
    import faiss
    import fitz
    import numpy as np
    from bs4 import BeautifulSoup
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from mmrag.providers.local.local_text import MiniLMEmbeddings

    t = time.perf_counter()
    docs: list[Document] = []
    for path in sorted(Path(data).rglob("*")):
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            with fitz.open(path) as pdf:
                docs.extend(Document(page.get_text(), metadata={"source": str(path), "page": i})
                            for i, page in enumerate(pdf))
        elif suffix in (".html", ".htm"):
            soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "lxml")
            title = soup.title.string if soup.title else ""
            docs.append(Document(soup.get_text(), metadata={"source": str(path), "title": title}))
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    load_split = time.perf_counter() - t
    t = time.perf_counter()
    vectors = MiniLMEmbeddings().embed_documents([c.page_content for c in chunks])
    embed = time.perf_counter() - t
    index = faiss.IndexFlatIP(len(vectors[0]))
    index.add(np.asarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(Path(out) / "index.faiss"))
    return {"documents": len(docs), "chunks": len(chunks), "load_and_split": round(load_split, 3),
            "text_embeddings": round(embed, 3)}


# --- parent --------------------------------------------------------------------------------------------------


def run_child(which: str, data: str, ocr: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"mmrag-bench-{which}-") as home:
        env = {**os.environ, "MMRAG_HOME": home, "MMRAG_PROFILE": "local", "MMRAG_CACHE": "0", "MMRAG_OCR": ocr}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", which, "--data", data, "--out", home],
                              env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{which} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = round(wall, 2)
    result["cpu"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="tests/data")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ocr", default="auto", help="MMRAG_OCR for the mmrag side (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="one round of each (same as --repeat 1)")
    ap.add_argument("--child", choices=("mmrag", "baseline"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        result = child_mmrag(args.data) if args.child == "mmrag" else child_baseline(args.data, args.out)
        print(json.dumps(result, default=str))
        return 0

    if args.quick:
        args.repeat = 1
    runs: dict[str, list[dict[str, Any]]] = {"mmrag": [], "baseline": []}
    for r in range(args.repeat):
        for which in ("mmrag", "baseline") if r % 2 == 0 else ("baseline", "mmrag"):
            result = run_child(which, args.data, args.ocr)
            runs[which].append(result)
            print(f"round {r + 1} {which:8s} wall {result['wall']:7.1f} s  cpu {result['cpu']:7.1f} s  "
                  + json.dumps({k: v for k, v in result.items() if k not in ("wall", "cpu")}))
    best = {w: min(rs, key=lambda x: x["wall"]) for w, rs in runs.items()}
    ratio = best["mmrag"]["wall"] / best["baseline"]["wall"]
    cpu_ratio = best["mmrag"]["cpu"] / best["baseline"]["cpu"]
    print(f"mmrag {best['mmrag']['wall']:.1f} s vs LangChain text-only {best['baseline']['wall']:.1f} s: "
          f"ratio {ratio:.2f} (CPU time ratio {cpu_ratio:.2f}); walls mmrag "
          f"{[x['wall'] for x in runs['mmrag']]}, baseline {[x['wall'] for x in runs['baseline']]}")
    print(json.dumps({"bench": "offline_ingest", "metric": "wall_ratio_vs_langchain_text_only",
                      "value": round(ratio, 3), "goal": 1.5,
                      "baseline": {"langchain_text_only_seconds": best["baseline"]["wall"],
                                   "langchain_text_only_cpu_seconds": best["baseline"]["cpu"]},
                      "mmrag_seconds": best["mmrag"]["wall"], "mmrag_cpu_seconds": best["mmrag"]["cpu"],
                      "cpu_ratio": round(cpu_ratio, 3), "ocr": args.ocr,
                      "load_average_1min": round(os.getloadavg()[0], 2),
                      "stages": {k: v for k, v in best["mmrag"].items() if k not in ("wall", "cpu")},
                      "rounds": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
