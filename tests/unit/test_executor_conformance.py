"""The local executor passes the executor conformance suite (Ray: tests/integration/test_ray_ingest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mmrag.chains.ingestion import IngestReport, ingest
from mmrag.testing.executor_conformance import ExecutorConformance


class TestLocalExecutor(ExecutorConformance):
    @pytest.fixture
    def run_ingest(self):  # type: ignore[no-untyped-def]
        def run(sources: list[str], settings: Any, **kwargs: Any) -> IngestReport:
            return ingest(sources, settings, executor="local", **kwargs)

        return run
