"""The evaluation HTML report without matplotlib (a base install): everything but the plots, and it says why."""

from __future__ import annotations

import sys

import pytest

from mmrag.eval.html_report import NO_PLOTS, plots_available, render_html
from mmrag.eval.runner import EvalReport, QuestionResult, Retrieved
from mmrag.eval.usage import Usage


def _report() -> EvalReport:
    hit = Retrieved("e1", "text", "/docs/a.pdf", 2, 0.03, "preview", 0)
    result = QuestionResult(
        id="q1", variant="bm25", modality=("text",), question="Why?", k=5, retrieved=(hit,), recall=1.0, mrr=1.0,
        ndcg=1.0, citation_precision=1.0, answer_contains=True, answer_exact=False, answer="x", reference="x",
        latency_s=0.01, usage=Usage(0, 0, 0, 0.0))
    return EvalReport(5, ("bm25",), (result,), (), "default", "local")


def test_without_matplotlib_the_report_has_its_table_and_says_why_there_are_no_plots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing matplotlib fails, as in a base install
    assert not plots_available()
    page = render_html(_report())
    assert "<img" not in page and "id=summary" in page and "recall@5" in page
    assert "pip install &#x27;mmrag[eval]&#x27;" in page and NO_PLOTS.split(":")[0] in page.lower()


def test_with_matplotlib_the_report_has_its_plots() -> None:
    pytest.importorskip("matplotlib")
    assert plots_available()
    page = render_html(_report())
    assert page.count("<img") >= 3 and "id=no-plots" not in page
