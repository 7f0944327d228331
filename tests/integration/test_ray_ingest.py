"""Distributed ingest on a real local Ray cluster (one per session: ``ray_cluster``, ``num_cpus=2``).

The Ray executor passes the executor conformance suite on FAISS (the driver writes) and on pgvector + S3
(workers write); a worker killed with ``kill -9`` mid-task is restarted by Ray and the collection ends exactly as
a local ingest leaves it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from mmrag.chains.ingestion import IngestReport, ingest
from mmrag.config import Settings
from mmrag.errors import MissingDependencyError
from mmrag.testing.executor_conformance import ExecutorConformance, collection_state
from mmrag.testing.postgres import EmbeddedPostgres
from mmrag.testing.s3 import MotoS3Server

pytestmark = [pytest.mark.integration, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]


def _ray_runner(ray_cluster: object) -> Any:
    def run(sources: list[str], settings: Settings, **kwargs: Any) -> IngestReport:
        return ingest(sources, settings, executor="ray", **kwargs)

    return run


class TestRayExecutorOnFaiss(ExecutorConformance):
    @pytest.fixture
    def run_ingest(self, ray_cluster: object):  # type: ignore[no-untyped-def]
        return _ray_runner(ray_cluster)


class TestRayExecutorOnPgvector(ExecutorConformance):
    @pytest.fixture
    def run_ingest(self, ray_cluster: object):  # type: ignore[no-untyped-def]
        return _ray_runner(ray_cluster)

    @pytest.fixture
    def base_settings(self, tmp_path: Path, postgres: EmbeddedPostgres, s3: MotoS3Server,
                      monkeypatch: pytest.MonkeyPatch) -> Settings:
        for name, value in s3.environ().items():
            monkeypatch.setenv(name, value)
        bucket = f"ray-{tmp_path.name.lower().replace('_', '-')[-40:]}"
        s3.client().create_bucket(Bucket=bucket)
        return Settings(home=tmp_path / "home", ocr="off", vector_store="pgvector",  # type: ignore[call-arg]
                        pg_dsn=postgres.dsn, s3_bucket=bucket, s3_endpoint_url=s3.endpoint_url,
                        aws_region="us-east-1", collection=f"c{os.getpid()}")


def _kill_a_busy_worker(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first Ray worker seen running ``RayIngestWorker.run``."""
    while not stop.is_set() and not killed:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if "RayIngestWorker.run" in cmd:
                time.sleep(0.3)  # mid-task
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.append(proc.info["pid"])
                return
        time.sleep(0.05)


def test_a_worker_killed_mid_task_is_retried_and_the_collection_is_exact(
        ray_cluster: object, tmp_path: Path, postgres: EmbeddedPostgres, s3: MotoS3Server, data_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    s3.client().create_bucket(Bucket="ray-kill")
    base = Settings(home=tmp_path / "home", ocr="off", vector_store="pgvector",  # type: ignore[call-arg]
                    pg_dsn=postgres.dsn, s3_bucket="ray-kill", s3_endpoint_url=s3.endpoint_url,
                    aws_region="us-east-1")
    docs = [str(p) for p in sorted((data_dir / "pdf").glob("*.pdf"))]
    expected = ingest(docs, base.model_copy(update={"collection": "kill-local"}))
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(stop, killed), daemon=True)
    killer.start()
    settings = base.model_copy(update={"collection": "kill-ray"})
    try:
        report = ingest(docs, settings, executor="ray")
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed: the test did not test anything"
    assert report.ok and report.elements == expected.elements
    assert collection_state(settings) == collection_state(base.model_copy(update={"collection": "kill-local"}))


def test_without_ray_the_executor_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[ray\]'"):
        ingest([str(tmp_path)], Settings(home=tmp_path / "h"), executor="ray")  # type: ignore[call-arg]


def test_an_s3_prefix_is_read_by_the_workers(ray_cluster: object, tmp_path: Path, postgres: EmbeddedPostgres,
                                             s3: MotoS3Server, data_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    client = s3.client()
    client.create_bucket(Bucket="ray-sources")
    for rel in ("pdf/tabula-data.pdf", "pdf/octave-refcard-a4.pdf", "images/img_029.png"):
        client.put_object(Bucket="ray-sources", Key=f"in/{rel}", Body=(data_dir / rel).read_bytes())
    settings = Settings(home=tmp_path / "home", ocr="off", vector_store="pgvector",  # type: ignore[call-arg]
                        pg_dsn=postgres.dsn, s3_bucket="ray-sources", s3_prefix="objects/",
                        s3_endpoint_url=s3.endpoint_url, aws_region="us-east-1", collection="from-s3")
    report = ingest(["s3://ray-sources/in/"], settings, executor="ray", exclude=["*.png"])
    assert [s.source for s in report.sources] == ["s3://ray-sources/in/pdf/octave-refcard-a4.pdf",
                                                  "s3://ray-sources/in/pdf/tabula-data.pdf"]
    assert report.ok and report.elements.get("table", 0) >= 1
    again = ingest(["s3://ray-sources/in/"], settings, executor="ray", exclude=["*.png"])
    assert [s.status for s in again.sources] == ["unchanged", "unchanged"] and again.model_calls["new"] == 0
