"""Ctrl-C stops ``mmrag ingest`` promptly: "stopping…", exit 130, nothing half-written; a second Ctrl-C at once.

Real subprocesses and a real SIGINT, on the offline profile with OCR on (the case that used to ignore Ctrl-C for
80 s while queued OCR work finished). The waits below are hang guards, far above the 1-2 s the command takes
and far below what it took before; nothing here times the command.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmrag.chains._components import open_components
from mmrag.config import Settings

HANG_GUARD = 30.0  # seconds: the old code needed ~80 s after the first Ctrl-C on this job


def _start_ingest(home: Path, data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "MMRAG_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("MMRAG_OCR", None)
    return subprocess.Popen([sys.executable, "-m", "mmrag", "ingest", str(data_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until_working(proc: subprocess.Popen[str], home: Path) -> None:
    """Until the collection exists (models loaded, sources being parsed), then a little more: OCR under way."""
    deadline = time.monotonic() + 120
    while not (home / "default").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "ingest never started"
        time.sleep(0.2)
    time.sleep(4)
    assert proc.poll() is None, "the ingest finished before it could be interrupted"


def _visible_and_committed(home: Path) -> tuple[set[str], set[str]]:
    settings = Settings(home=home)
    _, col = open_components(settings, create=False)
    committed = {i for s in col.manifest.sources() for i in col.manifest.element_ids(s.source)}
    visible = {h.id for h in col.text.search([1.0] * col.text.dimensions, k=100_000)}
    visible |= {h.id for h in col.image.search([1.0] * col.image.dimensions, k=100_000)}
    return visible, committed


def test_ctrl_c_stops_ingest_promptly_and_commits_nothing_half_written(tmp_path: Path, data_dir: Path) -> None:
    home = tmp_path / "home"
    proc = _start_ingest(home, data_dir)
    _wait_until_working(proc, home)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"ingest was still running {HANG_GUARD:.0f} s after Ctrl-C")
    assert proc.returncode == 130, stderr
    assert "stopping…" in stderr and "Traceback" not in stderr
    # It says what it kept, and how to finish.
    assert re.search(r"interrupted: ingest stopped: \d+ of \d+ sources are in the collection; the next run", stderr)
    visible, committed = _visible_and_committed(home)
    assert visible <= committed, "a search finds records of a source that was never committed"
    # The collection is usable (its lock released): the next run picks up where this one stopped.
    env = {**os.environ, "MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    again = subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(data_dir / "images" / "img_023.jpg"),
                            "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path, data_dir: Path) -> None:
    home = tmp_path / "home"
    proc = _start_ingest(home, data_dir)
    _wait_until_working(proc, home)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"ingest was still running {HANG_GUARD:.0f} s after two Ctrl-C")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_ctrl_c_stops_eval_promptly(tmp_path: Path, data_dir: Path) -> None:
    """``mmrag eval`` runs questions on a pool of threads: Ctrl-C must not wait for the questions in flight."""
    import json

    home = tmp_path / "home"
    env = {**os.environ, "MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    done = subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(data_dir / "pdf" / "tabula-data.pdf"),
                           "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    questions = [json.loads(line) for line in (data_dir / "golden.jsonl").read_text().splitlines() if line.strip()]
    golden = tmp_path / "long.jsonl"  # many questions, so the run is surely still going when Ctrl-C comes
    golden.write_text("".join(json.dumps({**q, "id": f"{q['id']}-{n}"}) + "\n"
                              for n in range(60) for q in questions if "query_image" not in q))
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "eval", str(golden), "--variants", "hybrid,bm25"],
                            env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(15)  # well into the run (imports take seconds on a busy machine)
    assert proc.poll() is None, "the evaluation finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"eval was still running {HANG_GUARD:.0f} s after Ctrl-C")
    assert proc.returncode == 130, stderr
    assert "stopping…" in stderr and "Traceback" not in stderr
