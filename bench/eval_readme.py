"""Offline quality on the bundled golden set, and the docs' table regenerated from it.

    python bench/eval_readme.py [--home DIR] [--ingest] [--variants dense,bm25,hybrid,no-cues,decompose+rrf] [-k 5]
                                [--write] [--html report.html]

Runs ``mmrag.eval.evaluate`` with the offline profile on ``tests/data/golden.jsonl`` over the collection
``default`` under ``--home`` (default: MMRAG_HOME or ./.mmrag). ``--ingest`` first ingests ``tests/data`` there
(2-5 minutes of CPU; reused when unchanged). Prints the per-modality table; ``--write`` replaces the table
between ``<!-- eval-table:start -->`` and ``<!-- eval-table:end -->`` in docs/evaluation.md (the docs site's
"Evaluating" page; the README links there), so the published figures are never typed by hand. The last line is
one JSON object: recall@k of ``decompose+rrf`` overall (goal 0.9), with the other variants' overall recall@k and
the answer-contains rate as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- eval-table:start -->", "<!-- eval-table:end -->"
TABLE_PAGE = ROOT / "docs" / "evaluation.md"
ROWS = ("all", "text", "table", "multi-hop", "image", "chart", "scanned", "image-to-image", "video")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("MMRAG_HOME", ROOT / ".mmrag")))
    parser.add_argument("--ingest", action="store_true", help="ingest tests/data into the collection first")
    parser.add_argument("--variants", default="dense,bm25,hybrid,no-cues,decompose+rrf")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="rewrite the table in docs/evaluation.md")
    parser.add_argument("--html", type=Path, help="also write the HTML report here")
    args = parser.parse_args()

    from mmrag.config import Settings
    from mmrag.eval import evaluate, render_html

    os.chdir(ROOT)  # sources are recorded as given: tests/data/...
    settings = Settings(profile="local", home=args.home, collection="default")
    if args.ingest:
        from mmrag.chains.ingestion import ingest

        report = ingest(["tests/data"], settings)
        print(f"ingested: {len(report.sources)} sources", file=sys.stderr)
    result = evaluate(ROOT / "tests" / "data" / "golden.jsonl", settings, variants=args.variants, k=args.k)
    if result.problems:
        raise SystemExit(f"golden file problems: {[str(p) for p in result.problems]}")
    table = table_markdown(result)
    print(table)
    if args.html:
        args.html.write_text(render_html(result), encoding="utf-8")
    if args.write:
        page = TABLE_PAGE
        text = page.read_text(encoding="utf-8")
        if START not in text or END not in text:
            raise SystemExit(f"{page.relative_to(ROOT)} has no {START} ... {END} markers")
        block = f"{START}\n{table}\n{END}"
        page.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S),
                          encoding="utf-8")
        print(f"{page.relative_to(ROOT)} updated", file=sys.stderr)
    overall = {row["variant"]: row for row in result.summary() if row["modality"] == "all"}
    main_variant = "decompose+rrf" if "decompose+rrf" in overall else next(iter(overall))
    print(json.dumps({
        "bench": "eval_readme", "metric": f"recall@{args.k} {main_variant} overall (offline, bundled golden set)",
        "value": round(overall[main_variant]["recall"], 3), "goal": 0.9,
        "baseline": {**{f"recall@{args.k} {v}": round(r["recall"], 3) for v, r in overall.items()},
                     "answer_contains": round(overall[main_variant]["answer_contains"] or 0.0, 3),
                     "answer_first": round(overall[main_variant]["answer_first"] or 0.0, 3)},
    }))


def table_markdown(result: object) -> str:
    """Rows: modality; columns: recall@k of every variant, MRR of decompose+rrf (and of the ``no-cues`` ablation
    when it ran), then nDCG and the answer columns of decompose+rrf."""
    from mmrag.eval.runner import EvalReport

    assert isinstance(result, EvalReport)
    rows = {(r["variant"], r["modality"]): r for r in result.summary()}
    variants = result.variants
    lead = "decompose+rrf" if "decompose+rrf" in variants else variants[-1]
    k = result.k
    ablation = [v for v in variants if v == "no-cues" and v != lead]
    head = ["questions", *(f"recall@{k} {v}" for v in variants), f"MRR ({lead})",
            *(f"MRR ({v})" for v in ablation), f"nDCG@{k} ({lead})",
            f"answer contains reference ({lead})", f"answer leads with it ({lead})"]
    lines = ["| modality | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]

    def fmt(value: object) -> str:
        return "–" if value is None else f"{float(value):.2f}"  # type: ignore[arg-type]

    for modality in [m for m in ROWS if (lead, m) in rows]:
        main = rows[(lead, modality)]
        cells = [str(main["n"]), *(fmt(rows[(v, modality)]["recall"]) for v in variants), fmt(main["mrr"]),
                 *(fmt(rows[(v, modality)]["mrr"]) for v in ablation), fmt(main["ndcg"]),
                 fmt(main["answer_contains"]), fmt(main["answer_first"])]
        lines.append(f"| {modality} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
