"""docs/langchain.md runs as written: its ```python blocks as scripts, its ```console commands (the ``$ `` lines)
as commands, from the repository root with a scratch MMRAG_HOME. (Once the docs site's own runner covers every
docs page, this file can go.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "langchain.md"
_BLOCK = re.compile(r"^```(python|console)\n(.*?)^```$", re.M | re.S)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(PAGE.read_text(encoding="utf-8"))]


def test_the_page_has_python_and_console_examples() -> None:
    assert {language for language, _ in _blocks()} == {"python", "console"}


@pytest.mark.parametrize("n", range(len(_blocks())))
def test_block_runs(n: int, tmp_path: Path) -> None:
    language, code = _blocks()[n]
    env = {**os.environ, "MMRAG_HOME": str(tmp_path / ".mmrag"), "MMRAG_OCR": "off"}
    if language == "python":
        commands = [[sys.executable, "-c", code]]
    else:
        commands = [[sys.executable, "-m", "mmrag", *shlex.split(line[2:])[1:]]
                    for line in code.splitlines() if line.startswith("$ mmrag ")]
    assert commands
    for command in commands:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command[-1][:80]}...\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        if language == "console" and "search" in command:
            assert "tabula-data.pdf" in done.stdout
