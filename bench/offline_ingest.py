"""Offline ingest of the bundled sample vs the pipeline a LangChain user would build to get the same words out.

    python bench/offline_ingest.py [--data tests/data] [--repeat 2] [--ocr auto] [--quick] [--before DIR]

Four sides, each in a fresh child process (imports and model loading count), ``--repeat`` rounds in rotating order;
each keeps its best round. All read the same files: the PDFs, web pages and image files under ``--data`` (videos,
audio and anything else are left out of every side: LangChain's pipeline has no loader for them).

* ``mmrag``: ``mmrag.chains.ingestion.ingest(files)`` with profile local, a fresh ``MMRAG_HOME`` and the model
  cache off: PDFs and HTML parsed into text chunks, tables, images and vector figures; images and scanned pages
  read by OCR; MiniLM text embeddings, local image features; FAISS + SQLite + object store writes.
* ``langchain_ocr`` (issue 29's baseline): ``PyMuPDFLoader(extract_images=True,
  images_parser=RapidOCRBlobParser())`` for the PDFs (the stock parser OCRs every embedded image, rapidocr 3.x
  with its PP-OCRv6 small models), ``BSHTMLLoader`` for the web pages, ``GenericLoader`` + ``RapidOCRBlobParser``
  for the image files, ``RecursiveCharacterTextSplitter(1000, 200)``, the same MiniLM, LangChain's FAISS store
  saved to disk.
* ``mmrag_ocr_off``: the mmrag side with ``MMRAG_OCR=off``.
* ``text_only`` (the old baseline): the text layers loaded as PyMuPDFLoader (``page.get_text()``) and BSHTMLLoader
  (BeautifulSoup ``get_text()``) do, the same splitter and MiniLM, a FAISS ``IndexFlatIP`` written to disk.

Value: mmrag wall ÷ langchain_ocr wall (goal ≤ 0.7); ``ocr_off_ratio``: mmrag_ocr_off wall ÷ text_only wall (goal
≤ 1.5). Both children of a pair record what they read with OCR, and the bench compares them: which pages and images
each side read (``file#pageN`` inside a PDF, else the image file), characters recognised on the scanned pages,
and word overlap where both read (``compare_ocr``). The mmrag child also reports a stage breakdown:

* ``cpu_by_stage``: CPU seconds of every thread booked to parse, ocr, text_embed, image_embed and
  write_and_other (the manifest, index and object writes, table summaries and glue); these add up to the
  ingest's CPU time. ``startup_cpu`` is imports and opening the collection, before the ingest starts.
* ``wall_active``: wall seconds during which each stage ran (parse: until the last source was parsed). The
  stages overlap, so these do not add up to the wall time; ``cpu / wall`` shows how much of the 2 cores was used.

CPU time of each child and the load average are printed alongside: on a busy machine CPU is the steadier figure.
The last line is one JSON object.

``--before DIR`` also runs the mmrag side from another checkout (e.g. ``git worktree add --detach /tmp/before main``),
importing all of mmrag from DIR with this interpreter and reading DIR's copy of ``--data``, in the same
rounds (rotating order), and reports this checkout's figures as ratios to it (``vs_before``: wall, CPU, CPU per
stage such as ``ocr``, whether the element counts are the same, and the OCR comparison with it). Each mmrag child
reports the checkout(s) it imported mmrag from (``imported_from``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
HTML_SUFFIXES = (".html", ".htm")


def bench_files(data: str) -> list[Path]:
    """The files both sides read: PDFs, web pages and image files. Videos, audio and everything else are left out
    (LangChain's pipeline has no loader for them), and so are hidden files, as ``mmrag ingest FOLDER`` does."""
    root = Path(data)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".pdf", *HTML_SUFFIXES,
                                                                                      *IMAGE_SUFFIXES)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _place(el: Any, data: str) -> tuple[str, str]:
    """(where, what) of an image or page mmrag read with OCR: ``file#pageN`` inside a PDF, else the image file."""
    rel = os.path.relpath(el.source, data)
    if el.kind == "page":
        return f"{rel}#page{el.page}", "scanned page" if el.metadata.get("needs_ocr") else "page render"
    if rel.lower().endswith(".pdf"):
        return f"{rel}#page{el.page}", "pdf image"
    label = el.metadata.get("src")
    if rel.lower().endswith(HTML_SUFFIXES) and isinstance(label, str):
        target = os.path.join(os.path.dirname(el.source), label.split("?")[0].removeprefix("file://"))
        return os.path.relpath(target, data), "html image"
    return rel, "image file"


