"""The terminal table of ``mmrag eval`` shows modality tags and variant names whole (``image-to-image`` was cut
to ``image-to-ima``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mmrag.cli._eval import _print_human


def _row(variant: str, modality: str) -> dict[str, Any]:
    return {"variant": variant, "modality": modality, "n": 3, "recall": 1.0, "mrr": 1.0, "ndcg": 1.0,
            "answer_contains": None, "citation_precision": None, "latency_p50_s": 0.01, "latency_p95_s": 0.02,
            "model_calls": 0, "judge_score": None, "judge_calls": 0}


def test_long_modality_and_variant_names_are_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [_row("decompose+rrf", "image-to-image"), _row("a-custom-variant-name", "text"), _row("bm25", "all")]
    report = SimpleNamespace(k=5, judge_label=None, notes=(), summary=lambda split=None: rows, misses=lambda: [],
                             results=())
    _print_human(report, markdown=False)
    lines = capsys.readouterr().out.splitlines()
    assert any(" image-to-image " in line for line in lines)
    assert any(line.startswith("a-custom-variant-name ") for line in lines)
    starts = {line.index(" 3 ") for line in lines[1:]}
    assert len(starts) == 1  # the columns still line up
