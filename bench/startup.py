"""CLI start-up: `mmrag --help` and a cold offline `mmrag ask`, vs a bare `python -c pass`.

    python bench/startup.py [--runs 7] [--ask-runs 5] [--skip-ask] [--ask-data tests/data] [--ask-ocr off]
                            [--ask-home HOME] [--quick]

`--help` and `parse --help`: best of ``--runs``. Cold `mmrag ask`: a new process each time (imports, model load,
collection open, FAISS index load, retrieval, extractive answer), median of ``--ask-runs`` (goal ≤ 1.0 s,
DESIGN.md), on a collection ingested once beforehand from ``--ask-data`` with profile local into a temporary
MMRAG_HOME (OCR ``--ask-ocr``, off by default: it only changes how long the set-up takes, not what ``ask``
loads), or on a copy of ``--ask-home`` (an MMRAG_HOME ingested before; the copy keeps it untouched). Each run
asks a question of its own, so the query embedding never comes from the model cache: the text model is loaded
and run every time. ``--quick``: 3 runs each. The ``-v`` log of one ask is not parsed; run
``python -X importtime -m mmrag ask ...`` to see imports.
The last line is one JSON object (value: the `--help` seconds, goal < 0.5; the ask figures alongside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is the horsepower of the Mazda RX4, and what does mod_rewrite do? (run {run})"


def timings(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    out = []
    for run in range(runs):
        t0 = time.perf_counter()
        subprocess.run([c.format(run=run) for c in cmd], check=True, capture_output=True, env=env, cwd=ROOT)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--ask-runs", type=int, default=5)
    ap.add_argument("--skip-ask", action="store_true")
    ap.add_argument("--ask-data", default="tests/data")
    ap.add_argument("--ask-ocr", default="off")
    ap.add_argument("--ask-home", default=None, help="an ingested MMRAG_HOME to copy instead of ingesting")
    ap.add_argument("--quick", action="store_true", help="3 runs of each")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = args.ask_runs = 3

    bare = min(timings([sys.executable, "-c", "pass"], args.runs))
    help_ = min(timings([sys.executable, "-m", "mmrag", "--help"], args.runs))
    parse_help = min(timings([sys.executable, "-m", "mmrag", "parse", "--help"], args.runs))
    print(f"python -c pass        {bare * 1000:7.1f} ms")
    print(f"mmrag --help          {help_ * 1000:7.1f} ms  ({help_ / bare:.1f}x bare python)")
    print(f"mmrag parse --help    {parse_help * 1000:7.1f} ms")
    ask: dict[str, object] = {}
    if not args.skip_ask:
        with tempfile.TemporaryDirectory(prefix="mmrag-bench-startup-") as home:
            env = {**os.environ, "MMRAG_HOME": home, "MMRAG_PROFILE": "local", "MMRAG_OCR": args.ask_ocr}
            t0 = time.perf_counter()
            if args.ask_home:
                shutil.copytree(args.ask_home, home, dirs_exist_ok=True)
                print(f"(set-up: a copy of {args.ask_home})")
            else:
                subprocess.run([sys.executable, "-m", "mmrag", "ingest", args.ask_data], check=True,
                               capture_output=True, env=env, cwd=ROOT)
                print(f"(set-up: ingest {args.ask_data} with MMRAG_OCR={args.ask_ocr}: "
                      f"{time.perf_counter() - t0:.1f} s)")
            cmd = [sys.executable, "-m", "mmrag", "ask", QUESTION]
            asks = timings(cmd, args.ask_runs, env)
        median = statistics.median(asks)
        print(f"cold mmrag ask        {median * 1000:7.1f} ms median of {len(asks)} "
              f"({', '.join(f'{a:.2f}' for a in asks)} s; {median / bare:.1f}x bare python; goal <= 1.0 s)")
        ask = {"cold_ask_median_seconds": round(median, 3), "cold_ask_runs_seconds": [round(a, 3) for a in asks],
               "cold_ask_goal": 1.0}
    print(json.dumps({"bench": "startup", "metric": "mmrag_help_seconds", "value": round(help_, 4), "goal": 0.5,
                      "baseline": {"python_c_pass_seconds": round(bare, 4), "ratio_to_bare": round(help_ / bare, 2),
                                   "parse_help_seconds": round(parse_help, 4)}, **ask}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
