"""docs/limits-and-errors.md: its Python blocks run and its console blocks print what they show."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "limits-and-errors.md"
BLOCKS = re.findall(r"```(python|console)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


@pytest.mark.parametrize(("kind", "body"), BLOCKS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BLOCKS)])
def test_block_runs(kind: str, body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if kind == "python":
        exec(compile(body, str(DOC), "exec"), {"__name__": "__docs__"})  # noqa: S102 — the doc's own example
        return
    command, *expected = body.strip().splitlines()
    args = shlex.split(command.removeprefix("$ "))
    assert args[0] == "python"
    done = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == expected
