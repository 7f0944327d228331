"""Start-up and exit of the CLI: the collector is paused while a command loads and restored after; exit freezes."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

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
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_main_freezes_the_heap_at_exit_and_keeps_exit_codes() -> None:
    ok = _run_main("--help")
    assert ok.returncode == 0 and "Usage: mmrag" in ok.stdout and "frozen True" in ok.stderr
    usage = _run_main("no-such-command")
    assert usage.returncode == 2 and "No such command" in usage.stderr and "frozen True" in usage.stderr
