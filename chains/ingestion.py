"""Ingest: sources → elements → captions and vectors → object store + both vector spaces + manifest.

``ingest(["report.pdf", "docs/"])`` is the whole pipeline. For every source it:

1. loads the bytes and compares their fingerprint (bytes, parse options, captioner; for a web page also the
   images it links to) with the manifest; an unchanged source is skipped (a PDF or image before parsing, a page
   once its images are loaded): no model calls, no writes (``force=True`` re-does it);
2. parses it, and keeps only elements whose ids the source does not hold yet; a picture already indexed from
   another place (the same image in a page and in a folder: one id, its bytes) gains this place in the manifest
   and is not indexed again, unless this place is the better one (:mod:`mmrag.chains._places`);
3. captions images, summarises tables and embeds everything in the text and image spaces, batched over
   many sources so the models stay busy (and cached by content, so nothing is paid for twice);
4. puts raw objects (images, page renders, table CSV) in the object store under content-addressed keys;
5. claims the new ids in the manifest, writes both spaces, makes them durable, removes the source's
   elements that are gone, and only then commits the source in the manifest.

A crash at any point leaves the collection consistent: the next run redoes uncommitted sources (cheaply,
from the cache) and removes what an interrupted run claimed but no longer needs. A source that cannot be
read or parsed fails alone, with its reason in the report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mmrag._disk import as_disk_full
from mmrag.chains._components import open_components
from mmrag.chains._enrich import INDEXED_TEXT_VERSION, Enriched, ModelCalls, enrich
from mmrag.chains._places import collect, plan_group
from mmrag.chains._split import fit_tables
from mmrag.chains._write import PreparedSource, caption_failed, release_orphans, write_group
from mmrag.elements import Element, content_hash
from mmrag.errors import AccessDeniedError, DiskFullError, MmragError, ParseError
from mmrag.parsers import ParseOptions
from mmrag.parsers._report import collect_warnings
from mmrag.parsers.s3_sources import s3_fingerprint
from mmrag.parsers.sources import display_source, expand_sources, is_url, load_blob, parse_blob

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection
    from mmrag.stores.manifest import Place

__all__ = ["IngestReport", "Progress", "SourceReport", "aingest", "ingest"]

logger = logging.getLogger(__name__)

Writer = Callable[["Sequence[PreparedSource]", "Enriched", "Collection"], None]
"""Writes a group of sources whose models ran: :func:`~mmrag.chains._write.write_group` unless replaced."""
Progress = Callable[[str, int, int | None], None]
"""``progress(stage, advance, total)``: stages ``sources`` (total = number of sources), ``models`` and ``write``
(advance = elements; total None until known), and ``planned`` (advance = new elements handed to the model stage;
their sum is the final total of ``models`` and ``write`` once every source is done; it may be negative for a
group in which pictures turned out to be shared)."""

SourceStatus = Literal["new", "updated", "unchanged", "failed"]
GROUP_ELEMENTS = 128  # new elements per model batch: small enough to overlap parsing, big enough to keep 16 busy
GROUP_SOURCES = 64
_FINGERPRINT_FIELDS = ("chunk_size", "chunk_overlap", "find_tables", "pages_as_images", "render_dpi", "min_image_px")


@dataclass(frozen=True)
class SourceReport:
    """What happened to one source: status, error, elements it now has, and what changed this run."""

    source: str
    status: SourceStatus
    error: str | None = None
    elements: dict[str, int] = field(default_factory=dict)
    added: int = 0
    removed: int = 0
    warnings: tuple[str, ...] = ()
    pending: int = 0
    """Elements indexed but left pending (an image or table whose caption failed): the next run retries them."""
    shared: int = 0
    """New elements of this source already indexed from another place (a picture both in a page and a folder):
    recorded as one more place of that element, not indexed again (:mod:`mmrag.chains._places`)."""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "error": self.error,
                "elements": sum(self.elements.values()), "by_kind": dict(self.elements),
                "added": self.added, "removed": self.removed, "pending": self.pending, "shared": self.shared,
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class IngestReport:
    """The result of one ingest run (``to_dict`` is what ``mmrag ingest --json`` prints)."""

    collection: str
    sources: tuple[SourceReport, ...]
    model_calls: dict[str, Any]
    estimated_cost_usd: float
    seconds: float
    caption_failures: int = 0
    distinct: Mapping[str, int] | None = None
    """Elements by kind over the sources that did not fail, a picture shared by several counted once (None:
    the sum of the sources' counts)."""

    @property
    def ok(self) -> bool:
        """No source failed (some elements may still be pending: see :attr:`complete`)."""
        return all(s.status != "failed" for s in self.sources)

    @property
    def pending(self) -> int:
        """Elements left pending over all sources (captions that failed; the next run retries them)."""
        return sum(s.pending for s in self.sources)

    @property
    def complete(self) -> bool:
        """No source failed and nothing was left pending: ``mmrag ingest`` exits 0 only then."""
        return self.ok and not self.pending

    @property
    def elements(self) -> dict[str, int]:
        """Elements by kind the run's sources hold (what the index holds for them)."""
        if self.distinct is not None:
            return dict(sorted(self.distinct.items()))
        totals: dict[str, int] = {}
        for s in self.sources:
            for kind, n in s.elements.items():
                totals[kind] = totals.get(kind, 0) + n
        return dict(sorted(totals.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "ok": self.ok, "complete": self.complete, "pending": self.pending,
                "sources": [s.to_dict() for s in self.sources],
                "elements": self.elements, "model_calls": self.model_calls,
                "estimated_cost_usd": round(self.estimated_cost_usd, 4), "caption_failures": self.caption_failures,
                "seconds": round(self.seconds, 3)}


def ingest(
    sources: Iterable[str | Path],
    settings: Settings | None = None,
    *,
    providers: Providers | None = None,
    collection: Collection | None = None,
    force: bool = False,
    progress: Progress | None = None,
    batch_size: int = GROUP_ELEMENTS,
    executor: str | None = None,
    ray_address: str | None = None,
    writer: Writer | None = None,
    owner: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    cancel: Callable[[], bool] | None = None,
) -> IngestReport:
    """Ingest sources (paths, folders, globs, URLs) into a collection; never raises for a bad source.

    Args:
        sources: what to ingest; folders and globs expand to their supported files.
        settings: defaults to ``Settings()`` (environment and ``.env``).
        providers: use these model clients instead of building them from ``settings`` (tests, notebooks).
        collection: use this open collection instead of opening it from ``settings``.
        force: re-process sources even when unchanged.
        progress: called as work advances (the CLI draws progress bars with it).
        batch_size: new elements gathered over sources before the model stage runs; larger keeps remote
            models busier, smaller commits sources sooner and holds less in memory.
        executor: ``local`` (threads in this process, the default) or ``ray`` (a Ray cluster: see
            :mod:`mmrag.chains.ray_executor`); default ``MMRAG_EXECUTOR``.
        ray_address: the Ray cluster to use (default ``RAY_ADDRESS``, else a local cluster started for the run).
        writer: what writes a group once its models ran (default :func:`~mmrag.chains._write.write_group`); the
            Ray executor's workers on FAISS hand their groups to the driver with it.
        include: globs a file of a folder or an ``s3://`` prefix must match to be ingested.
        exclude: globs that leave a file of a folder or an ``s3://`` prefix out.
        owner: the name this run's leases are held under (default: host, process and a random part); a Ray task
            retried after its worker died uses the same one, so it takes its own leases back at once.
        cancel: polled between units of work (sources, model slices, group commits); once it returns True, no
            new work or commit starts and KeyboardInterrupt is raised. A KeyboardInterrupt (Ctrl-C, a notebook's
            interrupt) stops the same way. Uncommitted sources are redone by the next run.

    Returns:
        The per-source report, model calls (new vs cached) and an estimated Bedrock cost.
    """
    from mmrag.config import Settings

    settings = settings or Settings()
    if (executor or settings.executor) == "ray":
        from mmrag.chains.ray_executor import ingest_on_ray

        return ingest_on_ray(sources, settings, address=ray_address, force=force, progress=progress,
                             batch_size=batch_size, include=include, exclude=exclude)
    if providers is None or collection is None:
        built_providers, built_collection = open_components(settings)
        providers, collection = providers or built_providers, collection or built_collection
    started = time.perf_counter()
    options = ParseOptions.from_settings(settings)
    calls = ModelCalls()
    reports: dict[str, SourceReport] = {}
    failures = 0
    # Stored, indexed and shown without credentials; the URL as given is only used to fetch.
    given: dict[str, str] = {}
    for s in expand_sources(sources, include=include, exclude=exclude, s3_endpoint_url=settings.s3_endpoint_url):
        given.setdefault(display_source(_normalise(s)), _normalise(s))
    expanded = list(given)
    tick = progress or (lambda stage, n, total: None)
    tick("sources", 0, len(expanded))
    group: list[PreparedSource] = []
    # The model and write stages of one group run in a worker thread while the next group is parsed (parsing
    # is CPU work, the model stage mostly waiting): wall time tends to max(parse, models + write), not the sum.
    # At most one group is in flight, so groups still commit in order and memory stays bounded.
    running: Future[int] | None = None
    stop = threading.Event()

    def stopped() -> bool:
        if cancel is not None and cancel():
            stop.set()
        return stop.is_set()

    def flush(pool: ThreadPoolExecutor) -> None:
        nonlocal running, failures
        if running is not None:
            failures += running.result()
            running = None
        if group:
            running = pool.submit(_run_group, list(group), providers, collection, calls, reports, tick,
                                  writer or write_group, stopped)
            group.clear()

    from mmrag.chains._leases import Heartbeat, lease_owner, wait_for_lease
    from mmrag.chains.upkeep import collection_lock

    manifest, owner = collection.manifest, owner or lease_owner()
    lease = settings.lease_seconds

    def take(source: str, prepared: PreparedSource | None, pool: ThreadPoolExecutor) -> None:
        tick("sources", 1, None)
        if prepared is None:  # unchanged or failed: let another machine have it at once
            manifest.unlease(owner, [source])
            return
        group.append(prepared)
        tick("planned", len(prepared.new), None)
        if sum(len(p.new) for p in group) >= batch_size or len(group) >= GROUP_SOURCES:
            flush(pool)

    deferred: list[str] = []
    interrupted = False
    with collection_lock(collection, exclusive=False), Heartbeat(manifest, owner, seconds=lease), \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmrag-ingest-group") as pool:
        try:
            for source in expanded:
                if stopped():
                    raise KeyboardInterrupt("ingest cancelled")
                if not manifest.acquire(source, owner, lease):
                    deferred.append(source)  # another ingest is on it: judge it when that one is done
                    continue
                take(source, _prepare(given[source], options, providers, collection, force, reports), pool)
            flush(pool)
            for source in deferred:
                if stopped():
                    raise KeyboardInterrupt("ingest cancelled")
                try:
                    wait_for_lease(manifest, source, owner, seconds=lease)
                except MmragError as e:
                    logger.error("%s: %s", source, e)
                    reports[source] = SourceReport(source, "failed", error=str(e))
                    tick("sources", 1, None)
                    continue
                take(source, _prepare(given[source], options, providers, collection, force, reports), pool)
            flush(pool)
            release_orphans(collection)  # objects a crash after a commit left for deletion
            flush(pool)
        except KeyboardInterrupt:
            stop.set()  # the group in flight abandons its model slices and commits nothing
            interrupted = True
        except BaseException:
            stop.set()
            raise
    if interrupted:
        # A fresh exception raised here: a notebook shows two frames and this line, not the pools' stacks (which
        # IPython took seconds to format), and the kernel is idle at once.
        done = sum(1 for s in expanded if s in reports and reports[s].status != "failed")
        raise KeyboardInterrupt(f"ingest stopped: {done} of {len(expanded)} sources are in the collection; "
                                "the next run of the same ingest adds the rest") from None
    ordered = tuple(reports[s] for s in expanded)
    from mmrag.providers.bedrock.prices import ingest_cost  # per model and scope, from the one price table

    cost = ingest_cost(settings, calls.new) if settings.profile == "bedrock" else 0.0
    distinct = collection.manifest.totals(s.source for s in ordered if s.status != "failed")
    return IngestReport(collection.name, ordered, calls.to_dict(), cost, time.perf_counter() - started, failures,
                        distinct)


async def aingest(sources: Iterable[str | Path], settings: Settings | None = None, **kwargs: Any) -> IngestReport:
    """:func:`ingest` in a worker thread, for notebooks and async apps (same arguments).

    Cancelling the awaiting task stops the ingest in its thread too, within a second or two, as Ctrl-C stops
    :func:`ingest` (the thread would otherwise run to the end and commit). In a Jupyter cell call :func:`ingest`:
    ipykernel passes an interrupt to a cell that awaits only once the awaited work ends (ipython/ipykernel#881),
    while a plain call stops at once.
    """
    stop = threading.Event()
    given: Callable[[], bool] | None = kwargs.pop("cancel", None)

    def cancel() -> bool:
        return stop.is_set() or (given is not None and given())

    try:
        return await asyncio.to_thread(ingest, list(sources), settings, cancel=cancel, **kwargs)
    except BaseException:  # CancelledError, KeyboardInterrupt
        stop.set()
        raise


def _normalise(source: str) -> str:
    """Local paths become absolute, so ``a.pdf`` and ``./docs/../a.pdf`` are one source in the manifest."""
    if is_url(source):
        return source
    path = Path(source[len("file://"):] if source.startswith("file://") else source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _fingerprint(data: bytes, options: ParseOptions, providers: Providers, linked: Sequence[str] = (),
                 content: str | None = None) -> str:
    """What decides "unchanged": the bytes, the parse options, the captioner, (pages) the linked images, and the
    version of what is indexed for an element (a new version re-indexes every source once; the model cache
    answers its calls)."""
    parse = {name: getattr(options, name) for name in _FINGERPRINT_FIELDS}
    captioner = str(getattr(providers.captioner, "model_key", type(providers.captioner).__name__))
    parts = [content or content_hash(data), json.dumps(parse, sort_keys=True), captioner,
             f"index-v{INDEXED_TEXT_VERSION}"]
    if linked:
        parts.append(content_hash(*linked))
    return content_hash(*parts)


def _prepare(
    source: str, options: ParseOptions, providers: Providers, collection: Collection, force: bool,
    reports: dict[str, SourceReport],
) -> PreparedSource | None:
    """Load, fingerprint and parse one source; None when it is unchanged or failed (its report is then set)."""
    manifest = collection.manifest
    fetch_as, source = source, display_source(source)
    with collect_warnings() as warnings:
        try:
            entry = manifest.get(source)
            # An S3 object is known by its ETag and size: an unchanged one is skipped without downloading it.
            identity = s3_fingerprint(fetch_as, options.s3_endpoint_url) if fetch_as.startswith("s3://") else None
            if identity is not None and entry is not None and not force and not manifest.pending_ids(source) and \
                    entry.fingerprint == _fingerprint(b"", options, providers, content=identity):
                reports[source] = SourceReport(source, "unchanged", elements=dict(entry.kinds))
                return None
            blob = load_blob(fetch_as, options)
            # A web page is more than its bytes: the images it links to may change on their own. Its
            # fingerprint covers their content too, so a page is parsed (its images loaded) before it can be
            # called unchanged; other sources are judged by their bytes alone, before parsing.
            linked = blob.mime_type in ("text/html", "application/xhtml+xml")
            elements: dict[str, Element] = {}
            places: tuple[Place, ...] = ()
            in_document = not blob.mime_type.startswith("image/")
            if linked:
                elements, places = collect(fit_tables(parse_blob(blob, options), providers.text_embeddings),
                                           in_document=in_document)
            images = sorted(e.content_hash for e in elements.values() if e.kind == "image")
            fingerprint = _fingerprint(blob.data, options, providers, images, content=identity)
            unchanged = entry is not None and entry.fingerprint == fingerprint and not manifest.pending_ids(source)
            if entry is not None and unchanged and not force:
                reports[source] = SourceReport(source, "unchanged", elements=dict(entry.kinds))
                return None
            if not linked:
                elements, places = collect(fit_tables(parse_blob(blob, options), providers.text_embeddings),
                                           in_document=in_document)
        except (AccessDeniedError, DiskFullError):
            raise  # every other source would fail the same way: the run stops (exit 5, 7)
        except MmragError as e:
            reason = e.reason if isinstance(e, ParseError) else str(e)
            logger.error("%s: %s", source, reason)
            reports[source] = SourceReport(source, "failed", error=reason, warnings=tuple(warnings))
            return None
        except Exception as e:  # a parser bug fails its source, not the run
            logger.exception("%s: unexpected error while parsing", source)
            reports[source] = SourceReport(source, "failed", error=f"unexpected error: {type(e).__name__}: {e}",
                                           warnings=tuple(warnings))
            return None
    committed = set() if force else manifest.element_ids(source)
    retry = manifest.pending_ids(source)  # claimed and never committed, or committed without a caption
    new = [e for i, e in elements.items() if i not in committed or i in retry]
    stale = (manifest.element_ids(source) | retry) - set(elements)
    return PreparedSource(source, fingerprint, tuple(elements.values()), tuple(new), frozenset(stale),
                          tuple(warnings), "updated" if entry is not None else "new", places=places)


def _run_group(
    group: Sequence[PreparedSource], providers: Providers, collection: Collection, calls: ModelCalls,
    reports: dict[str, SourceReport], tick: Progress, write: Writer = write_group,
    stopped: Callable[[], bool] = lambda: False,
) -> int:
    """Model stage and writes for a group of sources; a failure is retried source by source to isolate it."""
    given, ticked = group, 0

    def advance(n: int) -> None:  # slices complete in worker threads
        nonlocal ticked
        ticked += n
        tick("models", n, None)

    try:
        # Pictures another place indexes (or will, in this group) become places only; see mmrag.chains._places.
        plan = plan_group(given, collection.manifest, collection.objects)
        group = plan.group
        new = [e for p in group for e in p.new] + list(plan.promoted)
        tick("planned", len(new) - sum(len(p.new) for p in given), None)  # shared pictures are not redone
        enriched = enrich(new, providers, calls, advance, stop=stopped)
        if len(new) > ticked:
            tick("models", len(new) - ticked, None)
        if stopped():
            raise KeyboardInterrupt("ingest cancelled")  # before the commit: the next run redoes the group
        write(group, enriched, collection)
        tick("write", len(new), None)
    except (AccessDeniedError, DiskFullError):
        raise
    except MmragError as e:
        if (full := as_disk_full(e)) is not None:
            raise full from e
        if len(group) > 1:
            logger.warning("a batch of %d sources failed (%s); retrying them one by one", len(group), e)
            # As given: a picture left to a source that failed is then indexed by the one that holds it too.
            return sum(_run_group([p], providers, collection, calls, reports, tick, write, stopped) for p in given)
        logger.error("%s: %s", group[0].source, e)
        reports[group[0].source] = SourceReport(group[0].source, "failed", error=str(e), warnings=group[0].warnings)
        return 0
    failed = caption_failed(enriched)
    for p in group:
        kinds: dict[str, int] = {}
        for element in p.elements:
            kinds[element.kind] = kinds.get(element.kind, 0) + 1
        reports[p.source] = SourceReport(p.source, p.status, elements=kinds, added=len(p.new),
                                         removed=len(p.stale), warnings=p.warnings,
                                         pending=sum(e.id in failed for e in p.new), shared=len(p.shared))
    return enriched.caption_failures

