"""Two ingests writing to one collection at once: exact counts, no duplicates, no orphans."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _fault_ingest import run

pytestmark = pytest.mark.faults

HERE = Path(__file__).parent


def test_two_concurrent_ingests(tmp_path: Path, data_dir: Path, record: Callable[..., None]) -> None:
    pdf = str(data_dir / "pdf" / "tabula-data.pdf")
    page = str(data_dir / "html" / "octave" / "Two_002dDimensional-Plots.html")
    shared = str(data_dir / "images" / "img_029.png")
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    children = [subprocess.Popen([sys.executable, str(HERE / "_fault_ingest.py"), str(home), *sources], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for sources in ([pdf, shared], [page, shared])]
    for child in children:
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err.decode()[-2000:]

    report, col = run(home, [pdf, page, shared])
    assert [s.status for s in report.sources] == ["unchanged"] * 3
    expected, _ = run(tmp_path / "clean", [pdf, page, shared])
    committed = {i for e in col.manifest.sources() for i in col.manifest.element_ids(e.source)}
    in_text = {h.id for h in col.text.inner.search([1.0] * 384, k=100_000)}  # type: ignore[attr-defined]
    assert report.elements == expected.elements
    assert in_text <= committed and col.text.count() == len(in_text)  # no duplicates, nothing uncommitted
    assert set(col.objects.yield_keys()) == col.manifest.referenced_keys()  # type: ignore[attr-defined]
    lost = sum(expected.elements.values()) - len(committed)
    record("two ingests at once into one collection", held=len(committed), lost=lost)
