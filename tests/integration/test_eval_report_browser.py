"""The evaluation HTML report in real headless Chromium: every plot loads, document strings stay inert."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mmrag.eval.golden import GoldenProblem
from mmrag.eval.html_report import PLOTTED, render_html
from mmrag.eval.runner import EvalReport, QuestionResult, Retrieved
from mmrag.eval.usage import Usage

pytestmark = pytest.mark.integration
pytest.importorskip("matplotlib")

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
_PROBE = """<script>
window.__alerts = [];
window.alert = function (m) { window.__alerts.push(String(m)); };
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}; });
  var out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({images: imgs, alerts: window.__alerts, text: document.body.innerText});
  document.documentElement.appendChild(out);
});
</script>"""


def _chromium() -> str:
    binary = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return binary


def _probe(page: str, folder: Path) -> dict[str, object]:
    """Load ``page`` with a probe script prepended (test-only) and return what it saw after the load event."""
    path = folder / "report.html"
    path.write_text(page.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=folder) as profile:
        result = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
             "--dump-dom", path.as_uri()], capture_output=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout.decode(), re.DOTALL)
    assert match, "the probe did not run"
    data: dict[str, object] = json.loads(html.unescape(match.group(1)))
    return data


def _report() -> EvalReport:
    hit = Retrieved("e1", "text", f"/docs/{HOSTILE}.pdf", 2, 0.03, f"preview {HOSTILE}", None)
    good = Retrieved("e2", "table", "/docs/a.pdf", 1, 0.02, "| a | b |", 0)
    results = []
    for variant, recall in (("dense", 0.0), ("hybrid", 1.0)):
        results.append(QuestionResult(
            id="q1", variant=variant, modality=("text", HOSTILE), question=f"Why {HOSTILE}?", k=5,
            retrieved=(hit, good) if recall else (hit,), recall=recall, mrr=recall / 2, ndcg=recall * 0.6,
            citation_precision=0.5, answer_contains=bool(recall), answer_exact=False, answer="x",
            reference=HOSTILE, latency_s=0.01 + recall, usage=Usage(2, 10, 0, 0.0)))
    return EvalReport(5, ("dense", "hybrid"), tuple(results), (GoldenProblem(3, f"bad {HOSTILE}"),), "default",
                      "local")


def test_report_renders_with_every_plot_loaded_and_no_script_from_documents(tmp_path: Path) -> None:
    page = render_html(_report())
    assert HOSTILE not in page and html.escape(HOSTILE) in page
    seen = _probe(page, tmp_path)
    images = seen["images"]
    assert isinstance(images, list) and len(images) == len(PLOTTED)
    assert all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in images)  # the PNGs decoded
    assert seen["alerts"] == []  # nothing from a document ran
    text = str(seen["text"])
    assert HOSTILE in text  # shown as text, literally
    assert "recall@5" in text and "Misses" in text and "line 3" in text


def test_judged_report_plots_the_labelled_judge_score_and_keeps_its_reasons_inert(tmp_path: Path) -> None:
    from dataclasses import replace

    base = _report()
    results = tuple(replace(r, judge_score=score, judge_reason=f"reason {HOSTILE}", judge_model="us.judge-model",
                            judge_usage=Usage(1, 40, 8, 0.0001))
                    for r, score in zip(base.results, (0.5, 1.0), strict=True))
    page = render_html(replace(base, results=results, judge_model="us.judge-model"))
    assert HOSTILE not in page
    seen = _probe(page, tmp_path)
    images = seen["images"]
    assert isinstance(images, list) and len(images) == len(PLOTTED) + 1
    assert all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in images)
    assert seen["alerts"] == []
    text = str(seen["text"])
    assert "LLM judge (us.judge-model): mean grade" in text  # the plot's caption, labelled with the model
    assert "Answers graded below 1 by the LLM judge (us.judge-model)" in text and f"reason {HOSTILE}" in text
