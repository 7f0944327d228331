"""The HTML report of an evaluation: a summary table, one bar chart per metric (matplotlib, embedded as PNG
data URIs, so the file stands alone) and the misses with what was retrieved instead.

Every string that comes from a document, a question or an answer is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

from mmrag.errors import MissingDependencyError

if TYPE_CHECKING:
    from mmrag.eval.runner import EvalReport

__all__ = ["PLOTTED", "plot_png", "plotted", "render_html"]

PLOTTED = ("recall", "mrr", "ndcg", "answer_contains", "answer_first", "citation_precision", "latency_p50_s")
_TITLES = {"recall": "recall@{k}", "mrr": "MRR", "ndcg": "nDCG@{k}", "answer_contains": "answer contains reference",
           "answer_first": "first quote/sentence has the reference",
           "citation_precision": "citation precision", "latency_p50_s": "latency p50 (s)"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}.plots img{width:420px;height:auto}
.hit-ok{color:#17693a}.miss{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #c0392b;background:#fbf4f3}
.preview{color:#555;font-size:.9em}
.wide{overflow-x:auto;max-width:100%}
"""


def _title(metric: str, report: EvalReport) -> str:
    if metric == "judge_score":
        return f"{report.judge_label}: mean grade (0 / 0.5 / 1)"
    return _TITLES.get(metric, metric).format(k=report.k)


def plotted(report: EvalReport) -> tuple[str, ...]:
    """The metrics the report plots: :data:`PLOTTED`, plus the LLM judge's score when answers were judged."""
    return (*PLOTTED, "judge_score") if report.judge_model is not None else PLOTTED


