"""The evaluation report fits a 1400 px window: its summary table (many metric columns) scrolls inside its own box
instead of pushing the page wider than the window (issue 25, item 9). Real headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mmrag.eval.html_report import render_html
from mmrag.eval.runner import EvalReport, QuestionResult, Retrieved
from mmrag.eval.usage import Usage

pytestmark = pytest.mark.integration

_PROBE = """<script>
window.addEventListener('load', function () {
  var table = document.getElementById('summary');
  var out = document.createElement('pre'); out.id = 'probe';
  var box = table.parentElement.getBoundingClientRect();
  out.textContent = JSON.stringify({page: document.documentElement.scrollWidth, window: window.innerWidth,
                                    right: box.right, table: table.scrollWidth});
  document.documentElement.appendChild(out);
});
</script>"""


def _chromium() -> str:
    binary = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return binary


def _report() -> EvalReport:
    hit = Retrieved("e1", "text", "/docs/a.pdf", 2, 0.03, "preview", None)
    results = []
    for variant in ("dense", "bm25", "hybrid", "decompose+rrf", "no-cues", "a-long-custom-variant-name"):
        for modality in ("image-to-image", "multi-hop", "scanned"):
            results.append(QuestionResult(
                id=f"q-{modality}", variant=variant, modality=(modality,), question="Why?", k=5, retrieved=(hit,),
                recall=1.0, mrr=0.5, ndcg=0.6, citation_precision=0.5, answer_contains=True, answer_exact=False,
                answer="x", reference="x", latency_s=0.01, usage=Usage(2, 10, 0, 0.0)))
    variants = tuple(dict.fromkeys(r.variant for r in results))
    return EvalReport(5, variants, tuple(results), (), "default", "local")


def test_the_report_fits_a_1400px_window(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(_report()).replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=tmp_path) as profile:
        result = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", f"--user-data-dir={profile}", "--window-size=1400,900",
             "--virtual-time-budget=10000", "--dump-dom", path.as_uri()], capture_output=True, timeout=180,
            check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout.decode(), re.DOTALL)
    assert match, "the probe did not run"
    seen = json.loads(html.unescape(match.group(1)))
    assert seen["window"] == 1400, seen
    assert seen["page"] <= seen["window"], f"the page is wider than the window: {seen}"
    assert seen["right"] <= seen["window"], f"the summary table's box runs past the window's edge: {seen}"
