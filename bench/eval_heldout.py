"""Offline quality on the held-out golden set (``tests/data_heldout``), dev and test splits side by side.

    python bench/eval_heldout.py [--home DIR] [--ingest] [--split dev|test] [-k 5] [--rows rows.jsonl] [--misses]

Runs ``mmrag.eval.evaluate`` with the offline profile and the default query chain (``decompose+rrf``) on
``tests/data_heldout/golden.jsonl`` over the collection ``heldout`` under ``--home`` (default: MMRAG_HOME or
./.mmrag). ``--ingest`` first ingests ``tests/data_heldout`` there (about 3 minutes of CPU; unchanged files are
skipped, so keep the home between runs). The documents and the questions were never used while tuning the
pipeline; tune on ``dev`` only, and read ``test`` to report (see tests/data_heldout/README.md).

Prints one Markdown table per split (rows: modality; columns: questions, recall@k, answer contains, answer leads
with it, and the share of unanswerable / answerable questions abstained on), ``--misses`` lists the questions
answered wrongly, ``--rows`` writes one JSON line per question (for before/after diffs). The last line is one JSON
object: the test split's answer-contains rate over answerable questions, with the other figures as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data_heldout" / "golden.jsonl"
ROWS = ("all", "text", "table", "aggregate", "multi-hop", "bridge", "chart", "scanned", "follow-up", "unanswerable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("MMRAG_HOME", ROOT / ".mmrag")))
    parser.add_argument("--ingest", action="store_true", help="ingest tests/data_heldout into the collection first")
    parser.add_argument("--split", choices=("dev", "test"), help="one split only (default: both)")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--rows", type=Path, help="write one JSON line per question here")
    parser.add_argument("--misses", action="store_true", help="list the questions answered wrongly")
    args = parser.parse_args()

    from mmrag.config import Settings
    from mmrag.eval import evaluate

    os.chdir(ROOT)  # sources are recorded as given: tests/data_heldout/...
    settings = Settings(profile="local", home=args.home, collection="heldout")
    if args.ingest:
        from mmrag.chains.ingestion import ingest

        report = ingest(["tests/data_heldout"], settings)
        print(f"ingested: {len(report.sources)} sources", file=sys.stderr)
    result = evaluate(GOLDEN, settings, variants="decompose+rrf", k=args.k, split=args.split, concurrency=2)
    if result.problems:
        raise SystemExit(f"golden file problems: {[str(p) for p in result.problems]}")
    figures: dict[str, dict[str, object]] = {}
    for split in result.splits:
        print(f"\n### {split} split\n")
        print(table_markdown(result, split))
        overall = next(r for r in result.summary(split) if r["modality"] == "all")
        figures[split] = {key: None if overall[key] is None else round(float(overall[key]), 3)
                          for key in ("recall", "answer_contains", "answer_first", "abstention_recall",
                                      "false_abstention", "abstention_precision", "latency_p50_s")}
    if args.misses:
        print("\n### misses\n")
        for r in result.results:
            wrong = (r.abstained is False) if not r.answerable else (r.answer_contains is False)
            if wrong or r.error:
                said = " ".join((r.answer or r.error or "").split())[:160]
                print(f"- {r.split} {r.id} [{','.join(r.modality)}] {r.question} -> {said}")
    if args.rows:
        with args.rows.open("w", encoding="utf-8") as f:
            for row in result.to_rows():
                row.pop("retrieved", None)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    main_split = "test" if "test" in figures else next(iter(figures))
    print(json.dumps({
        "bench": "eval_heldout", "metric": f"answer contains reference, {main_split} split (offline, held-out set)",
        "value": figures[main_split]["answer_contains"], "goal": 0.8, "baseline": figures,
    }))


def table_markdown(result: object, split: str) -> str:
    """Rows: modality; columns: questions, recall@k, answer contains, answer leads with it, abstains."""
    from mmrag.eval.runner import EvalReport

    assert isinstance(result, EvalReport)
    rows = {r["modality"]: r for r in result.summary(split)}
    head = ["questions", f"recall@{result.k}", "answer contains reference", "answer leads with it",
            "abstains (unanswerable)", "abstains (answerable)"]
    lines = ["| modality | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]

    def fmt(value: object) -> str:
        return "–" if value is None else f"{float(value):.2f}"  # type: ignore[arg-type]

    for modality in [m for m in ROWS if m in rows]:
        row = rows[modality]
        cells = [str(row["n"]), fmt(row["recall"]), fmt(row["answer_contains"]), fmt(row["answer_first"]),
                 fmt(row["abstention_recall"]), fmt(row["false_abstention"])]
        lines.append(f"| {modality} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