def child_mmrag(data: str) -> dict[str, Any]:
    import hashlib
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
    texts: dict[str, tuple[str, float]] = {}  # sha256 of the bytes read -> (the text OCR found, thread CPU seconds)
    places: dict[str, set[tuple[str, str]]] = {}  # sha256 -> where those bytes came from

    class Recording:  # the engine, with what it read kept for the comparison with stock RapidOCR
        def __getattr__(self, name: str) -> Any:
            return getattr(ocr, name)

        def read(self, image: bytes) -> Any:
            t = time.thread_time()  # one onnxruntime thread per read: it runs in the calling thread
            result = ocr.read(image)
            texts[hashlib.sha256(image).hexdigest()] = (result.text, time.thread_time() - t)
            return result

    if ocr is not None:  # the local captioner (cache off): time the OCR engine itself, not table summaries
        captioner.ocr = clock.wrap(Recording(), "ocr", ("read",))
        caption = captioner.caption

        def located(elements: Any) -> Any:
            for el in elements:
                if el.kind in ("image", "page") and el.data is not None:
                    places.setdefault(hashlib.sha256(el.data).hexdigest(), set()).add(_place(el, data))
            return caption(elements)

        captioner.caption = located
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
    report = ingest([str(p) for p in bench_files(data)], settings, providers=providers, collection=collection,
                    progress=progress)
    wall = time.perf_counter() - start
    clock.stop()
    reads = {"ocr_reads": ocr.misses, "ocr_repeats_served_once": ocr.hits} if hasattr(ocr, "misses") else {}
    import mmrag
    import mmrag.chains
    import mmrag.providers.local.ocr

    imported = sorted({str(Path(m.__file__ or "").resolve().parent.parent) for m in (mmrag, mmrag.chains)}
                      | {str(Path(mmrag.providers.local.ocr.__file__ or "").resolve().parents[3])})
    ocr_text = [{"places": sorted(places.get(sha, {("?", "?")})), "text": text, "cpu_s": round(cpu, 3)}
                for sha, (text, cpu) in texts.items()]
    return {"ok": report.ok, "imported_from": imported, "elements": report.elements, "ingest_wall": round(wall, 2),
            "startup_cpu": round(startup_cpu, 2),
            "cpu_by_stage": {k: round(v, 2) for k, v in sorted(clock.cpu.items())},
            "wall_active": {"parse": round(last_parse[0] - start, 2),
                            **{k: round(clock.wall(k), 2) for k in ("ocr", "text_embed", "image_embed")}},
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), **reads,
            "ocr_text": ocr_text}


