"""The offline text model (MiniLM in numpy): load time, one query, and batch throughput, optionally vs another checkout.

    python bench/text_model.py [--data tests/data] [--texts 100] [--rounds 2] [--baseline DIR [--baseline-python PY]]

Texts: the bundled sample's PDF text in 1000-character chunks (the size ingest embeds), the first ``--texts``,
and as many short texts (40-200 characters: sentences of the same text, like captions, OCR lines or table rows).
Each round runs a fresh child process per side (alternating, so both see the same machine load) that loads the
model (timed), embeds 10 single queries (median ms; the first apart), then all chunks and then all short texts at
batch size 32 (wall and process CPU; texts/s). Best round per side. With ``--baseline DIR`` (a checkout whose
``DIR/.venv/bin/python`` imports mmrag from DIR) the vectors of both sides are compared (max absolute difference).
The last line is one JSON object (value: batch texts/s; baseline: the other side's figures).
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


def child(texts_file: str, vectors_file: str) -> None:
    import numpy as np

    from mmrag.providers.local.local_text import MiniLMEmbeddings

    texts, shorts = json.loads(Path(texts_file).read_text())
    model = MiniLMEmbeddings()
    t0 = time.perf_counter()
    model.warm_up()
    load = time.perf_counter() - t0
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
                      "mmrag": mmrag.__file__}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "data")
    ap.add_argument("--texts", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", type=Path, default=None)
    ap.add_argument("--baseline-python", default=None)
    ap.add_argument("--child", nargs=2, metavar=("TEXTS", "VECTORS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sides = {"candidate": (sys.executable, ROOT)}
    if args.baseline is not None:
        root = args.baseline.resolve()
        sides["baseline"] = (args.baseline_python or str(root / ".venv" / "bin" / "python"), root)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, list[dict[str, float | str]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="mmrag-bench-text-model-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts = chunks(args.data, args.texts)
        shorts = short_texts(texts, args.texts)
        texts_file.write_text(json.dumps([texts, shorts]))
        print(f"{len(texts)} texts of up to 1000 characters and {len(shorts)} of 40-200 from {args.data}")
        for _ in range(args.rounds):
            for name, (python, root) in sides.items():
                out = subprocess.run([python, __file__, "--child", str(texts_file), f"{tmp}/{name}.npy"], env=env,
                                     cwd=root, check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))
        diff = None
        if "baseline" in sides:
            import numpy as np

            diff = float(np.abs(np.load(f"{tmp}/candidate.npy") - np.load(f"{tmp}/baseline.npy")).max())
    best: dict[str, dict[str, float | str]] = {}
    for name, rounds in results.items():
        b = best[name] = max(rounds, key=lambda r: float(r["texts_per_s"]))
        b["load_s"] = min(float(r["load_s"]) for r in rounds)
        print(f"{name:9s} load {float(b['load_s']) * 1000:6.0f} ms; query {float(b['query_ms_median']):5.1f} ms "
              f"(first {float(b['first_query_ms']):.1f}); batch {float(b['texts_per_s']):5.1f} texts/s "
              f"({float(b['batch_wall_s']):.2f} s wall, {float(b['batch_cpu_s']):.2f} s CPU); short texts "
              f"{float(b['short_texts_per_s']):5.1f}/s ({float(b['short_cpu_s']):.2f} s CPU)  [{b['mmrag']}]")
    extra: dict[str, object] = {}
    if diff is not None:
        ratio = float(best["candidate"]["texts_per_s"]) / float(best["baseline"]["texts_per_s"])
        short = float(best["candidate"]["short_texts_per_s"]) / float(best["baseline"]["short_texts_per_s"])
        print(f"batch throughput candidate / baseline: chunks {ratio:.2f}, short texts {short:.2f}; "
              f"max |vector difference| {diff:.2e}")
        extra = {"baseline_side": best["baseline"], "ratio_to_baseline": round(ratio, 3),
                 "short_ratio_to_baseline": round(short, 3), "max_abs_diff": diff}
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps({"bench": "text_model", "metric": "batch_texts_per_s",
                      "value": round(float(best["candidate"]["texts_per_s"]), 2), "goal": None,
                      "baseline": extra, "candidate": best["candidate"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
