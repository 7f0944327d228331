"""The query chain: decompose → retrieve per sub-question (in parallel) → fuse every list → cited synthesis.

``build_query_chain(settings)`` returns a LangChain ``Runnable`` that is literally the stages of
:mod:`mmrag.chains.stages` joined with ``|`` (``RunnablePassthrough.assign`` carries the question along)::

    state(question) | assign(sub_questions=decompose) | assign(lists=retrieve) | assign(hits=fuse) | synthesize

- ``chain.invoke("question")`` → an :class:`~mmrag.answers.Answer` (text with [n] markers, citations, hits);
- ``chain.stream(...)`` / ``chain.astream(...)`` yield the answer's text tokens as ``str``, then the ``Answer``;
- ``ainvoke``, ``batch``, ``abatch`` and ``astream_events`` work as for any Runnable; the run is named
  ``mmrag_query`` and callbacks / tags in ``config`` reach every stage and model call.

Any stage can be replaced by keyword: ``decompose=``, ``retriever=`` (any LangChain ``BaseRetriever``) or
``retrieve=``, ``fuse=`` (e.g. ``weighted_fusion({"image": 2.0})``) and ``synthesize=`` (e.g. ``prompt | model``: a
replacement receives ``{"question", "sub_questions", "lists", "hits", "context"}``, ``context`` being the numbered,
fenced evidence text).

Two modes: ``fusion`` (default) fuses the ranked lists of every sub-question — dense text, BM25 and the
image space — into one ranking and synthesises once; ``qa-pairs`` (the classic decomposition recipe) first
answers each sub-question from that evidence, then synthesises the final answer from the Q+A pairs.

Without a chat model (the offline profile) decomposition is rule-based and the answer is extractive: quoted
evidence with the same citation structure, labelled as such (``Answer.mode == "extractive"``); ``qa-pairs`` then
runs as ``fusion``, since no model can draft the sub-answers.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from mmrag.errors import NotFoundError
from mmrag.retrievers.fusion import RRF_K
from mmrag.retrievers.multimodal import MultimodalRetriever
from mmrag.stores.base import ScoredRecord

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable

    from mmrag.config import Settings
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = ["QueryOptions", "build_query_chain", "metadata_filter", "retrieve_all"]

logger = logging.getLogger(__name__)

Mode = Literal["fusion", "qa-pairs"]
Fusion = Literal["rrf", "weighted", "relative"]


@dataclass(frozen=True)
class QueryOptions:
    """How a question is answered.

    Attributes:
        k: results per ranked list (per sub-question and per list: dense, bm25, image).
        context_size: fused hits the synthesis sees.
        max_sub_questions: the original question plus up to this many minus one sub-questions.
        decompose: split the question at all.
        mode: ``fusion`` or ``qa-pairs``.
        max_images: image/page hits attached to the synthesis request as images.
        filter: metadata filter for every list (see :func:`metadata_filter`).
        rrf_k: the reciprocal rank fusion constant.
        fusion: ``rrf`` (default), ``weighted`` (weighted RRF) or ``relative`` (relative score fusion).
        weights: list weights for ``weighted`` / ``relative``, per list kind (``{"image": 2.0}``) or list name.
        answer_cache: reuse answers to similar questions on the same collection state (see
            :mod:`mmrag.chains.answer_cache`); None: follow ``MMRAG_ANSWER_CACHE``.
        cache_threshold: cosine similarity from which a cached question counts as the same; None: the default.
        cues: when a (sub-)question names a figure, chart, diagram... or a table, add dense and BM25 lists
            restricted to image/page (or table) elements, and when it quotes code (``data()``, ``coint.res``) or
            names a numbered figure or table ("Figure 15.4"), a BM25 list of the best match that holds it, so such
            evidence reaches the context (see :mod:`mmrag.retrievers.cues`).
        cover: open the fused hits with the best hit of every sub-question, so each part of a multi-part question
            has evidence in the context (see :mod:`mmrag.retrievers.coverage`); a single question is unchanged.
            Applies to the built-in fusions, not to a ``fuse=`` stage passed to :func:`build_query_chain`.
        continuations: put right after a text hit that stops mid-sentence ("... chosen by", "you could use:") the
            chunk that continues it (see :mod:`mmrag.retrievers.continuation`).
        names: add a BM25 list searched with only the names the question uses (``hn1``, ``SIGXCPU``; see
            :mod:`mmrag.chains.hops`).
        bridge: for a bridge question ("the family of the language of voice ic1"), a second retrieval round from
            the table cell the first round found (see :mod:`mmrag.chains.hops`).
    """

    k: int = 8
    context_size: int = 10
    max_sub_questions: int = 4
    decompose: bool = True
    mode: Mode = "fusion"
    max_images: int = 4
    filter: dict[str, Any] | None = None
    rrf_k: int = RRF_K
    fusion: Fusion = "rrf"
    weights: Mapping[str, float] = field(default_factory=dict)
    answer_cache: bool | None = None
    cache_threshold: float | None = None
    cues: bool = True
    cover: bool = True
    continuations: bool = True
    names: bool = True
    bridge: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("fusion", "qa-pairs"):
            raise ValueError(f"mode must be 'fusion' or 'qa-pairs', not {self.mode!r}")
        if self.fusion not in ("rrf", "weighted", "relative"):
            raise ValueError(f"fusion must be 'rrf', 'weighted' or 'relative', not {self.fusion!r}")
        if self.weights and self.fusion == "rrf":
            raise ValueError("weights need fusion 'weighted' or 'relative' (plain RRF weighs every list the same)")
        if min(self.k, self.context_size, self.max_sub_questions) < 1 or self.max_images < 0:
            raise ValueError("k, context_size and max_sub_questions must be at least 1; max_images at least 0")
        if self.cache_threshold is not None and not 0 < self.cache_threshold <= 1:
            raise ValueError(f"cache_threshold must be in (0, 1], not {self.cache_threshold!r}")


def retrieve_all(retriever: MultimodalRetriever, sub_questions: Sequence[str],
                 filter: dict[str, Any] | None = None) -> dict[str, list[ScoredRecord]]:
    """Every ranked list of every sub-question, named ``<list>:q<i>``; sub-questions run in parallel."""
    workers = max(1, min(len(sub_questions), 8))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrag-retrieve") as pool:
        ranked = list(pool.map(lambda q: retriever.rank(q, filter=filter), sub_questions))
    return {f"{name}:q{i}": hits for i, lists in enumerate(ranked, 1) for name, hits in lists.items()}


def metadata_filter(collection: Collection, *, sources: Iterable[str] = (), kinds: Iterable[str] = (),
                    pages: Iterable[int] = ()) -> dict[str, Any] | None:
    """A search filter from user-level terms; None when nothing is restricted.

    Args:
        collection: resolves ``sources`` against the sources it holds (its manifest).
        sources: glob patterns (``*.pdf``, ``tests/data/pdf/*``, ``https://example.org/*``). A pattern matches a
            source recorded in the collection by its full path or URL, its path relative to the working directory,
            or, for a pattern without ``/``, its file name.
        kinds: element kinds (``text``, ``table``, ``image``, ``page``).
        pages: 1-based page numbers.

    Raises:
        NotFoundError: a source pattern matches no source of the collection.
    """
    out: dict[str, Any] = {}
    patterns = list(sources)
    if patterns:
        known = [entry.source for entry in collection.manifest.sources()]
        matched: list[str] = []
        for pattern in patterns:
            found = [s for s in known if _source_matches(s, pattern)]
            if not found:
                listed = ", ".join(known[:5]) + (" ..." if len(known) > 5 else "") or "none"
                raise NotFoundError(f"no source of collection {collection.name!r} matches {pattern!r} "
                                    f"(sources: {listed})")
            matched.extend(s for s in found if s not in matched)
        out["source"] = matched
    if kinds := list(dict.fromkeys(kinds)):
        out["kind"] = kinds
    if page_list := list(dict.fromkeys(pages)):
        out["page"] = page_list
    return out or None


def _source_matches(source: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(source, pattern):
        return True
    if source.startswith(("http://", "https://")):
        return False
    if "/" not in pattern:
        return fnmatch.fnmatchcase(os.path.basename(source), pattern)
    return (fnmatch.fnmatchcase(source, os.path.abspath(pattern))
            or fnmatch.fnmatchcase(os.path.relpath(source), os.path.normpath(pattern)))


def _state(question: Any) -> dict[str, Any]:
    """The chain's input, ``"question"`` or ``{"question": ...}``, as the state the stages add to."""
    text = question.get("question") if isinstance(question, Mapping) else question
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the question is empty")
    return {"question": text.strip()}


def _context(state: Mapping[str, Any]) -> str:
    from mmrag.chains.synthesis import render_context

    return render_context(state["hits"])


def build_query_chain(
    settings: Settings | None = None,
    *,
    providers: Providers | None = None,
    collection: Collection | None = None,
    options: QueryOptions | None = None,
    decompose: Runnable[str, list[str]] | None = None,
    retriever: BaseRetriever | None = None,
    retrieve: Runnable[list[str], dict[str, list[Any]]] | None = None,
    fuse: Runnable[dict[str, list[Any]], list[Any]] | None = None,
    synthesize: Runnable[Any, Any] | None = None,
) -> Runnable[Any, Any]:
    """The query chain over one collection (see the module docstring for what it yields).

    Args:
        settings: used to build the providers and open the collection when they are needed and not given.
        providers: use these model clients (tests, notebooks, apps that already hold them).
        collection: use this open collection, likewise.
        options: retrieval, fusion and synthesis options.
        decompose: replaces the decompose stage (``str -> list[str]``).
        retriever: any LangChain retriever, used as the retrieve stage (see
            :func:`~mmrag.chains.stages.retrieve_stage`).
        retrieve: replaces the retrieve stage (``list[str] -> dict[str, list]``); wins over ``retriever``.
        fuse: replaces the fuse stage (``dict[str, list] -> list[Hit]``).
        synthesize: replaces the synthesize stage; it receives the state dict (see the module docstring).
    """
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from mmrag.chains.stages import decompose_stage, fuse_stage, retrieve_stage, synthesize_stage

    options = options or QueryOptions()
    needs_collection = (retriever is None and retrieve is None) or synthesize is None
    cached = _cache_enabled(options, settings)
    needs_collection = needs_collection or cached
    needs_providers = needs_collection or decompose is None
    if needs_collection and (providers is None or collection is None):
        from mmrag.chains._components import open_components
        from mmrag.config import Settings

        # Asking never creates a collection: a missing one is a NotFoundError naming the known ones.
        built_providers, built_collection = open_components(settings or Settings(), create=False)
        if collection is None and not built_collection.manifest.sources():
            from mmrag.errors import NotFoundError

            raise NotFoundError(f"collection {built_collection.name!r} is empty: add documents with "
                                f"`mmrag ingest SOURCE... -c {built_collection.name}`")
        providers, collection = providers or built_providers, collection or built_collection
    elif needs_providers and providers is None:
        from mmrag.config import Settings
        from mmrag.providers.factory import build_providers

        providers = build_providers(settings or Settings())

    if decompose is None:
        assert providers is not None
        decompose = decompose_stage(providers.fast_chat, max_sub_questions=options.max_sub_questions,
                                    enabled=options.decompose)
    own_retrieve = retrieve is not None or (retriever is not None and not isinstance(retriever, MultimodalRetriever))
    if retrieve is None:
        if retriever is None:
            assert providers is not None and collection is not None
            retriever = MultimodalRetriever(
                collection=collection, text_embeddings=providers.text_embeddings,
                image_embedder=providers.image_embedder, k=options.k, filter=options.filter, cues=options.cues)
        retrieve = retrieve_stage(retriever, filter=options.filter)
    own_fuse = fuse is not None  # a fuse stage passed in decides the order itself: no coverage step after it
    if fuse is None:
        fuse = fuse_stage(options.fusion, weights=options.weights or None, k=options.rrf_k,
                          limit=options.context_size)
    steps: list[Any] = [
        RunnableLambda(_state, name="question"),
        RunnablePassthrough.assign(sub_questions=itemgetter("question") | decompose),
        RunnablePassthrough.assign(lists=itemgetter("sub_questions") | retrieve),
    ]
    from mmrag.chains.hops import bridge_stage, names_stage

    if options.names and collection is not None and not own_retrieve:
        steps.append(RunnablePassthrough.assign(lists=names_stage(collection, k=options.k, filter=options.filter)))
    steps.append(RunnablePassthrough.assign(hits=itemgetter("lists") | fuse))
    if options.cover and not own_fuse:
        from mmrag.retrievers.coverage import cover_sub_questions

        steps.append(RunnablePassthrough.assign(hits=RunnableLambda(
            lambda state: cover_sub_questions(state["hits"], state["lists"], k=options.rrf_k,
                                              limit=options.context_size, weights=options.weights or None),
            name="cover")))
    if options.bridge and isinstance(retriever, MultimodalRetriever) and not own_retrieve:
        steps.append(bridge_stage(retriever, filter=options.filter, k=options.rrf_k, limit=options.context_size))
    if options.continuations and collection is not None:
        from mmrag.retrievers.continuation import with_continuations

        steps.append(RunnablePassthrough.assign(hits=RunnableLambda(
            lambda state: with_continuations(state["hits"], collection.text, limit=options.context_size,
                                             filter=options.filter),
            name="continuations")))
    if collection is not None:  # a picture that is in a page and a folder is one hit listing both places
        from mmrag.retrievers.search import with_places

        steps.append(RunnablePassthrough.assign(
            hits=RunnableLambda(lambda state: with_places(state["hits"], collection), name="places")))
    if synthesize is None:
        assert providers is not None and collection is not None
        synthesize = synthesize_stage(providers.strong_chat, objects=collection.objects,
                                      max_images=options.max_images, mode=options.mode,
                                      sub_answer_model=providers.fast_chat)
    else:
        steps.append(RunnablePassthrough.assign(context=RunnableLambda(_context, name="context")))
    chain: Runnable[Any, Any] = steps[0]
    for step in [*steps[1:], synthesize]:
        chain = chain | step
    chain = chain.with_config(run_name="mmrag_query")
    if cached:
        from mmrag.chains.answer_cache import AnswerCache, with_answer_cache

        assert providers is not None and collection is not None
        threshold = options.cache_threshold or (settings.answer_cache_threshold if settings is not None else None)
        cache = AnswerCache.for_collection(collection, providers.text_embeddings, threshold=threshold)
        chain = with_answer_cache(chain, cache, variant=_variant(options, providers))
    return chain


def _cache_enabled(options: QueryOptions, settings: Settings | None) -> bool:
    if options.answer_cache is not None:
        return options.answer_cache
    from mmrag.config import Settings

    return (settings or Settings()).answer_cache


def _variant(options: QueryOptions, providers: Providers) -> str:
    """What besides the question and the data decides an answer: the options and the answering model."""
    model = getattr(providers.strong_chat, "model_id", None) or ("extractive" if providers.strong_chat is None
                                                                  else type(providers.strong_chat).__name__)
    parts = {"k": options.k, "context": options.context_size, "subs": options.max_sub_questions,
             "decompose": options.decompose, "mode": options.mode, "images": options.max_images,
             "filter": options.filter, "rrf_k": options.rrf_k, "fusion": options.fusion,
             "weights": dict(sorted(options.weights.items())), "cues": options.cues, "cover": options.cover,
             "continuations": options.continuations, "names": options.names, "bridge": options.bridge,
             "model": str(model)}
    return repr(sorted(parts.items(), key=lambda kv: kv[0]))
