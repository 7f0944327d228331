"""The fault suite: every case records how many elements (or requests, or bytes) held and how many were lost.

Run it alone with ``python -m pytest -m faults``; it also runs inside the normal test command. At the end,
pytest prints one table: case, held, lost, and the command that re-runs the case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

_RESULTS: list[tuple[str, int, int, str]] = []


@dataclass(frozen=True)
class FaultRecord:
    nodeid: str

    def __call__(self, case: str, *, held: int, lost: int) -> None:
        _RESULTS.append((case, held, lost, self.nodeid))


@pytest.fixture()
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record("kill -9 after the index write", held=12, lost=0)``: one row of the summary table."""
    return FaultRecord(request.node.nodeid)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("fault suite")
    width = max(len(case) for case, *_ in _RESULTS)
    tr.write_line(f"{'case':<{width}}  {'held':>6}  {'lost':>6}")
    for case, held, lost, _ in _RESULTS:
        tr.write_line(f"{case:<{width}}  {held:>6}  {lost:>6}")
    total_lost = sum(lost for _, _, lost, _ in _RESULTS)
    tr.write_line(f"{len(_RESULTS)} cases, {sum(h for _, h, _, _ in _RESULTS)} held, {total_lost} lost; "
                  "re-run: python -m pytest -m faults")
