"""Pipeline variants to compare, and how one question runs through one of them.

Every variant is built from the library's own pieces on one already-ingested collection (nothing is re-ingested).
The decomposing variants run :func:`~mmrag.chains.query.build_query_chain` itself, the pipeline ``mmrag ask``
ships (decomposition, :class:`~mmrag.retrievers.multimodal.MultimodalRetriever` with its cue lists, the default
fusion and the same synthesis: the extractive answerer offline, the strong chat model otherwise); the single-query
variants use the retriever's ``use_bm25``/``use_images`` switches, the collection's BM25 index and
:func:`~mmrag.retrievers.fusion.reciprocal_rank_fusion`.

========================  ============================================================================
``dense``                 the question's dense text list only
``bm25``                  the question's BM25 list only
``hybrid``                dense + BM25 (+ the image list when the image model embeds text), RRF, no decomposition
                          and no cue lists
``decompose+rrf``         the default query chain (``mmrag ask``): decomposition, then every list of every
                          sub-question (with the cue lists of :mod:`mmrag.retrievers.cues`) fused, each
                          sub-question's best hit moved to the front (:mod:`mmrag.retrievers.coverage`) and cut
                          sentences continued (:mod:`mmrag.retrievers.continuation`)
``no-cues``               as ``decompose+rrf`` without the cue lists (an ablation)
``qa-pairs``              as ``decompose+rrf``, answered sub-question by sub-question first (needs a chat
                          model; offline the answer is the same extractive one, so it equals ``decompose+rrf``)
========================  ============================================================================
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    """A way of answering: which ranked lists, whether to decompose, and the synthesis mode.

    A decomposing variant runs the default query chain (``lists`` is then informative only); ``cues`` switches the
    retriever's kind-restricted cue lists.
    """

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
    Variant("decompose+rrf", ("dense", "bm25", "image"), decompose=True, cues=True,
            description="the default query chain: sub-questions, every list (cue lists too) fused"),
    Variant("no-cues", ("dense", "bm25", "image"), decompose=True,
            description="as decompose+rrf without the figure/table cue lists"),
    Variant("qa-pairs", ("dense", "bm25", "image"), decompose=True, mode="qa-pairs", cues=True,
            description="as decompose+rrf, each sub-question answered first (chat model only)"),
)}
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
    """Run ``question`` through ``variant`` and time it (decomposition, retrieval, fusion and the answer).

    A follow-up (``question.history``) is first made standalone as ``mmrag chat`` does
    (:func:`~mmrag.chains.conversation.condense_question`: the fast model, or the rules offline).
    """
    from mmrag.retrievers.multimodal import MultimodalRetriever

    counter = CallCounter(local=local)
    config: Any = {"callbacks": [counter]}
    started = time.perf_counter()
    if question.history:
        from langchain_core.messages import HumanMessage

        from mmrag.chains.conversation import condense_question

        standalone = condense_question(providers.fast_chat).invoke(
            {"question": question.question, "history": [HumanMessage(h) for h in question.history]}, config)
        question = replace(question, question=str(standalone))
    if question.query_image is not None:
        data = question.query_image.read_bytes()
        counter.add(providers.image_embedder.model_id, 0, 0)
        [vector] = providers.image_embedder.embed_images([data])
        found = collection.image.search(vector, k=options.k, filter=options.filter)
        hits = [Hit(h.element, h.score, ("image:q1",)) for h in found][: options.context_size]
        return Run((question.question,), tuple(hits), None, time.perf_counter() - started, counter.usage)
    embeddings = CountingEmbeddings(providers.text_embeddings, counter,
                                    _model_id(providers.text_embeddings, "text embeddings"))
    if variant.decompose:
        from mmrag.chains.query import build_query_chain

        counted = replace(providers, text_embeddings=embeddings)
        chain = build_query_chain(providers=counted, collection=collection, options=replace(
            options, mode=variant.mode, cues=variant.cues, answer_cache=False))
        answer = chain.invoke(question.question, config)
        return Run(answer.sub_questions, answer.hits, answer, time.perf_counter() - started, counter.usage)
    retriever = MultimodalRetriever(collection=collection, text_embeddings=embeddings,
                                    image_embedder=providers.image_embedder, k=options.k, filter=options.filter,
                                    use_bm25="bm25" in variant.lists, use_images="image" in variant.lists,
                                    cues=False)
    if "dense" in variant.lists:
        lists = {name: hits for name, hits in retriever.rank(question.question).items() if name in variant.lists}
    else:
        lists = {"bm25": collection.text.keyword_search(question.question, k=options.k, filter=options.filter)}
    named: dict[str, list[ScoredRecord]] = {f"{name}:q1": hits for name, hits in lists.items()}
    fused = reciprocal_rank_fusion(named, options.rrf_k, limit=options.context_size)
    answer = _answer(question.question, fused, providers, collection, options, config)
    return Run((question.question,), tuple(fused), answer, time.perf_counter() - started, counter.usage)


def _answer(question: str, hits: list[Hit], providers: Providers, collection: Collection, options: QueryOptions,
            config: Any) -> Answer:
    """The single-query variants' answer: the synthesis of the query chain, on their own hits."""
    from mmrag.providers.offline import extractive_answer

    strong = providers.strong_chat
    if strong is None or not hits:
        return extractive_answer(question, hits, sub_questions=[question])
    from mmrag.chains.synthesis import citations_for, load_images, synthesis_messages

    images = load_images(hits, collection.objects, options.max_images)
    text = _complete(strong, synthesis_messages(question, [question], hits, images), config)
    return Answer(question, text, "generated", (question,), citations_for(text, hits, collection.objects),
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
