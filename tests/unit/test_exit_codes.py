"""Issue 23: the exit-code table (docs/development.md, where the README's reference moved; and
docs/limits-and-errors.md) is what the commands do.

Each code of the table is produced here by a real command where that is cheap (0, 1, 2, 3, 4, 6); 5 (AccessDenied
during ingest) and 7 (a full disk) by the fault suite (tests/faults/test_access_denied.py, test_disk_full.py);
70, 130 and 141 through the one error path's mapping.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import EXIT_CODES, cli
from mmrag.cli._app import exit_code_for
from mmrag.errors import AccessDeniedError, DiskFullError, ProviderError, StoreError

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "docs" / "development.md", ROOT / "docs" / "limits-and-errors.md"]


def _table(page: Path) -> dict[int, str]:
    text = page.read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n#", 1)[0]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)}


def _reference_table() -> dict[int, str]:
    return _table(PAGES[0])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_table_lists_every_code_and_only_those(page: Path) -> None:
    table = _table(page)
    assert sorted(table) == sorted(EXIT_CODES.values())
    docstring = (Path(__file__).parents[2] / "mmrag" / "cli" / "_app.py").read_text(encoding="utf-8")
    assert sorted(int(m) for m in re.findall(r"^(\d+) {2,}", docstring, re.MULTILINE)) == sorted(table)
    assert "no space left" in table[7] and "denied" in table[5]


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch, home: Path, **env: str) -> tuple[int, str]:
    monkeypatch.setenv("MMRAG_HOME", str(home))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stderr


def test_each_cheap_code_from_a_real_command(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _reference_table()
    image = str(data_dir / "images" / "img_029.png")
    home = tmp_path / "home"
    assert _run(["parse", image], monkeypatch, home)[0] == 0
    code, err = _run(["parse", image, str(tmp_path / "missing.png")], monkeypatch, home)
    assert code == 1 and "sources failed" in table[1]
    assert _run(["ask", "--no-such-option", "q"], monkeypatch, home)[0] == 2 and "usage" in table[2]
    code, err = _run(["ask", "-c", "defualt", "What is mod_rewrite?"], monkeypatch, home)
    assert code == 3 and "does not exist" in err and "not found" in table[3]
    damaged = tmp_path / "damaged"
    (damaged / "default").mkdir(parents=True)
    (damaged / "default" / "manifest.sqlite").write_bytes(b"\x13not sqlite at all" * 300)
    code, err = _run(["search", "anything"], monkeypatch, damaged)
    assert code == 6, err
    assert "the manifest is damaged" in err and "store failed" in table[6]
    assert err.count("\n") == 1 and "Traceback" not in err
    code, err = _run(["ingest", image], monkeypatch, tmp_path / "aws", MMRAG_PROFILE="bedrock",
                     AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    assert code == 4 and "credentials" in table[4], err


@pytest.mark.parametrize(("error", "name"), [
    (ProviderError("model failed", is_retryable=True), "provider"),
    (AccessDeniedError("Bedrock denied access to m"), "provider"),
    (StoreError("index failed"), "store"),
    (DiskFullError("/data/home/cache/models.sqlite"), "disk_full"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/home/x"), "disk_full"),
    (RuntimeError("a bug"), "internal"),
])
def test_the_error_path_maps_errors_to_the_table(error: BaseException, name: str) -> None:
    assert exit_code_for(error) == EXIT_CODES[name]
    assert EXIT_CODES["interrupted"] == 130 and EXIT_CODES["closed_output"] == 141
