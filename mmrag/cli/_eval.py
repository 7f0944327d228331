"""``mmrag eval``: score retrieval and answers on a golden set, compare variants; ``mmrag eval generate`` drafts one.

``mmrag eval FILE`` is short for ``mmrag eval run FILE`` (the group runs a golden file unless the first word
is a subcommand).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mmrag.cli._app import EXIT_CODES, check_output_file, cli, settings_from


class _DefaultRun(click.Group):
    """A group whose first argument, when it is not a subcommand, is the golden file of ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@cli.group("eval", cls=_DefaultRun)
def eval_group() -> None:
    """Measure retrieval and answers on your own questions: mmrag eval GOLDEN.jsonl [options].

    \b
    mmrag eval golden.jsonl --variants hybrid,decompose+rrf -k 5 --html report.html
    MMRAG_PROFILE=bedrock mmrag eval golden.jsonl --judge   # + an LLM judge's grade
    mmrag eval generate -c default -n 50 > drafts.jsonl

    A golden file has one JSON object per line: id, question, modality, expected (a list of
    {source, page, kind, contains}) and optionally answer (see docs/evaluation.md, "Golden sets").
    """


@eval_group.command("run")
@click.argument("golden", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-c", "--collection", help="Collection to evaluate [default: MMRAG_COLLECTION or 'default'].")
@click.option("--variants", help="Comma-separated: dense, bm25, hybrid, decompose+rrf, no-cues, qa-pairs "
              "[default: dense, bm25, hybrid, decompose+rrf, plus qa-pairs with a chat model].")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="Cut-off of recall@k, nDCG@k.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Questions in flight at once.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: every (question, variant), then "
              "the report summary.")
@click.option("--markdown", is_flag=True, help="Print the summary as a Markdown table.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML report (table, plots, misses) to this file.")
@click.option("--judge", is_flag=True, help="Also have the fast chat model (Claude Haiku) grade each answer that has "
              "a reference answer: 0, 0.5 or 1 with a reason, labelled 'LLM judge (model id)'. Needs "
              "MMRAG_PROFILE=bedrock (there is no judge model offline); its calls are counted apart.")
@click.option("--split", type=click.Choice(["dev", "test"]), help="Run only the questions of this golden split "
              "[default: all; a golden set with splits is reported per split].")
@click.pass_context
def run(ctx: click.Context, /, golden: Path, collection: str | None, variants: str | None, k: int,
        concurrency: int, as_json: bool, markdown: bool, html_path: Path | None, judge: bool,
        split: str | None) -> None:
    """Run every question of GOLDEN through each variant and print recall@k, MRR, nDCG@k and answer checks."""
    from mmrag.eval.golden import load_golden
    from mmrag.eval.runner import evaluate
    from mmrag.terminal import plain

    settings = settings_from(ctx, collection=collection)
    if judge and settings.profile == "local":
        raise click.UsageError("--judge needs a chat model and the local profile has none (there is no judge model "
                               "offline): run with MMRAG_PROFILE=bedrock, or drop --judge", ctx)
    check_output_file(html_path)  # the report is written after every question ran: find a bad path first
    golden_set = load_golden(golden)
    if not golden_set.questions:  # one line: a file that is not a golden set at all
        first = f" ({golden_set.problems[0]})" if golden_set.problems else ""
        raise click.UsageError(f"{golden} has no usable question{first}: a golden set is JSON Lines, one question "
                               "per line (see `mmrag eval --help`)", ctx)
    for problem in golden_set.problems:
        click.secho(plain(f"{golden}: {problem}"), fg="yellow", err=True)
    from mmrag.cli._interrupt import interruptible

    with interruptible():  # Ctrl-C stops at once, not after the questions in flight
        report = evaluate(golden_set, settings, variants=variants, k=k, concurrency=concurrency, judge=judge,
                          split=split)
    if html_path is not None:
        from mmrag.eval.html_report import NO_PLOTS, plots_available, render_html

        html_path.write_text(render_html(report), encoding="utf-8")
        if not plots_available():
            click.secho(f"{plain(str(html_path))}: {NO_PLOTS}", fg="yellow", err=True)
    if as_json:
        for row in report.to_rows():
            click.echo(json.dumps({"type": "question", **row}, ensure_ascii=False))
        click.echo(json.dumps({"type": "report", **report.to_dict()}, ensure_ascii=False))
    else:
        for part in report.splits or (None,):
            if part is not None:
                click.echo(f"split: {part}")
            _print_human(report, markdown=markdown, split=part)
        if html_path is not None:
            click.echo(f"HTML report: {plain(str(html_path))}")
    errors = sum(1 for r in report.results if r.error)
    if errors:
        click.secho(f"{errors} run(s) failed; see the error column (--json) or the HTML report", fg="red", err=True)
    unjudged = sum(1 for r in report.results if r.judge_model is not None and r.judge_score is None)
    if unjudged:
        click.secho(f"the LLM judge failed on {unjudged} answer(s); see judge_reason (--json) or the HTML report",
                    fg="red", err=True)
    if golden_set.problems or errors or unjudged:
        sys.exit(EXIT_CODES["partial"])