def child_langchain_ocr(data: str, out: str) -> dict[str, Any]:
    """The pipeline of issue 29: LangChain's own loaders with its RapidOCR image parser, split, MiniLM, FAISS."""
    from langchain_community.document_loaders import BSHTMLLoader, PyMuPDFLoader
    from langchain_community.document_loaders.generic import GenericLoader
    from langchain_community.document_loaders.parsers.images import RapidOCRBlobParser
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from mmrag.providers.local.local_text import MiniLMEmbeddings

    read: list[tuple[str, float]] = []

    class Recording(RapidOCRBlobParser):  # stock parser; only keeps what it read for the comparison
        def _analyze_image(self, img: Any) -> str:
            t = time.process_time()  # rapidocr's threads included; nothing else runs meanwhile
            text: str = super()._analyze_image(img)
            read.append((text, time.process_time() - t))
            return text

    parser = Recording()
    ocr_text: list[dict[str, Any]] = []
    t = time.perf_counter()
    docs: list[Document] = []
    files = bench_files(data)
    for path in files:
        rel = os.path.relpath(path, data)
        if path.suffix.lower() == ".pdf":
            for doc in PyMuPDFLoader(str(path), mode="page", extract_images=True, images_parser=parser).lazy_load():
                where = f"{rel}#page{int(doc.metadata.get('page', 0)) + 1}"
                ocr_text.extend({"places": [(where, "pdf image")], "text": text, "cpu_s": round(cpu, 3)}
                                for text, cpu in read)
                read.clear()
                docs.append(doc)
        elif path.suffix.lower() in HTML_SUFFIXES:
            docs.extend(BSHTMLLoader(str(path), open_encoding="utf-8").load())
    # Hidden files and folders left out, as mmrag does (GenericLoader's default glob skips hidden files only).
    images = GenericLoader.from_filesystem(data, glob="**/[!.]*", exclude=[".*/*"], suffixes=list(IMAGE_SUFFIXES),
                                           parser=parser)
    seen = set()
    for doc in images.lazy_load():
        docs.append(doc)
        seen.add(os.path.relpath(str(doc.metadata.get("source")), data))
        ocr_text.append({"places": [(os.path.relpath(str(doc.metadata.get("source")), data), "image file")],
                         "text": read[-1][0], "cpu_s": round(read[-1][1], 3)})
        read.clear()
    wanted = {os.path.relpath(p, data) for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    if seen != wanted:
        raise SystemExit(f"GenericLoader read other image files than mmrag: {sorted(seen ^ wanted)}")
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    load_split = time.perf_counter() - t
    t = time.perf_counter()
    store = FAISS.from_documents(chunks, MiniLMEmbeddings())
    store.save_local(out)
    return {"documents": len(docs), "chunks": len(chunks), "load_ocr_and_split": round(load_split, 3),
            "embed_and_index": round(time.perf_counter() - t, 3), "ocr_text": ocr_text}


def child_text_only(data: str, out: str) -> dict[str, Any]:
    """The old baseline: the text layers only, loaded as PyMuPDFLoader and BSHTMLLoader do, split, MiniLM, FAISS."""
    import faiss
    import fitz
    import numpy as np
    from bs4 import BeautifulSoup
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from mmrag.providers.local.local_text import MiniLMEmbeddings

    t = time.perf_counter()
    docs: list[Document] = []
    for path in bench_files(data):
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            with fitz.open(path) as pdf:
                docs.extend(Document(page.get_text(), metadata={"source": str(path), "page": i})
                            for i, page in enumerate(pdf))
        elif suffix in HTML_SUFFIXES:
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


_WORD = re.compile(r"[a-z0-9]{2,}")


def _words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.lower()))


