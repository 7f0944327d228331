"""The model stage of ingest: caption images, summarise tables, embed everything in both spaces.

Work that does not depend on captions (embedding plain text chunks) runs while the captions are written;
the two embeddings that need captions (caption text into the text space, image + caption into the image
space) then run side by side. Each provider bounds its own requests in flight (one shared limiter for
Bedrock), so the overlap keeps the model busy without exceeding ``max_concurrency``.

Every model call goes out in slices of :data:`SLICE` elements, several slices at once: the caching wrappers store
a slice's results as soon as it completes, so a run killed in the middle of a large source loses at most the
slices in flight, and the re-run takes everything else from the cache. ``progress`` is told after each slice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mmrag.elements import Element
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY, embed_images_of_kinds, embedding_text
from mmrag.providers.factory import Providers

__all__ = ["INDEXED_TEXT_VERSION", "Enriched", "ModelCalls", "described_text", "enrich", "indexed_text"]

VISUAL = ("image", "page")
DESCRIBED = ("image", "page", "table")
SLICE = 16  # elements per model call: the unit that is cached as it completes
SLICES_IN_FLIGHT = 4  # slices sent at once (providers still bound their own requests in flight)
STOP_POLL_S = 0.1  # how often a wait for slices in flight looks at ``stop``

Tick = Callable[[int], None]


def _never() -> bool:
    return False


def _sliced(items: Sequence[Element], call: Callable[[list[Element]], list[Any]],
            stop: Callable[[], bool] = _never) -> list[Any]:
    """``call`` over ``items`` in slices, a few at once, results in order.

    Once ``stop()`` is true, slices not started yet raise KeyboardInterrupt instead of running, and the slices in
    flight are abandoned: KeyboardInterrupt is raised within :data:`STOP_POLL_S` instead of waiting for them (a
    slice of OCR or local embeddings takes many seconds). Their threads end when the model call they are in
    returns, and their results are dropped: a model call writes nothing but its cache entry, so nothing of the
    collection is half-written (a Ctrl-C or a notebook's interrupt, issue 25).
    """

    def guarded(part: list[Element]) -> list[Any]:
        if stop():
            raise KeyboardInterrupt("cancelled")
        return call(part)

    if stop is _never and len(items) <= SLICE:  # nothing can cancel it: no thread needed
        return call(list(items))
    slices = [list(items[i : i + SLICE]) for i in range(0, len(items), SLICE)]
    pool = ThreadPoolExecutor(max_workers=SLICES_IN_FLIGHT, thread_name_prefix="mmrag-slice")
    abandoned = False
    try:
        futures = [pool.submit(guarded, part) for part in slices]
        results: list[Any] = []
        for future in futures:
            while not wait([future], timeout=STOP_POLL_S).done:
                if stop():
                    abandoned = True
                    raise KeyboardInterrupt("cancelled")
            results.extend(future.result())
        return results
    except KeyboardInterrupt:  # a slice saw ``stop``, or this thread was interrupted: do not wait for the others
        abandoned = True
        raise
    finally:
        pool.shutdown(wait=not abandoned, cancel_futures=abandoned)


@dataclass
class ModelCalls:
    """Model calls made (``new``) and answered from the cache (``cached``), by role."""

    new: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)

    def add(self, role: str, new: int, cached: int) -> None:
        self.new[role] = self.new.get(role, 0) + new
        self.cached[role] = self.cached.get(role, 0) + cached

    def to_dict(self) -> dict[str, Any]:
        return {"new": sum(self.new.values()), "cached": sum(self.cached.values()),
                "by_role": {r: {"new": self.new.get(r, 0), "cached": self.cached.get(r, 0)}
                            for r in sorted(set(self.new) | set(self.cached))}}


@dataclass(frozen=True)
class Enriched:
    """Elements with captions/summaries, and their vectors by element id (text space, image space)."""

    elements: list[Element]
    text_vectors: dict[str, list[float]]
    image_vectors: dict[str, list[float]]
    caption_failures: int = 0


def indexed_text(element: Element) -> str:
    """What the text space embeds and BM25 matches: the document's name (and title), the end of the page before
    when a chunk goes on from it, the caption or summary, the element's text, and OCR text.

    Questions name their document ("in the strucchange introduction", "the vcd vignette"): with the file name (and
    an HTML page's title) on every element, those words match all of that document's elements alike, so the
    ranking within it follows the rest of the question instead of favouring the title page. A chunk that goes on
    from the page before (``metadata["context"]``, set by the PDF parser) is indexed after the end of that page, so
    a sentence cut by a page break is found together with what it introduces. Bump :data:`INDEXED_TEXT_VERSION`
    whenever this changes: collections re-index on their next ingest.
    """
    text = described_text(element)
    label = _document_label(element, text)
    return f"{label}\n\n{text}" if label and text.strip() else text


def described_text(element: Element) -> str:
    """:func:`indexed_text` without the document label: what the image space pairs with a picture (the caption,
    its context, OCR text). A file name says nothing about what a picture shows, so it stays out of that vector."""
    text = embedding_text(element)
    context = element.metadata.get("context")
    if isinstance(context, str) and context.strip() and context.strip() not in text:
        text = f"{context.strip()}\n\n{text}"
    ocr = element.metadata.get("ocr_text")
    if isinstance(ocr, str) and ocr.strip() and ocr.strip() not in text:
        text = f"{text}\n\n{ocr.strip()}".strip()
    return text


INDEXED_TEXT_VERSION = 3
"""The version of what ingest indexes for an element, for the ingest fingerprint: 1: caption or summary, text, OCR
text; 2: + the document label (text space only) and the page context, and (same release) PDF tables take a header
line from above their rules, pictures have one id wherever they appear, long tables split for Titan; 3: a PDF
chart's drawn words (tick labels, legend) belong to the chart, not to the page's text chunks."""


def _document_label(element: Element, text: str) -> str:
    """The source's file name (a URL's last path segment), then an HTML page's title unless the text has it."""
    source = element.source.split("#", 1)[0].split("?", 1)[0].rstrip("/")
    parts = [source.rsplit("/", 1)[-1]]
    title = element.metadata.get("title")
    if isinstance(title, str) and title.strip() and title.strip() not in text and title.strip() != parts[0]:
        parts.append(" ".join(title.split()))
    return " › ".join(p for p in parts if p)


def _counted(obj: Any) -> tuple[int, int] | None:
    counters = getattr(obj, "counters", None)
    return (counters.hits, counters.misses) if counters is not None else None


class _Meter:
    """Cache hits and misses of one provider over one call (or the number sent, without a cache)."""

    def __init__(self, calls: ModelCalls, role: str, provider: Any, sent: int) -> None:
        self.calls, self.role, self.provider, self.sent = calls, role, provider, sent

    def __enter__(self) -> None:
        self.before = _counted(self.provider)

    def __exit__(self, *exc: object) -> None:
        after = _counted(self.provider)
        if self.before is None or after is None:
            self.calls.add(self.role, self.sent, 0)
        else:
            self.calls.add(self.role, after[1] - self.before[1], after[0] - self.before[0])


def enrich(elements: Sequence[Element], providers: Providers, calls: ModelCalls,
           progress: Tick | None = None, *, stop: Callable[[], bool] = _never) -> Enriched:
    """Caption, summarise and embed ``elements`` (which still carry their bytes).

    Args:
        progress: called with the number of elements whose text-space embedding just completed.
        stop: polled before each model slice; once true, the slices not started raise KeyboardInterrupt.
    """
    tick = progress or (lambda n: None)
    to_describe = [e for e in elements if e.kind in DESCRIBED]
    plain = [e for e in elements if e.kind not in DESCRIBED and e.text.strip()]
    text_vectors: dict[str, list[float]] = {}
    image_vectors: dict[str, list[float]] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mmrag-ingest") as pool:
        captions = pool.submit(_describe, to_describe, providers, calls, stop)
        text_vectors.update(_embed_texts(plain, providers, calls, "text embeddings", tick, stop))
        described = captions.result()
        visual = [e for e in described if e.kind in VISUAL and e.data is not None]
        images = pool.submit(_embed_images, visual, providers, calls, stop)
        text_vectors.update(_embed_texts([e for e in described if indexed_text(e).strip()], providers, calls,
                                         "text embeddings", tick, stop))
        image_vectors.update(images.result())
    failures = sum(1 for e in described if not (e.metadata.get(CAPTION_KEY) or e.metadata.get(SUMMARY_KEY)))
    by_id = {e.id: e for e in described}
    return Enriched([by_id.get(e.id, e) for e in elements], text_vectors, image_vectors, failures)


def _describe(elements: list[Element], providers: Providers, calls: ModelCalls,
              stop: Callable[[], bool] = _never) -> list[Element]:
    if not elements:
        return []
    with _Meter(calls, "captions", providers.captioner, len(elements)):
        return _sliced(elements, providers.captioner.caption, stop)


def _embed_texts(elements: list[Element], providers: Providers, calls: ModelCalls, role: str,
                 tick: Tick, stop: Callable[[], bool] = _never) -> dict[str, list[float]]:
    if not elements:
        return {}

    def embed(part: list[Element]) -> list[list[float]]:
        vectors = providers.text_embeddings.embed_documents([indexed_text(e) for e in part])
        tick(len(part))
        return vectors

    with _Meter(calls, role, providers.text_embeddings, len(elements)):
        vectors = _sliced(elements, embed, stop)
    return {e.id: list(v) for e, v in zip(elements, vectors, strict=True)}


def _embed_images(elements: list[Element], providers: Providers, calls: ModelCalls,
                  stop: Callable[[], bool] = _never) -> dict[str, list[float]]:
    if not elements:
        return {}

    def embed(part: list[Element]) -> list[list[float]]:
        # The kinds let an embedder read page renders as documents (Nova: detailLevel DOCUMENT_IMAGE).
        return embed_images_of_kinds(providers.image_embedder, [e.data for e in part if e.data is not None],
                                     [e.kind for e in part], [described_text(e) or None for e in part])

    with _Meter(calls, "image embeddings", providers.image_embedder, len(elements)):
        from mmrag.chains._media import clip_vectors

        shots = clip_vectors(elements, providers.image_embedder)  # video keyframes, where the model embeds video
        rest = [e for e in elements if e.id not in shots]
        vectors = _sliced(rest, embed, stop) if rest else []
    return {**{e.id: list(v) for e, v in zip(rest, vectors, strict=True)}, **shots}
