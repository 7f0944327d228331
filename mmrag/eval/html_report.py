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

__all__ = ["PLOTTED", "plot_png", "render_html"]

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
"""


def _title(metric: str, k: int) -> str:
    return _TITLES.get(metric, metric).format(k=k)


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
    axes.set_title(_title(metric, report.k))
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
    names = {"recall": f"recall@{report.k}", "ndcg": f"nDCG@{report.k}", "mrr": "MRR"}
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row[c]) for c in columns) + "</tr>" for row in report.summary())
    return f"<table id=summary><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


def render_html(report: EvalReport, *, title: str = "mmrag evaluation") -> str:
    """The whole report as one self-contained HTML page (plots inline as PNG data URIs)."""
    figures = []
    for metric in PLOTTED:
        data = base64.b64encode(plot_png(report, metric)).decode("ascii")
        label = html.escape(_title(metric, report.k))
        figures.append(f"<figure><img alt='{label}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{label}</figcaption></figure>")
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
        f"<h2>Misses</h2>{_misses(report)}</body></html>"
    )
