"""``mmrag remove`` and ``mmrag collections gc`` from the command line (JSON output, exit codes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from mmrag.cli import cli

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from _fault_ingest import run  # noqa: E402


def test_remove_and_gc_json(tmp_path: Path, data_dir: Path) -> None:
    home = tmp_path / "home"
    images = [str(data_dir / "images" / name) for name in ("img_023.jpg", "img_029.png")]
    report, col = run(home, images)
    assert report.ok
    env = {"MMRAG_HOME": str(home)}
    runner = CliRunner()
    missing = runner.invoke(cli, ["remove", str(data_dir / "images" / "img_031.png"), images[0]], env=env)
    assert missing.exit_code == 3 and "nothing was removed" in missing.stderr
    assert len(col.manifest.sources()) == 2
    removed = runner.invoke(cli, ["remove", "--json", images[0]], env=env)
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout) == {"source": images[0], "elements": 1, "shared": 0, "objects_deleted": 1}
    gc = runner.invoke(cli, ["collections", "gc", "--json"], env=env)
    assert gc.exit_code == 0, gc.output
    assert json.loads(gc.stdout) == {"collection": "default", "uncommitted_records": 0, "by_source": {},
                                     "temp_files": 0, "objects_deleted": 0}
    _, col = run(home, [])
    assert [e.source for e in col.manifest.sources()] == [images[1]]
    assert set(col.objects.yield_keys()) == col.manifest.referenced_keys()  # type: ignore[attr-defined]
