"""Shared test setup.

Sockets are off for every test (pytest-socket, see pyproject). Tests marked ``integration`` may connect to
127.0.0.1 only, where their fixtures start real local servers. AWS variables are removed so that no test
can reach AWS by accident; ``live`` tests run only with MMRAG_LIVE=1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import chromium  # noqa: F401  (the headless Chromium fixture for tests of HTML surfaces)

DATA = Path(__file__).parent / "data"
# Image→image query pictures: outside DATA, so that `mmrag ingest tests/data` does not index them.
I2I_QUERIES = Path(__file__).parent / "data" / ".i2i_queries"

_AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = os.environ.get("MMRAG_LIVE") == "1"
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))
        if item.get_closest_marker("live") and not live:
            item.add_marker(pytest.mark.skip(reason="talks to real AWS: set MMRAG_LIVE=1 to run"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """No AWS credentials, no stray MMRAG_* settings, and MMRAG_HOME in a temp dir."""
    if not request.node.get_closest_marker("live"):
        for var in _AWS_VARS:
            monkeypatch.delenv(var, raising=False)
    for var in [v for v in os.environ if v.startswith("MMRAG_") and v != "MMRAG_LIVE"]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MMRAG_HOME", str(tmp_path / ".mmrag"))
    yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: small real documents copied from the shared corpus (provenance in each SOURCES.md)."""
    return DATA


@pytest.fixture(scope="session")
def i2i_queries() -> Path:
    """tests/data/.i2i_queries: the image→image query pictures (derived from tests/data/i2i/gallery). A hidden
    folder: folder expansion skips it, so they are not in the sample collection, and the golden file may name them."""
    return I2I_QUERIES


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """One real local Ray cluster for the whole session (``ray.init(num_cpus=2)``; it takes seconds to start).

    Ray has no local mode: this is a head node with two CPUs on 127.0.0.1. Tests that use it are integration
    tests (loopback sockets)."""
    ray = pytest.importorskip("ray", reason="the Ray executor needs pip install 'mmrag[ray]'")
    # Workers keep the environment the cluster started with: give them what a worker's instance role would, the
    # dummy credentials of the loopback S3 stand-in (mmrag.testing.s3; every test's settings point S3 at 127.0.0.1).
    dummy = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"}
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": dummy})
    yield ray
    ray.shutdown()
