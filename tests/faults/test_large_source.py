"""One large source is not one unit of loss: a run killed mid-source is resumed from what completed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _fault_ingest import run

pytestmark = [pytest.mark.faults, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

HERE = Path(__file__).parent


def _large_page(path: Path, sections: int) -> None:
    parts = ["<html><head><title>A long handbook</title></head><body>"]
    for i in range(sections):
        words = " ".join(f"word{i}x{j} about topic {i} and its many details" for j in range(20))
        parts.append(f"<h2>Section {i}</h2><p>{words}.</p>")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")


def test_killed_mid_source_resumes_from_the_cache(tmp_path: Path, record: Callable[..., None]) -> None:
    page = tmp_path / "handbook.html"
    _large_page(page, 240)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    proc = subprocess.run([sys.executable, str(HERE / "_fault_ingest.py"), str(home), "--kill-after-texts", "120",
                           str(page)], env=env, capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    report, col = run(home, [str(page)])
    assert report.ok and report.sources[0].status == "new"
    texts = report.model_calls["by_role"]["text embeddings"]
    total = texts["new"] + texts["cached"]
    assert total >= 240
    assert texts["cached"] >= 32, f"the killed run left {texts['cached']} of {total} embeddings in the cache"
    committed = col.manifest.element_ids(str(page))
    assert len(committed) == total == col.text.count()
    record(f"kill -9 after 120 of {total} embeddings of one source ({texts['cached']} reused)",
           held=len(committed), lost=0)
