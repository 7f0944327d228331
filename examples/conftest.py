"""The example notebooks run as tests (nbmake, enabled in pyproject's pytest options): each on a fresh kernel,
offline. The kernel talks to pytest over loopback sockets, so these items may use 127.0.0.1 (unit tests may not)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))
            item.add_marker(pytest.mark.notebook)
