"""CLI start-up: wall time of `mmrag --help` vs a bare `python -c pass`, best of N cold-ish runs.

Goal (DESIGN.md): `mmrag --help` < 0.5 s. The last line is one JSON object.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def best_of(cmd: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main(runs: int = 7) -> None:
    bare = best_of([sys.executable, "-c", "pass"], runs)
    help_ = best_of([sys.executable, "-m", "mmrag", "--help"], runs)
    parse_help = best_of([sys.executable, "-m", "mmrag", "parse", "--help"], runs)
    print(f"python -c pass        {bare * 1000:7.1f} ms")
    print(f"mmrag --help          {help_ * 1000:7.1f} ms  ({help_ / bare:.1f}x bare python)")
    print(f"mmrag parse --help    {parse_help * 1000:7.1f} ms")
    print(json.dumps({"bench": "startup", "metric": "mmrag_help_seconds", "value": round(help_, 4), "goal": 0.5,
                      "baseline": {"python_c_pass_seconds": round(bare, 4), "ratio_to_bare": round(help_ / bare, 2),
                                   "parse_help_seconds": round(parse_help, 4)}}))


if __name__ == "__main__":
    main()