def _by_place(reads: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """where -> (what, all text read there); a read found at several places counts at each."""
    out: dict[str, tuple[str, str]] = {}
    for read in reads:
        for where, what in read["places"]:
            old = out.get(where, (what, ""))
            out[where] = (old[0] if old[0] == "scanned page" else what, (old[1] + "\n" + read["text"]).strip())
    return out


def _overlap(ours: Counter[str], stock: Counter[str]) -> dict[str, Any]:
    common = sum((ours & stock).values())
    return {"words_mmrag": sum(ours.values()), "words_stock": sum(stock.values()),
            "stock_words_also_read_by_mmrag": round(common / max(1, sum(stock.values())), 3),
            "mmrag_words_also_read_by_stock": round(common / max(1, sum(ours.values())), 3)}


def compare_ocr(mmrag: list[dict[str, Any]], stock: list[dict[str, Any]]) -> dict[str, Any]:
    """Which pages and images each side read with OCR, characters on the scanned pages, and word overlap.

    Scanned pages are the pages mmrag found without a text layer (the stock pipeline OCRs their one image).
    "At least as good" here: on the scanned pages mmrag recognises at least 95% of stock's characters, and at
    least 90% of the words stock read wherever both read (words of 2+ letters or digits, counted with repeats).
    """
    ours, theirs = _by_place(mmrag), _by_place(stock)
    cpu: dict[str, dict[str, float]] = {}
    for side, reads in (("mmrag", mmrag), ("stock", stock)):
        for read in reads:  # a read counts once, under the kind of its first place (a scanned page first)
            what = min((what for _, what in read["places"]), key=lambda w: (w != "scanned page", w))
            cpu.setdefault(side, {})[what] = round(cpu.get(side, {}).get(what, 0.0) + read.get("cpu_s", 0.0), 2)
    kinds = sorted({what for what, _ in ours.values()} | {what for what, _ in theirs.values()})
    read_by = {side: {k: sum(1 for what, _ in places.values() if what == k) for k in kinds}
               for side, places in (("mmrag", ours), ("stock", theirs))}
    scanned = sorted(w for w, (what, _) in ours.items() if what == "scanned page")
    chars = {w: {"mmrag": len(ours[w][1]), "stock": len(theirs.get(w, ("", ""))[1])} for w in scanned}
    both = sorted(set(ours) & set(theirs))
    all_ours = sum((_words(ours[w][1]) for w in both), Counter())
    all_stock = sum((_words(theirs[w][1]) for w in both), Counter())
    scan_ours = sum((_words(ours[w][1]) for w in scanned if w in theirs), Counter())
    scan_stock = sum((_words(theirs[w][1]) for w in scanned if w in theirs), Counter())
    scanned_chars = {side: sum(c[side] for c in chars.values()) for side in ("mmrag", "stock")}
    overall = _overlap(all_ours, all_stock)
    good = (scanned_chars["mmrag"] >= 0.95 * scanned_chars["stock"]
            and overall["stock_words_also_read_by_mmrag"] >= 0.9)
    return {"read_with_ocr": read_by, "ocr_cpu_s_by_kind": cpu, "only_mmrag": sorted(set(ours) - set(theirs)),
            "only_stock": sorted(set(theirs) - set(ours)), "read_by_both": len(both),
            "scanned_page_chars": chars, "scanned_chars_total": scanned_chars,
            "word_overlap_scanned": _overlap(scan_ours, scan_stock), "word_overlap_all_common": overall,
            "stock_words_mmrag_missed": [w for w, _ in (all_stock - all_ours).most_common(12)],
            "mmrag_words_stock_missed": [w for w, _ in (all_ours - all_stock).most_common(12)],
            "mmrag_ocr_at_least_as_good": good}


SIDES = ("mmrag", "langchain_ocr", "mmrag_ocr_off", "text_only")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="tests/data")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ocr", default="auto", help="MMRAG_OCR for the mmrag side (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="one round of each (same as --repeat 1)")
    ap.add_argument("--before", type=Path, default=None,
                    help="another mmrag checkout whose ingest runs side by side (mmrag imported from DIR)")
    ap.add_argument("--child", choices=("mmrag", "langchain_ocr", "text_only"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if os.environ.get(_CHECKOUT_ENV):
            _use_checkout(Path(os.environ[_CHECKOUT_ENV]))
        if args.child == "mmrag":
            result = child_mmrag(args.data)
        elif args.child == "langchain_ocr":
            result = child_langchain_ocr(args.data, args.out)
        else:
            result = child_text_only(args.data, args.out)
        print(json.dumps(result, default=str))
        return 0

    if args.quick:
        args.repeat = 1
    import importlib.util

    if importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("langchain_community") is None:
        print("error: the LangChain OCR baseline needs rapidocr 3.x and langchain-community: "
              "pip install -e '.[bench]'", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()}; {len(bench_files(args.data))} files in {args.data}", flush=True)
    sides = list(SIDES) + (["before"] if args.before else [])
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    texts: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.repeat):
        for which in sides[r % len(sides):] + sides[:r % len(sides)]:
            if which == "before":
                result = run_child("mmrag", args.data, args.ocr, checkout=args.before.resolve())
            else:
                result = run_child("mmrag" if which.startswith("mmrag") else which, args.data,
                                   "off" if which == "mmrag_ocr_off" else args.ocr)
            texts.setdefault(which, result.pop("ocr_text", []))
            runs[which].append(result)
            print(f"round {r + 1} {which:13s} wall {result['wall']:7.1f} s  cpu {result['cpu']:7.1f} s  "
                  + json.dumps({k: v for k, v in result.items() if k not in ("wall", "cpu")}), flush=True)
    best = {w: min(rs, key=lambda x: x["wall"]) for w, rs in runs.items()}
    ratio = best["mmrag"]["wall"] / best["langchain_ocr"]["wall"]
    cpu_ratio = best["mmrag"]["cpu"] / best["langchain_ocr"]["cpu"]
    off_ratio = best["mmrag_ocr_off"]["wall"] / best["text_only"]["wall"]
    ocr = compare_ocr(texts["mmrag"], texts["langchain_ocr"])
    print("OCR, mmrag vs stock RapidOCR (LangChain's parser): " + json.dumps(ocr))
    print(f"mmrag {best['mmrag']['wall']:.1f} s vs LangChain OCR pipeline {best['langchain_ocr']['wall']:.1f} s: "
          f"ratio {ratio:.2f} (CPU time ratio {cpu_ratio:.2f}); walls mmrag {[x['wall'] for x in runs['mmrag']]}, "
          f"langchain_ocr {[x['wall'] for x in runs['langchain_ocr']]}")
    print(f"OCR off: mmrag {best['mmrag_ocr_off']['wall']:.1f} s vs LangChain text-only {best['text_only']['wall']:.1f}"
          f" s: ratio {off_ratio:.2f}; mmrag cpu_by_stage {best['mmrag']['cpu_by_stage']}")
    vs_before: dict[str, Any] = {}
    if args.before:
        now, then = best["mmrag"], best["before"]
        vs_before = {"before": str(args.before), "wall": round(now["wall"] / then["wall"], 3),
                     "cpu": round(now["cpu"] / then["cpu"], 3),
                     "cpu_by_stage": {k: round(v / then["cpu_by_stage"][k], 3) for k, v in now["cpu_by_stage"].items()
                                      if then["cpu_by_stage"].get(k)},
                     "elements_same": now["elements"] == then["elements"],
                     "ocr_vs_before": {k: v for k, v in compare_ocr(texts["mmrag"], texts["before"]).items()
                                       if k in ("scanned_chars_total", "word_overlap_all_common", "only_mmrag",
                                                "only_stock")}}
        print(f"vs {args.before}: wall {now['wall']:.1f} / {then['wall']:.1f} s, CPU {now['cpu']:.1f} / "
              f"{then['cpu']:.1f} s, OCR CPU {now['cpu_by_stage'].get('ocr', 0):.1f} / "
              f"{then['cpu_by_stage'].get('ocr', 0):.1f} s; elements {now['elements']} / {then['elements']}")
    print(json.dumps({"bench": "offline_ingest", "metric": "wall_ratio_vs_langchain_ocr_pipeline",
                      "value": round(ratio, 3), "goal": 0.7, "ocr_off_ratio": round(off_ratio, 3),
                      "ocr_off_goal": 1.5,
                      "baseline": {"langchain_ocr_seconds": best["langchain_ocr"]["wall"],
                                   "langchain_ocr_cpu_seconds": best["langchain_ocr"]["cpu"],
                                   "langchain_text_only_seconds": best["text_only"]["wall"],
                                   "mmrag_ocr_off_seconds": best["mmrag_ocr_off"]["wall"]},
                      "mmrag_seconds": best["mmrag"]["wall"], "mmrag_cpu_seconds": best["mmrag"]["cpu"],
                      "cpu_ratio": round(cpu_ratio, 3), "ocr": args.ocr,
                      "mmrag_ocr_at_least_as_good": ocr["mmrag_ocr_at_least_as_good"],
                      "ocr_reads": ocr["read_with_ocr"], "ocr_cpu_s_by_kind": ocr["ocr_cpu_s_by_kind"],
                      "scanned_chars": ocr["scanned_chars_total"],
                      "word_overlap": ocr["word_overlap_all_common"],
                      "load_average_1min": round(os.getloadavg()[0], 2),
                      "stages": {k: v for k, v in best["mmrag"].items() if k not in ("wall", "cpu")},
                      **({"vs_before": vs_before} if vs_before else {}), "rounds": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
