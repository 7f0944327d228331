"""CLI start-up: `mmrag --help`, a cold offline `mmrag search` and `mmrag ask`, vs a bare `python -c pass` (the floor).

    python bench/startup.py [--runs 7] [--ask-runs 5] [--skip-ask] [--ask-data tests/data] [--ask-ocr off]
                            [--ask-home HOME] [--baseline DIR [--baseline-python PY]] [--no-bytecode-cache] [--quick]

`--help` and `parse --help`: best of ``--runs``. Cold `mmrag search` (a text query, table output) and cold
`mmrag ask`: a new process each time (imports, model load, collection open, FAISS index load, retrieval, extractive
answer), median of ``--ask-runs`` (ask: goal ≤ 1.0 s, DESIGN.md), on a collection ingested once beforehand from
``--ask-data`` with profile local into a temporary MMRAG_HOME (OCR ``--ask-ocr``, off by default: it only changes
how long the set-up takes, not what ``ask`` loads), or on a copy of ``--ask-home`` (an MMRAG_HOME ingested before;
the copy keeps it untouched). Each run asks a question (and searches a query) of its own, so the query embedding
never comes from the model cache: the text model is loaded and run every time. ``--quick``: 3 runs each.

Bytecode: the children run with Python's usual ``__pycache__`` (PYTHONDONTWRITEBYTECODE is removed from their
environment), as after ``pip install``; one untimed ask per side first writes it and is printed as the first run.
``--no-bytecode-cache`` keeps the caller's setting (with PYTHONDONTWRITEBYTECODE=1 every run recompiles mmrag's
own modules, ~0.08 s).

``--baseline DIR``: another checkout of mmrag (e.g. ``git worktree add --detach /tmp/before main``) whose
interpreter (``--baseline-python``, default ``DIR/.venv/bin/python``) imports mmrag from DIR; its cold asks run
on the same collection, alternating with ours run by run, so both see the same machine load. Each side prints
where its ``mmrag`` was imported from. ``python -X importtime -m mmrag ask ...`` shows where import time goes.
The last line is one JSON object (value: the `--help` seconds, goal < 0.5; the cold-ask figures alongside:
median, runs, ratio to and margin over the floor, the children's CPU time (steadier on a busy machine), and the
baseline's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is the horsepower of the Mazda RX4, and what does mod_rewrite do? (run {run})"
QUERY = "confusion matrix of a classifier (run {run})"


def timings(cmd: list[str], runs: int, env: dict[str, str] | None = None, cwd: Path = ROOT,
            cpu: list[float] | None = None) -> list[float]:
    """Wall seconds of each run; with ``cpu``, each child's CPU seconds (user + system) are appended to it."""
    out = []
    for run in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([c.format(run=run) for c in cmd], check=True, capture_output=True, env=env, cwd=cwd)
        out.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return out