def _print_human(report: Any, *, markdown: bool, split: str | None = None) -> None:
    from mmrag.terminal import plain

    if markdown:
        click.echo(plain(report.to_markdown(split=split)))
        return
    k = report.k
    rows = report.summary(split)
    # As wide as the longest name: a modality tag (image-to-image) or variant is never cut.
    wv = max([15, *(len(plain(r["variant"])) for r in rows)])
    wm = max([12, *(len(plain(r["modality"])) for r in rows)])
    header = f"{'variant':<{wv}} {'modality':<{wm}} {'n':>3} {'recall@' + str(k):>9} {'MRR':>6} " \
             f"{'nDCG@' + str(k):>7} {'answer':>7} {'cite-p':>7} {'p50 ms':>7} {'p95 ms':>7} {'calls':>6}"
    judged = report.judge_label is not None
    click.echo(header + (f" {'judge':>6}" if judged else ""))

    def f(value: float | None, width: int, scale: float = 1.0, digits: int = 2) -> str:
        return f"{'–':>{width}}" if value is None else f"{value * scale:>{width}.{digits}f}"

    abstains = any(not r.answerable for r in report.results)
    for row in rows:
        click.echo(f"{plain(row['variant']):<{wv}} {plain(row['modality']):<{wm}} {row['n']:>3} "
                   f"{f(row['recall'], 9)} {f(row['mrr'], 6)} {f(row['ndcg'], 7)} {f(row['answer_contains'], 7)} "
                   f"{f(row['citation_precision'], 7)} {f(row['latency_p50_s'], 7, 1000, 0)} "
                   f"{f(row['latency_p95_s'], 7, 1000, 0)} {row['model_calls']:>6}"
                   + (f" {f(row['judge_score'], 6)}" if judged else "")
                   + (f" abstains: {f(row['abstention_recall'], 4)} of unanswerable, {f(row['false_abstention'], 4)}"
                      " of answerable" if abstains and row["modality"] == "all" else ""))
    for note in report.notes:
        click.echo(f"note: {plain(note)}")
    if judged:
        calls = sum(row["judge_calls"] for row in report.summary(split) if row["modality"] == "all")
        click.echo(f"judge: {plain(report.judge_label)}, the mean grade (0, 0.5, 1) of answers with a reference; "
                   f"{calls} judge call(s), not counted in 'calls'")
    missed = len(report.misses())
    if missed:
        click.echo(f"{missed} (question, variant) run(s) missed evidence in the top {k}: see --html or --json")


@eval_group.command("generate")
@click.option("-c", "--collection", help="Collection to draft from [default: MMRAG_COLLECTION or 'default'].")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Drafts to write, from elements sampled stratified by kind (offline: fewer only when the "
              "collection has fewer usable elements).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.pass_context
def generate(ctx: click.Context, /, collection: str | None, n: int, seed: int) -> None:
    """Draft golden questions from a collection as JSONL on stdout (marked "generated": true; review them).

    With a chat model (MMRAG_PROFILE=bedrock) the fast model writes one question per sampled element; offline,
    fixed templates ask for a table cell or where a quote of the element's own words is (a passage, a figure's
    text or caption, a page), skipping elements with too few real words. Sources are written relative to the
    current directory when they are under it, else as file names.
    """
    from mmrag.chains._components import open_components
    from mmrag.eval.generation import generate_golden

    settings = settings_from(ctx, collection=collection)
    providers, opened = open_components(settings, create=False)
    for line in generate_golden(opened, n, llm=providers.fast_chat, seed=seed):
        click.echo(json.dumps(line, ensure_ascii=False))
