"""Offline ingest of the bundled sample vs what a user would pick instead: a LangChain text-only pipeline.

    python bench/offline_ingest.py [--data tests/data] [--repeat 2] [--ocr auto] [--quick] [--before DIR]

Both sides run in fresh child processes (imports and model loading count), one after the other, ``--repeat``
rounds in alternating order; each keeps its best round.

* mmrag: ``mmrag.chains.ingestion.ingest([data])`` with profile local, a fresh ``MMRAG_HOME`` and the model
  cache off: PDFs and HTML parsed into text chunks, tables, images and vector figures; images and scanned pages
  read by OCR; MiniLM text embeddings, local image features; FAISS + SQLite + object store writes.
* baseline: the same files loaded as LangChain's PyMuPDFLoader (``page.get_text()`` per page) and BSHTMLLoader
  (BeautifulSoup ``get_text()``) do, ``RecursiveCharacterTextSplitter(1000, 200)``, the same MiniLM, a FAISS
  ``IndexFlatIP`` written to disk. It extracts no tables, images, figures or OCR text.

Value: mmrag wall ÷ baseline wall (goal ≤ 1.5). The mmrag child also reports a stage breakdown:

* ``cpu_by_stage``: CPU seconds of every thread booked to parse, ocr, text_embed, image_embed and
  write_and_other (the manifest, index and object writes, table summaries and glue); these add up to the
  ingest's CPU time. ``startup_cpu`` is imports and opening the collection, before the ingest starts.
* ``wall_active``: wall seconds during which each stage ran (parse: until the last source was parsed). The
  stages overlap, so these do not add up to the wall time; ``cpu / wall`` shows how much of the 2 cores was used.

CPU time of each child is printed alongside: on a busy machine it is the steadier figure. The last line is one
JSON object.

``--before DIR`` also runs the mmrag side from another checkout (e.g. ``git worktree add --detach /tmp/before main``),
importing all of mmrag from DIR with this interpreter and reading DIR's copy of ``--data``, in the same
rounds (rotating order), and reports this checkout's figures as ratios to it (``vs_before``: wall, CPU, CPU per
stage such as ``ocr``, and whether the element counts are the same). Each mmrag child reports the checkout(s) it
imported mmrag from (``imported_from``).
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


class _StageClock:
    """CPU seconds per stage, from every thread of this process, and wall seconds each stage was active.

    A sampler reads each OS thread's CPU time (``/proc/self/task``) every 100 ms and books the increase to the
    stage that thread is in: the one a wrapper below set on entry (OCR reads, image embeddings, text embedding
    calls), else by the thread's name (``MainThread`` parses, ``mmrag-minilm`` embeds text, the rest writes and
    glues). Wall seconds are the union of intervals during which at least one call of a stage ran.
    """

    def __init__(self) -> None:
        import threading

        self.cpu: dict[str, float] = {}
        self.active: dict[str, list[tuple[float, float]]] = {}
        self._stage_of: dict[int, str] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def _sample(self) -> None:
        import threading

        names = {t.native_id: t.name for t in threading.enumerate()}
        for task in os.scandir("/proc/self/task"):
            try:
                with open(f"{task.path}/stat", encoding="ascii") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tid = int(task.name)
            cpu = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
            delta = cpu - self._last.get(tid, 0.0)
            self._last[tid] = cpu
            if delta <= 0:
                continue
            stage = self._stage_of.get(tid) or _stage_by_name(names.get(tid, ""))
            self.cpu[stage] = self.cpu.get(stage, 0.0) + delta

    def wrap(self, inner: Any, stage: str, methods: tuple[str, ...]) -> Any:
        clock = self

        class Timed:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(inner, name)
                if name not in methods:
                    return attr

                def timed(*args: Any, **kwargs: Any) -> Any:
                    import threading

                    tid = threading.get_native_id()
                    outer = clock._stage_of.get(tid)
                    clock._stage_of[tid] = stage
                    t = time.perf_counter()
                    try:
                        return attr(*args, **kwargs)
                    finally:
                        clock.active.setdefault(stage, []).append((t, time.perf_counter()))
                        if outer is None:
                            clock._stage_of.pop(tid, None)
                        else:
                            clock._stage_of[tid] = outer

                return timed

        return Timed()

    def wall(self, stage: str) -> float:
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.active.get(stage, [])):
            if b > end:
                total += b - max(a, end)
                end = b
        return total


def _stage_by_name(name: str) -> str:
    if name == "MainThread":
        return "parse"
    if name.startswith("mmrag-minilm"):
        return "text_embed"
    if name == "bench-sampler":
        return "bench"
    return "write_and_other"


_CHECKOUT_ENV = "MMRAG_BENCH_CHECKOUT"
_MAPPED = ("chains", "parsers", "retrievers")  # top-level folders installed as mmrag.<name> (pyproject package-dir)


def _use_checkout(root: Path) -> None:
    """Import ``mmrag.chains``/``parsers``/``retrievers`` from ``root`` too: an editable install maps them to its own
    tree with a finder ahead of ``PYTHONPATH``, so a ``--before`` child would otherwise mix two checkouts."""
    import importlib.util

    class _Finder:
        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
            parts = name.split(".")
            if len(parts) == 2 and parts[0] == "mmrag" and parts[1] in _MAPPED:
                folder = root / parts[1]
                return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                              submodule_search_locations=[str(folder)])
            return None

    sys.meta_path.insert(0, _Finder)


def child_mmrag(data: str) -> dict[str, Any]:
    from dataclasses import replace

    from mmrag.chains._components import open_components
    from mmrag.chains.ingestion import ingest
    from mmrag.config import Settings

    settings = Settings()
    providers, collection = open_components(settings)
    startup_cpu = time.process_time()
    clock = _StageClock()
    captioner = providers.captioner
    ocr = getattr(captioner, "ocr", None)
    if ocr is not None:  # the local captioner (cache off): time the OCR engine itself, not table summaries
        captioner.ocr = clock.wrap(ocr, "ocr", ("read",))
    providers = replace(
        providers,
        text_embeddings=clock.wrap(providers.text_embeddings, "text_embed", ("embed_documents",)),
        image_embedder=clock.wrap(providers.image_embedder, "image_embed",
                                  ("embed_images", "embed_images_by_kind")),
    )
    start = time.perf_counter()
    last_parse = [start]

    def progress(stage: str, advance: int, total: int | None) -> None:
        if stage == "sources":
            last_parse[0] = time.perf_counter()

    clock.start()
    report = ingest([data], settings, providers=providers, collection=collection, progress=progress)
    wall = time.perf_counter() - start
    clock.stop()
    reads = {"ocr_reads": ocr.misses, "ocr_repeats_served_once": ocr.hits} if hasattr(ocr, "misses") else {}
    import mmrag
    import mmrag.chains
    import mmrag.providers.local.ocr

    imported = sorted({str(Path(m.__file__ or "").resolve().parent.parent) for m in (mmrag, mmrag.chains)}
                      | {str(Path(mmrag.providers.local.ocr.__file__ or "").resolve().parents[3])})
    return {"ok": report.ok, "imported_from": imported, "elements": report.elements, "ingest_wall": round(wall, 2),
            "startup_cpu": round(startup_cpu, 2),
            "cpu_by_stage": {k: round(v, 2) for k, v in sorted(clock.cpu.items())},
            "wall_active": {"parse": round(last_parse[0] - start, 2),
                            **{k: round(clock.wall(k), 2) for k in ("ocr", "text_embed", "image_embed")}},
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), **reads}


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


def run_child(which: str, data: str, ocr: str, checkout: Path | None = None) -> dict[str, Any]:
    """One child: ``which`` side, importing mmrag from ``checkout`` (a ``--before`` DIR) or from this tree."""
    with tempfile.TemporaryDirectory(prefix=f"mmrag-bench-{which}-") as home:
        env = {**os.environ, "MMRAG_HOME": home, "MMRAG_PROFILE": "local", "MMRAG_CACHE": "0", "MMRAG_OCR": ocr}
        cwd = ROOT
        if checkout is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])])
            env[_CHECKOUT_ENV] = str(checkout)
            cwd = checkout
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", which, "--data", data, "--out", home],
                              env=env, cwd=cwd, capture_output=True, text=True, check=False)
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
    ap.add_argument("--before", type=Path, default=None,
                    help="another mmrag checkout whose ingest runs side by side (mmrag imported from DIR)")
    ap.add_argument("--child", choices=("mmrag", "baseline"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if os.environ.get(_CHECKOUT_ENV):
            _use_checkout(Path(os.environ[_CHECKOUT_ENV]))
        result = child_mmrag(args.data) if args.child == "mmrag" else child_baseline(args.data, args.out)
        print(json.dumps(result, default=str))
        return 0

    if args.quick:
        args.repeat = 1
    sides = ["mmrag", "baseline"] + (["before"] if args.before else [])
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(args.repeat):
        for which in sides[r % len(sides):] + sides[:r % len(sides)]:
            if which == "before":
                result = run_child("mmrag", args.data, args.ocr, checkout=args.before.resolve())
            else:
                result = run_child(which, args.data, args.ocr)
            runs[which].append(result)
            print(f"round {r + 1} {which:8s} wall {result['wall']:7.1f} s  cpu {result['cpu']:7.1f} s  "
                  + json.dumps({k: v for k, v in result.items() if k not in ("wall", "cpu")}), flush=True)
    best = {w: min(rs, key=lambda x: x["wall"]) for w, rs in runs.items()}
    ratio = best["mmrag"]["wall"] / best["baseline"]["wall"]
    cpu_ratio = best["mmrag"]["cpu"] / best["baseline"]["cpu"]
    print(f"mmrag {best['mmrag']['wall']:.1f} s vs LangChain text-only {best['baseline']['wall']:.1f} s: "
          f"ratio {ratio:.2f} (CPU time ratio {cpu_ratio:.2f}); walls mmrag "
          f"{[x['wall'] for x in runs['mmrag']]}, baseline {[x['wall'] for x in runs['baseline']]}")
    vs_before: dict[str, Any] = {}
    if args.before:
        best["before"] = min(runs["before"], key=lambda x: x["wall"])
        now, then = best["mmrag"], best["before"]
        vs_before = {"before": str(args.before), "wall": round(now["wall"] / then["wall"], 3),
                     "cpu": round(now["cpu"] / then["cpu"], 3),
                     "cpu_by_stage": {k: round(v / then["cpu_by_stage"][k], 3) for k, v in now["cpu_by_stage"].items()
                                      if then["cpu_by_stage"].get(k)},
                     "elements_same": now["elements"] == then["elements"]}
        print(f"vs {args.before}: wall {now['wall']:.1f} / {then['wall']:.1f} s, CPU {now['cpu']:.1f} / "
              f"{then['cpu']:.1f} s, OCR CPU {now['cpu_by_stage'].get('ocr', 0):.1f} / "
              f"{then['cpu_by_stage'].get('ocr', 0):.1f} s; elements {now['elements']} / {then['elements']}")
    print(json.dumps({"bench": "offline_ingest", "metric": "wall_ratio_vs_langchain_text_only",
                      "value": round(ratio, 3), "goal": 1.5,
                      "baseline": {"langchain_text_only_seconds": best["baseline"]["wall"],
                                   "langchain_text_only_cpu_seconds": best["baseline"]["cpu"]},
                      "mmrag_seconds": best["mmrag"]["wall"], "mmrag_cpu_seconds": best["mmrag"]["cpu"],
                      "cpu_ratio": round(cpu_ratio, 3), "ocr": args.ocr,
                      "load_average_1min": round(os.getloadavg()[0], 2),
                      "stages": {k: v for k, v in best["mmrag"].items() if k not in ("wall", "cpu")},
                      **({"vs_before": vs_before} if vs_before else {}), "rounds": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