def imported_from(python: str, cwd: Path, env: dict[str, str]) -> str:
    code = "import mmrag, mmrag.chains.query as q; print(mmrag.__file__, q.__file__)"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, env=env,
                          cwd=cwd).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--ask-runs", type=int, default=5)
    ap.add_argument("--skip-ask", action="store_true")
    ap.add_argument("--ask-data", default="tests/data")
    ap.add_argument("--ask-ocr", default="off")
    ap.add_argument("--ask-home", default=None, help="an ingested MMRAG_HOME to copy instead of ingesting")
    ap.add_argument("--baseline", type=Path, default=None, help="another mmrag checkout to time side by side")
    ap.add_argument("--baseline-python", default=None, help="its interpreter [default: BASELINE/.venv/bin/python]")
    ap.add_argument("--no-bytecode-cache", action="store_true", help="keep the caller's PYTHONDONTWRITEBYTECODE")
    ap.add_argument("--quick", action="store_true", help="3 runs of each")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = args.ask_runs = 3
    base_env = dict(os.environ)
    if not args.no_bytecode_cache:
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)

    bare = min(timings([sys.executable, "-c", "pass"], args.runs, base_env))
    help_ = min(timings([sys.executable, "-m", "mmrag", "--help"], args.runs, base_env))
    parse_help = min(timings([sys.executable, "-m", "mmrag", "parse", "--help"], args.runs, base_env))
    print(f"python -c pass        {bare * 1000:7.1f} ms  (the floor)")
    print(f"mmrag --help          {help_ * 1000:7.1f} ms  ({help_ / bare:.1f}x bare python)")
    print(f"mmrag parse --help    {parse_help * 1000:7.1f} ms")
    ask: dict[str, object] = {}
    if not args.skip_ask:
        sides = {"candidate": (sys.executable, ROOT)}
        if args.baseline is not None:
            root = args.baseline.resolve()
            sides["baseline"] = (args.baseline_python or str(root / ".venv" / "bin" / "python"), root)
        with tempfile.TemporaryDirectory(prefix="mmrag-bench-startup-") as home:
            env = {**base_env, "MMRAG_HOME": home, "MMRAG_PROFILE": "local", "MMRAG_OCR": args.ask_ocr}
            for name, (python, root) in sides.items():
                print(f"{name:9s} mmrag from {imported_from(python, root, env)}")
            t0 = time.perf_counter()
            if args.ask_home:
                shutil.copytree(args.ask_home, home, dirs_exist_ok=True)
                print(f"(set-up: a copy of {args.ask_home})")
            else:
                subprocess.run([sys.executable, "-m", "mmrag", "ingest", args.ask_data], check=True,
                               capture_output=True, env=env, cwd=ROOT)
                print(f"(set-up: ingest {args.ask_data} with MMRAG_OCR={args.ask_ocr}: "
                      f"{time.perf_counter() - t0:.1f} s)")
            asks: dict[str, list[float]] = {name: [] for name in sides}
            cpus: dict[str, list[float]] = {name: [] for name in sides}
            first: dict[str, float] = {}
            searches: dict[str, list[float]] = {name: [] for name in sides}
            search_cpus: dict[str, list[float]] = {name: [] for name in sides}
            for run in range(-1, args.ask_runs):  # run -1: untimed, writes bytecode
                for name, (python, root) in sides.items():
                    question = QUESTION.format(run=f"{name} {run}")
                    cpu: list[float] = []
                    (took,) = timings([python, "-m", "mmrag", "ask", question], 1, env, cwd=root, cpu=cpu)
                    if run >= 0:
                        cpus[name] += cpu
                    if run < 0:
                        first[name] = took
                    else:
                        asks[name].append(took)
                    search_cpu: list[float] = []
                    (took,) = timings([python, "-m", "mmrag", "search", QUERY.format(run=f"{name} {run}")], 1, env,
                                      cwd=root, cpu=search_cpu)
                    if run >= 0:
                        searches[name].append(took)
                        search_cpus[name] += search_cpu
        for name, runs in asks.items():
            median = statistics.median(runs)
            print(f"cold mmrag ask ({name:9s}) {median * 1000:7.1f} ms median of {len(runs)} "
                  f"({', '.join(f'{a:.2f}' for a in runs)} s; first run {first[name]:.2f} s); "
                  f"{median / bare:.1f}x the floor, {(median - bare) * 1000:.0f} ms over it; goal <= 1.0 s; "
                  f"CPU median {statistics.median(cpus[name]):.2f} s")
        for name, runs in searches.items():
            print(f"cold mmrag search ({name:9s}) {statistics.median(runs) * 1000:7.1f} ms median of {len(runs)} "
                  f"({', '.join(f'{a:.2f}' for a in runs)} s); CPU median {statistics.median(search_cpus[name]):.2f} s")
        median = statistics.median(asks["candidate"])
        ask = {"cold_search_median_seconds": round(statistics.median(searches["candidate"]), 3),
               "cold_search_cpu_median_seconds": round(statistics.median(search_cpus["candidate"]), 3),
               "cold_ask_median_seconds": round(median, 3),
               "cold_ask_runs_seconds": [round(a, 3) for a in asks["candidate"]],
               "cold_ask_first_run_seconds": round(first["candidate"], 3),
               "cold_ask_ratio_to_floor": round(median / bare, 1),
               "cold_ask_over_floor_seconds": round(median - bare, 3),
               "cold_ask_goal": 1.0,
               "cold_ask_cpu_median_seconds": round(statistics.median(cpus["candidate"]), 3),
               "bytecode_cache": not args.no_bytecode_cache}
        if "baseline" in asks:
            before = statistics.median(asks["baseline"])
            cpu_ratio = statistics.median(cpus["candidate"]) / statistics.median(cpus["baseline"])
            print(f"candidate / baseline  {median / before:.2f} (wall), {cpu_ratio:.2f} (CPU)")
            ask |= {"baseline_cold_search_median_seconds": round(statistics.median(searches["baseline"]), 3),
                    "baseline_cold_search_cpu_median_seconds": round(statistics.median(search_cpus["baseline"]), 3),
                    "baseline_cold_ask_median_seconds": round(before, 3),
                    "baseline_cold_ask_runs_seconds": [round(a, 3) for a in asks["baseline"]],
                    "baseline_cold_ask_cpu_median_seconds": round(statistics.median(cpus["baseline"]), 3),
                    "cold_ask_ratio_to_baseline": round(median / before, 3),
                    "cold_ask_cpu_ratio_to_baseline": round(cpu_ratio, 3)}
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps({"bench": "startup", "metric": "mmrag_help_seconds", "value": round(help_, 4), "goal": 0.5,
                      "baseline": {"python_c_pass_seconds": round(bare, 4), "ratio_to_bare": round(help_ / bare, 2),
                                   "parse_help_seconds": round(parse_help, 4)}, **ask}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
