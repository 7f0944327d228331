"""The offline text model (MiniLM: numpy, and onnxruntime for batches): load time, one query, batch throughput.

    python bench/text_model.py [--data tests/data] [--texts 100] [--rounds 2] [--runtimes auto,numpy]
                               [--baseline DIR [--baseline-python PY]]

Texts: the bundled sample's PDF text in 1000-character chunks (the size ingest embeds), the first ``--texts``,
and as many short texts (40-200 characters: sentences of the same text, like captions, OCR lines or table rows).
Each round runs a fresh child process per side (alternating, so both see the same machine load) that loads the
model (timed), embeds 10 single queries (median ms; the first apart), then all chunks and then all short texts at
batch size 32 (wall and process CPU; texts/s). Best round per side. The candidate runs once per ``--runtimes`` entry
(``MiniLMEmbeddings(runtime=...)``: ``auto`` = onnxruntime for calls of several texts, ``numpy`` = the numpy forward
pass only); both schedule batches alike (one thread per batch, batches side by side). The ``auto`` side also
reports the onnxruntime session build and one query's forward pass in each kernel (``query_pass_ms``). With
``--baseline DIR`` (a checkout whose ``DIR/.venv/bin/python`` imports mmrag from DIR) it runs too. Vectors are
compared with the first side's (max absolute difference). The last line is one JSON object (value: batch texts/s
of the first side; baseline: the other sides' figures and ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def short_texts(chunks: list[str], limit: int) -> list[str]:
    pieces = [p.strip() for chunk in chunks for p in chunk.split(". ")]
    return [p for p in pieces if 40 <= len(p) <= 200][:limit]


def chunks(data: Path, limit: int) -> list[str]:
    import fitz

    texts: list[str] = []
    for pdf in sorted(data.rglob("*.pdf")):
        with fitz.open(pdf) as doc:
            words = " ".join(" ".join(page.get_text().split()) for page in doc)
        texts += [words[i : i + 1000] for i in range(0, len(words), 1000) if len(words[i : i + 1000]) > 200]
    return texts[:limit]


def child(texts_file: str, vectors_file: str, runtime: str) -> None:
    import numpy as np

    from mmrag.providers.local.local_text import MiniLMEmbeddings

    texts, shorts = json.loads(Path(texts_file).read_text())
    model = MiniLMEmbeddings(runtime=runtime) if runtime in ("auto", "numpy") else MiniLMEmbeddings()  # type: ignore[arg-type]
    t0 = time.perf_counter()
    model.warm_up()
    load = time.perf_counter() - t0
    extra: dict[str, object] = {}
    if runtime == "auto":
        extra = _kernels(model)
    singles = []
    for i in range(10):
        t0 = time.perf_counter()
        model.embed_query(f"what is the horsepower of the Mazda RX4 ({i})")
        singles.append(time.perf_counter() - t0)
    t0, c0 = time.perf_counter(), time.process_time()
    vectors = model.embed_documents(texts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    vectors += model.embed_documents(shorts)
    short_wall, short_cpu = time.perf_counter() - t0, time.process_time() - c0
    np.save(vectors_file, np.array(vectors, dtype=np.float32))
    import mmrag

    print(json.dumps({"load_s": load, "first_query_ms": singles[0] * 1000,
                      "query_ms_median": statistics.median(singles[1:]) * 1000, "batch_wall_s": wall,
                      "batch_cpu_s": cpu, "texts_per_s": len(texts) / wall, "short_wall_s": short_wall,
                      "short_cpu_s": short_cpu, "short_texts_per_s": len(shorts) / short_wall,
                      "mmrag": mmrag.__file__, **extra}))


def _kernels(model: object) -> dict[str, object]:
    """onnxruntime session build (wall, CPU) and one query's forward pass per kernel (median of 10, ms)."""
    import numpy as np

    from mmrag.providers.local._cpu import single_blas_thread

    loaded = model._load()  # type: ignore[attr-defined]
    t0, c0 = time.perf_counter(), time.process_time()
    onnx = loaded.batch_encoder()
    build = (time.perf_counter() - t0, time.process_time() - c0)
    ids = np.array([loaded.tokenizer.encode("what is the horsepower of the Mazda RX4").ids], dtype=np.int64)
    mask = np.ones_like(ids)
    passes: dict[str, float] = {}
    for name, encoder in (("numpy", loaded.encoder), ("onnxruntime", onnx)):
        with single_blas_thread():  # as embed_query runs it: one BLAS thread
            encoder(ids, mask)
            times = []
            for _ in range(10):
                t0 = time.perf_counter()
                encoder(ids, mask)
                times.append(time.perf_counter() - t0)
        passes[name] = round(statistics.median(times) * 1000, 2)
    return {"onnx_session_s": round(build[0], 3), "onnx_session_cpu_s": round(build[1], 3),
            "onnx_kernel": type(onnx).__name__, "query_pass_ms": passes}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "data")
    ap.add_argument("--texts", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", type=Path, default=None)
    ap.add_argument("--baseline-python", default=None)
    ap.add_argument("--runtimes", default="auto,numpy", help="candidate runtimes, comma-separated (%(default)s)")
    ap.add_argument("--child", nargs=3, metavar=("TEXTS", "VECTORS", "RUNTIME"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sides = {f"candidate-{r}": (sys.executable, ROOT, r) for r in args.runtimes.split(",")}
    if args.baseline is not None:
        root = args.baseline.resolve()
        sides["baseline"] = (args.baseline_python or str(root / ".venv" / "bin" / "python"), root, "default")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, list[dict[str, float | str]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="mmrag-bench-text-model-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts = chunks(args.data, args.texts)
        shorts = short_texts(texts, args.texts)
        texts_file.write_text(json.dumps([texts, shorts]))
        print(f"{len(texts)} texts of up to 1000 characters and {len(shorts)} of 40-200 from {args.data}")
        for _ in range(args.rounds):
            for name, (python, root, runtime) in sides.items():
                side_env = {**env, "PYTHONPATH": f"{root}{os.pathsep}{env.get('PYTHONPATH', '')}"}
                out = subprocess.run([python, __file__, "--child", str(texts_file), f"{tmp}/{name}.npy", runtime],
                                     env=side_env, cwd=root, check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))
        import numpy as np

        vectors = {name: np.load(f"{tmp}/{name}.npy") for name in sides}
    first = next(iter(sides))
    best: dict[str, dict[str, Any]] = {}
    for name, rounds in results.items():
        b = best[name] = dict(max(rounds, key=lambda r: float(r["texts_per_s"])))
        b["load_s"] = min(float(r["load_s"]) for r in rounds)
        b["batch_cpu_s"] = min(float(r["batch_cpu_s"]) for r in rounds)
        b["short_cpu_s"] = min(float(r["short_cpu_s"]) for r in rounds)
        b["max_abs_diff_to_" + first] = float(np.abs(vectors[name] - vectors[first]).max())
        kernels = f"; onnxruntime session {b['onnx_session_cpu_s']} s CPU, one query's pass {b['query_pass_ms']} ms" \
            if "query_pass_ms" in b else ""
        print(f"{name:17s} load {float(b['load_s']) * 1000:5.0f} ms; query {float(b['query_ms_median']):5.1f} ms "
              f"(first {float(b['first_query_ms']):.1f}); chunks {float(b['texts_per_s']):5.1f}/s "
              f"({float(b['batch_wall_s']):.2f} s wall, {float(b['batch_cpu_s']):.2f} s CPU); short texts "
              f"{float(b['short_texts_per_s']):5.1f}/s ({float(b['short_cpu_s']):.2f} s CPU); max |vector - {first}| "
              f"{b['max_abs_diff_to_' + first]:.1e}{kernels}  [{b['mmrag']}]")
    ratios: dict[str, dict[str, float]] = {}
    for name in list(sides)[1:]:
        ratios[name] = {
            "chunks_cpu": round(float(best[name]["batch_cpu_s"]) / float(best[first]["batch_cpu_s"]), 3),
            "chunks_wall": round(float(best[name]["batch_wall_s"]) / float(best[first]["batch_wall_s"]), 3),
            "short_cpu": round(float(best[name]["short_cpu_s"]) / float(best[first]["short_cpu_s"]), 3),
            "query": round(float(best[name]["query_ms_median"]) / float(best[first]["query_ms_median"]), 3),
        }
        r = ratios[name]
        print(f"{name} / {first}: chunks CPU {r['chunks_cpu']:.2f}x, wall {r['chunks_wall']:.2f}x; "
              f"short texts CPU {r['short_cpu']:.2f}x; query {r['query']:.2f}x")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps({"bench": "text_model", "metric": f"batch_texts_per_s ({first})",
                      "value": round(float(str(best[first]["texts_per_s"])), 2), "goal": None,
                      "baseline": {"ratios_to_" + first: ratios, "sides": {n: best[n] for n in list(sides)[1:]}},
                      "candidate": best[first]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
