"""Pipeline variants to compare, and how one question runs through one of them.

Every variant is built from the library's own pieces on one already-ingested collection (nothing is re-ingested):
:class:`~mmrag.retrievers.multimodal.MultimodalRetriever` (its ``use_bm25``/``use_images`` switches), the
collection's BM25 index, :func:`~mmrag.retrievers.fusion.reciprocal_rank_fusion`, the decomposition chain and the
same synthesis the query chain uses (the extractive answerer offline, the strong chat model otherwise).

========================  ============================================================================
``dense``                 the question's dense text list only
``bm25``                  the question's BM25 list only
``hybrid``                dense + BM25 (+ the image list when the image model embeds text), RRF, no decomposition
``decompose+rrf``         decomposition, then every list of every sub-question fused by RRF (the default chain)
``qa-pairs``              as ``decompose+rrf``, answered sub-question by sub-question first (needs a chat
                          model; offline the answer is the same extractive one, so it equals ``decompose+rrf``)
``decompose+rrf+cues``    as ``decompose+rrf``, plus, when the question names a figure/chart/diagram/plot/
                          screenshot (or a table), dense and BM25 lists restricted to image and page elements
                          (or tables) for every sub-question: a proposal for the query chain, measured here
========================  ============================================================================
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mmrag.answers import Answer, Hit
from mmrag.eval.usage import CallCounter, CountingEmbeddings, Usage
from mmrag.retrievers.fusion import reciprocal_rank_fusion
from mmrag.stores.base import ScoredRecord

if TYPE_CHECKING:
    from mmrag.chains.query import QueryOptions
    from mmrag.eval.golden import GoldenQuestion
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = ["DEFAULT_VARIANTS", "VARIANTS", "Run", "Variant", "run_question"]


@dataclass(frozen=True)
class Variant:
    """A way of answering: which ranked lists, whether to decompose, and the synthesis mode."""

    name: str
    lists: tuple[str, ...]
    decompose: bool = False
    mode: Literal["fusion", "qa-pairs"] = "fusion"
    description: str = ""
    cues: bool = False


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("dense", ("dense",), description="dense text list only"),
    Variant("bm25", ("bm25",), description="BM25 list only"),
    Variant("hybrid", ("dense", "bm25", "image"), description="dense + BM25 (+ image space), RRF"),
    Variant("decompose+rrf", ("dense", "bm25", "image"), decompose=True,
            description="sub-questions, every list of every sub-question fused by RRF"),
    Variant("qa-pairs", ("dense", "bm25", "image"), decompose=True, mode="qa-pairs",
            description="as decompose+rrf, each sub-question answered first (chat model only)"),
    Variant("decompose+rrf+cues", ("dense", "bm25", "image"), decompose=True, cues=True,
            description="as decompose+rrf, plus kind-restricted lists when the question names a figure or table"),
)}
_VISUAL_CUE = re.compile(r"\b(?:figure|fig\.|chart|diagram|screenshot|image|picture|photo|plot|graph|illustration|"
                         r"drawing)s?\b", re.IGNORECASE)
_TABLE_CUE = re.compile(r"\btables?\b", re.IGNORECASE)


def cue_filters(question: str) -> dict[str, dict[str, Any]]:
    """Extra kind filters a question asks for by naming what it wants: ``{"visual": {"kind": ["image", "page"]}}``
    when it names a figure, chart, diagram, plot, screenshot..., ``{"table": {"kind": ["table"]}}`` for a table."""
    out: dict[str, dict[str, Any]] = {}
    if _VISUAL_CUE.search(question):
        out["visual"] = {"kind": ["image", "page"]}
    if _TABLE_CUE.search(question):
        out["table"] = {"kind": ["table"]}
    return out
DEFAULT_VARIANTS = ("dense", "bm25", "hybrid", "decompose+rrf")
"""Run when none are named; ``qa-pairs`` is added when a chat model is configured (offline it equals
``decompose+rrf``)."""


@dataclass(frozen=True)
class Run:
    """What one variant did with one question."""

    sub_questions: tuple[str, ...]
    hits: tuple[Hit, ...]
    answer: Answer | None
    latency_s: float
    usage: Usage


def _model_id(model: Any, fallback: str) -> str:
    return str(getattr(model, "model_id", None) or getattr(model, "model_name", None) or fallback)


def run_question(question: GoldenQuestion, variant: Variant, providers: Providers, collection: Collection,
                 options: QueryOptions, *, local: bool) -> Run:
    """Run ``question`` through ``variant`` and time it (decomposition, retrieval, fusion and the answer)."""
    from mmrag.chains.decomposition import decompose_chain
    from mmrag.retrievers.multimodal import MultimodalRetriever

    counter = CallCounter(local=local)
    config: Any = {"callbacks": [counter]}
    started = time.perf_counter()
    if question.query_image is not None:
        data = question.query_image.read_bytes()
        counter.add(providers.image_embedder.model_id, 0, 0)
        [vector] = providers.image_embedder.embed_images([data])
        found = collection.image.search(vector, k=options.k, filter=options.filter)
        hits = [Hit(h.element, h.score, ("image:q1",)) for h in found][: options.context_size]
        return Run((question.question,), tuple(hits), None, time.perf_counter() - started, counter.usage)
    subs = [question.question]
    if variant.decompose:
        decomposer = decompose_chain(providers.fast_chat, max_sub_questions=options.max_sub_questions)
        subs = list(decomposer.invoke(question.question, config)) or subs
    embeddings = CountingEmbeddings(providers.text_embeddings, counter,
                                    _model_id(providers.text_embeddings, "text embeddings"))
    retriever = MultimodalRetriever(collection=collection, text_embeddings=embeddings,
                                    image_embedder=providers.image_embedder, k=options.k, filter=options.filter,
                                    use_bm25="bm25" in variant.lists, use_images="image" in variant.lists)

    cues = cue_filters(question.question) if variant.cues else {}

    def lists_for(sub: str) -> dict[str, list[ScoredRecord]]:
        if "dense" not in variant.lists:
            return {"bm25": collection.text.keyword_search(sub, k=options.k, filter=options.filter)}
        lists = {name: hits for name, hits in retriever.rank(sub).items() if name in variant.lists}
        for cue, extra in cues.items():
            narrowed = {**(options.filter or {}), **extra}
            for name, hits in retriever.rank(sub, filter=narrowed).items():
                if name in ("dense", "bm25"):
                    lists[f"{name}-{cue}"] = hits
        return lists

    with ThreadPoolExecutor(max_workers=max(1, min(len(subs), 8)), thread_name_prefix="mmrag-eval") as pool:
        ranked = list(pool.map(lists_for, subs))
    named = {f"{name}:q{i}": hits for i, lists in enumerate(ranked, 1) for name, hits in lists.items()}
    fused = reciprocal_rank_fusion(named, options.rrf_k, limit=options.context_size)
    answer = _answer(question.question, subs, fused, variant, providers, collection, options, config)
    return Run(tuple(subs), tuple(fused), answer, time.perf_counter() - started, counter.usage)


def _answer(question: str, subs: list[str], hits: list[Hit], variant: Variant, providers: Providers,
            collection: Collection, options: QueryOptions, config: Any) -> Answer:
    """The same synthesis as :func:`mmrag.chains.query.build_query_chain`, with the run's callbacks."""
    from mmrag.providers.offline import extractive_answer

    strong = providers.strong_chat
    if strong is None or not hits:
        return extractive_answer(question, hits, sub_questions=subs)
    from mmrag.chains.synthesis import citations_for, load_images, synthesis_messages

    images = load_images(hits, collection.objects, options.max_images)
    pairs: list[tuple[str, str]] = []
    sub_only = [s for s in subs if s.strip() != question.strip()]
    if variant.mode == "qa-pairs" and sub_only:
        model = providers.fast_chat or strong
        with ThreadPoolExecutor(max_workers=min(len(sub_only), 8), thread_name_prefix="mmrag-eval-qa") as pool:
            pairs = list(pool.map(lambda s: (s, _complete(model, synthesis_messages(s, [], hits, images), config)),
                                  sub_only))
    text = _complete(strong, synthesis_messages(question, subs, hits, images, qa_pairs=pairs), config)
    return Answer(question, text, "generated", tuple(subs), citations_for(text, hits, collection.objects),
                  tuple(hits))


def _complete(model: Any, messages: Sequence[Any], config: Any) -> str:
    from mmrag.providers.bedrock.claude import stream_with_retry

    parts: list[str] = []
    for chunk in stream_with_retry(model, messages, config=config):
        content = chunk.content
        if isinstance(content, str):
            parts.append(content)
            continue
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
    return "".join(parts).strip()