def plot_png(report: EvalReport, metric: str) -> bytes:
    """A grouped bar chart of ``metric``: one group per modality (and "all"), one bar per variant.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingDependencyError("matplotlib", "eval", "the HTML report") from e
    rows = report.summary()
    groups = ["all", *report.modalities]
    figure = Figure(figsize=(6, 3.2), dpi=100)
    axes = figure.subplots()
    width = 0.8 / max(len(report.variants), 1)
    for i, variant in enumerate(report.variants):
        values = []
        for group in groups:
            row = next((r for r in rows if r["variant"] == variant and r["modality"] == group), None)
            values.append(float(row[metric]) if row is not None and row[metric] is not None else 0.0)
        axes.bar([g + i * width for g in range(len(groups))], values, width, label=variant)
    axes.set_xticks([g + width * (len(report.variants) - 1) / 2 for g in range(len(groups))], groups,
                    rotation=20, fontsize=8)
    if metric == "judge_score":  # the model id is long: the label alone, the rubric goes in the caption
        axes.set_title(str(report.judge_label), fontsize=9)
    else:
        axes.set_title(_title(metric, report))
    if metric != "latency_p50_s":
        axes.set_ylim(0, 1.05)
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "<td class=n>–</td>"
    if isinstance(value, float):
        return f"<td class=n>{value:.3f}</td>"
    if isinstance(value, int):
        return f"<td class=n>{value}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _summary_table(report: EvalReport) -> str:
    columns = ["variant", "modality", "n", "recall", "mrr", "ndcg", "citation_precision", "answer_contains",
               "answer_first", "answer_exact", "latency_p50_s", "latency_p95_s", "model_calls", "cost_usd", "errors"]
    if report.judge_label is not None:
        columns[columns.index("answer_exact") + 1:columns.index("answer_exact") + 1] = ["judge_score", "judged"]
        columns[columns.index("cost_usd") + 1:columns.index("cost_usd") + 1] = ["judge_calls", "judge_cost_usd"]
    names = {"recall": f"recall@{report.k}", "ndcg": f"nDCG@{report.k}", "mrr": "MRR",
             "judge_score": report.judge_label or "", "judged": "judged answers"}
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row[c]) for c in columns) + "</tr>" for row in report.summary())
    # Many metric columns: the table scrolls inside its box rather than widening the page past the window.
    return f"<div class=wide><table id=summary><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _misses(report: EvalReport) -> str:
    out = []
    for result in report.misses():
        where = f"{result.variant} · {result.id} · {', '.join(result.modality)}"
        parts = [f"<div class=miss><h3>{html.escape(where)}</h3><p><b>Q:</b> {html.escape(result.question)}</p>"]
        if result.error:
            parts.append(f"<p><b>error:</b> {html.escape(result.error)}</p>")
        if result.reference:
            parts.append(f"<p><b>reference answer:</b> {html.escape(result.reference)}</p>")
        items = []
        for rank, hit in enumerate(result.retrieved[: result.k], 1):
            page = f" p.{hit.page}" if hit.page else ""
            mark = " class=hit-ok" if hit.label is not None else ""
            items.append(f"<li{mark}>{rank}. {html.escape(hit.kind)} — {html.escape(hit.source)}{html.escape(page)}"
                         f"<div class=preview>{html.escape(hit.preview)}</div></li>")
        parts.append("<p><b>retrieved instead (top k):</b></p><ol style='list-style:none;padding:0'>"
                     + "".join(items) + "</ol></div>")
        out.append("".join(parts))
    return "".join(out) or "<p>No misses.</p>"


def _judged_low(report: EvalReport) -> str:
    """The answers the LLM judge graded below 1, with its reason (a section only when answers were judged)."""
    if report.judge_label is None:
        return ""
    rows = []
    for r in report.results:
        if r.judge_reason is None or r.judge_score == 1.0:
            continue
        grade = "–" if r.judge_score is None else f"{r.judge_score:g}"
        rows.append(f"<tr><td>{html.escape(r.variant)}</td><td>{html.escape(r.id)}</td><td class=n>{grade}</td>"
                    f"<td>{html.escape(r.question)}</td><td>{html.escape(r.reference or '')}</td>"
                    f"<td>{html.escape(r.judge_reason)}</td></tr>")
    label = html.escape(report.judge_label)
    body = (f"<table id=judged><thead><tr><th>variant</th><th>id</th><th>grade</th><th>question</th>"
            f"<th>reference</th><th>reason</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            if rows else "<p>Every judged answer was graded 1.</p>")
    return (f"<h2>Answers graded below 1 by the {label}</h2><p>An LLM's opinion, not a measurement: 1 correct, "
            f"0.5 partially correct, 0 incorrect, against the reference answer and the cited evidence.</p>{body}")


NO_PLOTS = "no plots: they need matplotlib (pip install 'mmrag[eval]'); the numbers are all in the table"
"""What the report (and ``mmrag eval --html``) says instead of the plots when matplotlib is not installed."""


def plots_available() -> bool:
    """Whether matplotlib can be imported, so that the report has its plots."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def render_html(report: EvalReport, *, title: str = "mmrag evaluation") -> str:
    """The whole report as one self-contained HTML page (plots inline as PNG data URIs).

    Without matplotlib the page has everything but the plots, and says so where they would be (:data:`NO_PLOTS`).
    """
    figures = []
    for metric in plotted(report) if plots_available() else ():
        data = base64.b64encode(plot_png(report, metric)).decode("ascii")
        label = html.escape(_title(metric, report))
        figures.append(f"<figure><img alt='{label}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{label}</figcaption></figure>")
    if not figures:
        figures.append(f"<p id=no-plots>{html.escape(NO_PLOTS.capitalize())}.</p>")
    problems = "".join(f"<li>line {p.line}: {html.escape(p.message)}</li>" for p in report.problems)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    meta = (f"collection <code>{html.escape(report.collection)}</code>, profile "
            f"<code>{html.escape(report.profile)}</code>, k = {report.k}, {len(report.results)} runs")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{meta}</p>"
        + (f"<h2>Golden file problems</h2><ul>{problems}</ul>" if problems else "")
        + (f"<ul>{notes}</ul>" if notes else "")
        + f"<h2>Summary</h2>{_summary_table(report)}<h2>Plots</h2><div class=plots>{''.join(figures)}</div>"
        f"{_judged_low(report)}<h2>Misses</h2>{_misses(report)}</body></html>"
    )
