"""Ingest on a Ray cluster: ``mmrag ingest SOURCES --executor ray`` (``pip install 'mmrag[ray]'``).

The executor decides where work runs, never what it does: each worker runs the same :func:`~mmrag.chains.ingest`
as the local executor on its unit of sources, with its own models (loaded once per actor) and its own connection to
the collection's stores. The driver only plans units, tracks them and merges the workers' reports into one.

- **Units of work**: one source, or up to :data:`SOURCES_PER_UNIT` small files batched together (a unit is
  one Ray task; batching keeps the per-task overhead, about a millisecond plus one manifest round trip per
  source, small against parsing). A source of :data:`LARGE_BYTES` or more is a unit of its own. Page ranges of
  a large PDF are *not* split across workers: a source commits as one, and a split would need a merge step on
  one machine that the manifest does not have; the cost is a long PDF finishing last.
- **Actor pool**: one actor per CPU of the cluster (at most one per unit), each holding its models; Ray restarts
  an actor whose process died (``kill -9``, an OOM kill) and retries the task on it (``max_restarts``,
  ``max_task_retries``). A retried task holds its leases under the same owner name, so it takes its own
  sources back at once, and cleans up what the dead attempt claimed, as after any crash.
- **Bedrock**: ``MMRAG_MAX_CONCURRENCY`` is the account-wide limit for the whole cluster: each of N workers gets
  ``limit // N`` requests in flight. A shared limiter actor would add a round trip to every model call and a
  single point of failure; the static split never exceeds the limit, at the cost of idle slots when workers are
  unevenly busy (the retry with backoff of each worker absorbs the rest).
- **Data never goes through the driver** with shared stores (pgvector or OpenSearch with ``MMRAG_PG_DSN``, and
  S3 or a folder every worker sees): workers read sources, write objects, vectors and commits themselves.
  **FAISS is single-machine**: with FAISS the workers (on this machine's cluster) parse and run the models, then
  hand their groups (elements, vectors) back to the driver, which is the only writer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError, MissingDependencyError, MmragError

if TYPE_CHECKING:
    from mmrag.chains._enrich import Enriched
    from mmrag.chains._write import PreparedSource
    from mmrag.chains.ingestion import IngestReport, Progress, SourceReport
    from mmrag.config import Settings
    from mmrag.stores.collection import Collection

__all__ = ["LARGE_BYTES", "SOURCES_PER_UNIT", "RayIngestWorker", "ingest_on_ray", "plan_units"]

logger = logging.getLogger(__name__)

SOURCES_PER_UNIT = 8
LARGE_BYTES = 5_000_000


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError("ray", "ray", feature="--executor ray") from e
    return ray


def plan_units(sources: Sequence[str], per_unit: int = SOURCES_PER_UNIT, large: int = LARGE_BYTES) -> list[list[str]]:
    """Sources in units of work, in order: a large file alone, small ones ``per_unit`` at a time."""
    units: list[list[str]] = []
    batch: list[str] = []
    for source in sources:
        try:
            size = Path(source).stat().st_size if not source.startswith(("http://", "https://", "s3://")) else 0
        except OSError:
            size = 0  # it fails in its worker, with its reason
        if size >= large:
            units.append([source])
            continue
        batch.append(source)
        if len(batch) >= per_unit:
            units.append(batch)
            batch = []
    if batch:
        units.append(batch)
    return units


class RayIngestWorker:
    """One Ray actor: models and stores opened once, then units of sources ingested with the local pipeline."""

    def __init__(self, settings: Settings, max_concurrency: int) -> None:
        # Local models size their thread pools from this (mmrag.providers.local._cpu), read when they first load:
        # the CPUs Ray gave this actor, not the whole machine that the other workers share.
        os.environ.setdefault("MMRAG_LOCAL_THREADS", str(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1))))
        self.settings = settings.model_copy(update={"max_concurrency": max_concurrency, "executor": "local"})
        self._opened: tuple[Any, Any] | None = None

    def pid(self) -> int:
        return os.getpid()

    def run(self, unit: list[str], owner: str, force: bool, capture: bool, batch_size: int) -> dict[str, Any]:
        from mmrag.chains._components import open_components
        from mmrag.chains.ingestion import ingest

        if self._opened is None:
            self._opened = open_components(self.settings)
        providers, collection = self._opened
        captured: list[tuple[list[PreparedSource], Enriched]] = []

        def hand_over(group: Sequence[PreparedSource], enriched: Enriched, _: Collection) -> None:
            captured.append((list(group), enriched))

        report = ingest(unit, self.settings, providers=providers, collection=collection, force=force,
                        writer=hand_over if capture else None, owner=owner, batch_size=batch_size)
        return {"sources": list(report.sources), "model_calls": report.model_calls,
                "cost": report.estimated_cost_usd, "caption_failures": report.caption_failures,
                "captured": captured, "pid": os.getpid()}


def _init_cluster(ray: Any, address: str | None) -> bool:
    """Connect to ``address`` (or ``RAY_ADDRESS``), or start a local cluster; True if this run started one."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        return False
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    return True


