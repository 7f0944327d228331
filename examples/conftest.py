"""The example notebooks run as tests (nbmake, enabled in pyproject's pytest options): each on a fresh kernel,
offline. The kernel talks to pytest over loopback sockets, so these items may use 127.0.0.1 (unit tests may not).

Each notebook runs with TMPDIR pointed at a folder of its own, and fails if it leaves a scratch folder there
(``mmrag-*``): the notebooks promise to clean up after themselves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))
            item.add_marker(pytest.mark.notebook)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    if not str(item.fspath).endswith(".ipynb"):
        return (yield)
    scratch = Path(tempfile.mkdtemp(prefix="nb-tmp-"))
    scratch.chmod(0o1777)  # like /tmp: notebook 05's PostgreSQL runs as another user when the tests run as root
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(scratch)  # the kernel nbmake starts inherits it
    try:
        result = yield
        left = sorted(p.name for p in scratch.iterdir() if p.name.startswith("mmrag-"))
        assert not left, f"{Path(str(item.fspath)).name} left scratch folders behind in TMPDIR: {left}"
        return result
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(scratch, ignore_errors=True)
