"""Issue 23 item 9: what killed runs leave behind goes away, and AccessDenied stops an ingest with exit 5."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from _fault_ingest import run

pytestmark = pytest.mark.faults


def _stray(home: Path, name: str) -> Path:
    stray = home / "default" / "objects" / "sha256" / "ab" / name
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half an object")  # fresh: the run that wrote it was killed a moment ago
    return stray


def test_the_next_ingest_removes_temp_files_of_a_killed_run(tmp_path: Path, data_dir: Path,
                                                             record: Callable[..., None]) -> None:
    home = tmp_path / "home"
    report, col = run(home, [str(data_dir / "images/img_029.png")])
    assert report.ok
    root = col.objects.root  # type: ignore[attr-defined]
    strays = [_stray(home, ".mmrag-tmp-0123456789abcdef"), root / "sha256" / ".mmrag-tmp-deadbeef"]
    strays[1].write_bytes(b"x")
    assert strays[0].is_relative_to(root)
    report, _ = run(home, [str(data_dir / "images/img_023.jpg")])
    assert report.ok
    left = [p for p in strays if p.exists()]
    record("temp files of a killed run, next ingest", held=len(strays) - len(left), lost=len(left))
    assert left == []


def test_an_ingest_keeps_the_temp_files_of_another_running_ingest(tmp_path: Path, data_dir: Path) -> None:
    home = tmp_path / "home"
    report, col = run(home, [str(data_dir / "images/img_029.png")])
    live = _stray(home, ".mmrag-tmp-00000000000000ff")
    with open(col.manifest.path.parent / "lock", "a+b") as other:  # another process's ingest holds its shared lock
        fcntl.flock(other, fcntl.LOCK_SH)
        report, _ = run(home, [str(data_dir / "images/img_023.jpg")])
        fcntl.flock(other, fcntl.LOCK_UN)
    assert report.ok and live.exists()
    os.unlink(live)