def ingest_on_ray(sources: Iterable[str | Path], settings: Settings, *, address: str | None = None,
                  force: bool = False, progress: Progress | None = None, batch_size: int = 128,
                  include: Sequence[str] = (), exclude: Sequence[str] = ()) -> IngestReport:
    """:func:`~mmrag.chains.ingest` with its units of work spread over a Ray cluster (see the module docstring).

    Raises:
        MissingDependencyError: ``ray`` is not installed.
        ConfigError: FAISS with a remote cluster (its files are on this machine only).
    """
    from mmrag.chains._write import write_group
    from mmrag.chains.ingestion import IngestReport, SourceReport, _normalise
    from mmrag.parsers.sources import display_source, expand_sources
    from mmrag.stores.collection import manifest_kind

    ray = _ray()
    # Workers do not run in this folder: a relative MMRAG_HOME must mean the same place for them.
    settings = settings.model_copy(update={"home": Path(settings.home).resolve()})
    shared = manifest_kind(settings) == "postgres"
    if not shared and (address or os.environ.get("RAY_ADDRESS")):
        raise ConfigError("FAISS keeps a collection on this machine: with a remote Ray cluster use "
                          "MMRAG_VECTOR_STORE=pgvector (or opensearch with MMRAG_PG_DSN) and MMRAG_S3_BUCKET")
    started = time.perf_counter()
    given: dict[str, str] = {}
    for s in expand_sources(sources, include=include, exclude=exclude, s3_endpoint_url=settings.s3_endpoint_url):
        given.setdefault(display_source(_normalise(s)), _normalise(s))
    order = list(given)
    units = plan_units([given[s] for s in order])
    tick = progress or (lambda stage, n, total: None)
    tick("sources", 0, len(order))
    own_cluster = _init_cluster(ray, address)
    from ray.util import ActorPool

    from mmrag.chains._leases import lease_owner

    reports: dict[str, SourceReport] = {}
    calls: dict[str, Any] = {"new": 0, "cached": 0, "by_role": {}}
    cost, caption_failures = 0.0, 0
    collection = None
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = max(1, min(len(units), cpus))
        per_worker = max(1, settings.max_concurrency // workers)
        actor = ray.remote(num_cpus=1, max_restarts=3, max_task_retries=3)(RayIngestWorker)
        actors = [actor.remote(settings, per_worker) for _ in range(workers)]
        pool = ActorPool(actors)
        run = lease_owner()
        if not shared:
            from mmrag.chains._components import open_components

            collection = open_components(settings)[1]  # the driver writes: it opens the collection, not the models
        jobs = list(enumerate(units))
        for result in pool.map_unordered(
                lambda a, job: a.run.remote(job[1], f"{run}/unit-{job[0]}", force, not shared, batch_size), jobs):
            for report in result["sources"]:
                reports[report.source] = report
            for group, enriched in result["captured"]:
                assert collection is not None
                try:
                    write_group(group, enriched, collection)
                except MmragError as e:
                    for p in group:
                        reports[p.source] = SourceReport(p.source, "failed", error=str(e), warnings=p.warnings)
            _add_calls(calls, result["model_calls"])
            cost += result["cost"]
            caption_failures += result["caption_failures"]
            added = sum(r.added for r in result["sources"])
            tick("sources", len(result["sources"]), None)
            tick("models", added, None)
            tick("write", added, None)
        for a in actors:
            ray.kill(a)
    finally:
        if own_cluster:
            ray.shutdown()
    ordered = tuple(reports.get(s) or SourceReport(s, "failed", error="no worker reported it") for s in order)
    distinct = _totals(settings, collection, [s.source for s in ordered if s.status != "failed"])
    return IngestReport(settings.collection, ordered, calls, cost, time.perf_counter() - started, caption_failures,
                        distinct)


def _add_calls(total: dict[str, Any], part: dict[str, Any]) -> None:
    total["new"] += part.get("new", 0)
    total["cached"] += part.get("cached", 0)
    for role, counts in part.get("by_role", {}).items():
        mine = total["by_role"].setdefault(role, {"new": 0, "cached": 0})
        mine["new"] += counts.get("new", 0)
        mine["cached"] += counts.get("cached", 0)


def _totals(settings: Settings, collection: Collection | None, sources: list[str]) -> dict[str, int]:
    from mmrag.errors import NotFoundError
    from mmrag.stores.collection import open_manifest

    try:
        manifest = collection.manifest if collection is not None else open_manifest(settings, settings.collection)
    except NotFoundError:  # every source failed before the collection was made
        return {}
    try:
        return manifest.totals(sources)
    finally:
        if collection is None:
            manifest.close()
