"""Evaluation: golden sets, metrics, pipeline variants and reports (``mmrag eval``).

Example::

    from mmrag.eval import evaluate
    report = evaluate("tests/data/golden.jsonl", variants="hybrid,decompose+rrf", k=5)
    print(report.to_markdown())
    rows = report.to_rows()   # pandas.DataFrame(rows) if you like

See :mod:`mmrag.eval.golden` for the golden JSONL format, :mod:`mmrag.eval.metrics` for the metrics and
:mod:`mmrag.eval.judge` for the optional LLM judge (``evaluate(..., judge=True)``, bedrock profile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrag.eval.generation import generate_golden
    from mmrag.eval.golden import Expected, GoldenProblem, GoldenQuestion, GoldenSet, load_golden, parse_golden
    from mmrag.eval.html_report import render_html
    from mmrag.eval.judge import Judge, Judgement, JudgeVerdict
    from mmrag.eval.runner import EvalReport, QuestionResult, evaluate
    from mmrag.eval.variants import VARIANTS, Variant

__all__ = [
    "VARIANTS",
    "EvalReport",
    "Expected",
    "GoldenProblem",
    "GoldenQuestion",
    "GoldenSet",
    "Judge",
    "JudgeVerdict",
    "Judgement",
    "QuestionResult",
    "Variant",
    "evaluate",
    "generate_golden",
    "load_golden",
    "parse_golden",
    "render_html",
]

_WHERE = {
    "VARIANTS": "variants", "Variant": "variants", "EvalReport": "runner", "QuestionResult": "runner",
    "evaluate": "runner", "generate_golden": "generation", "render_html": "html_report",
    "Expected": "golden", "GoldenProblem": "golden", "GoldenQuestion": "golden", "GoldenSet": "golden",
    "load_golden": "golden", "parse_golden": "golden",
    "Judge": "judge", "JudgeVerdict": "judge", "Judgement": "judge",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"mmrag.eval.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'mmrag.eval' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (loaded lazily, so not in the module's globals): what tab completion offers."""
    return list(__all__)
