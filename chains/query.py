"""The query chain: decompose → retrieve per sub-question (in parallel) → RRF over every list → cited synthesis.

``build_query_chain(settings)`` returns a LangChain ``Runnable``:

- ``chain.invoke("question")`` → an :class:`~mmrag.answers.Answer` (text with [n] markers, citations, hits);
- ``chain.stream(...)`` / ``chain.astream(...)`` yield the answer's text tokens as ``str``, then the ``Answer``;
- ``ainvoke``, ``batch`` and ``abatch`` work as for any Runnable.

Two modes: ``fusion`` (default) fuses the ranked lists of every sub-question — dense text, BM25 and the
image space — into one ranking and synthesises once; ``qa-pairs`` (the classic decomposition recipe) first
answers each sub-question from that evidence, then synthesises the final answer from the Q+A pairs.

Without a chat model (the offline profile) decomposition is rule-based and the answer is extractive: quoted
evidence with the same citation structure, labelled as such (``Answer.mode == "extractive"``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from mmrag.answers import Answer, Hit
from mmrag.chains.decomposition import decompose_chain
from mmrag.chains.synthesis import citations_for, load_images, object_uri, synthesis_messages
from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion
from mmrag.retrievers.multimodal import MultimodalRetriever
from mmrag.stores.base import ScoredRecord

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

    from mmrag.config import Settings
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = ["QueryOptions", "build_query_chain", "retrieve_all"]

logger = logging.getLogger(__name__)

Mode = Literal["fusion", "qa-pairs"]


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
        filter: metadata filter for every list.
        rrf_k: the reciprocal rank fusion constant.
    """

    k: int = 8
    context_size: int = 10
    max_sub_questions: int = 4
    decompose: bool = True
    mode: Mode = "fusion"
    max_images: int = 4
    filter: dict[str, Any] | None = None
    rrf_k: int = RRF_K

    def __post_init__(self) -> None:
        if self.mode not in ("fusion", "qa-pairs"):
            raise ValueError(f"mode must be 'fusion' or 'qa-pairs', not {self.mode!r}")
        if min(self.k, self.context_size, self.max_sub_questions) < 1 or self.max_images < 0:
            raise ValueError("k, context_size and max_sub_questions must be at least 1; max_images at least 0")


def retrieve_all(retriever: MultimodalRetriever, sub_questions: Sequence[str],
                 filter: dict[str, Any] | None = None) -> dict[str, list[ScoredRecord]]:
    """Every ranked list of every sub-question, named ``<list>:q<i>``; sub-questions run in parallel."""
    workers = max(1, min(len(sub_questions), 8))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrag-retrieve") as pool:
        ranked = list(pool.map(lambda q: retriever.rank(q, filter=filter), sub_questions))
    return {f"{name}:q{i}": hits for i, lists in enumerate(ranked, 1) for name, hits in lists.items()}


class _Pipeline:
    """The steps, shared by the sync and async paths."""

    def __init__(self, providers: Providers, collection: Collection, options: QueryOptions) -> None:
        self.providers, self.collection, self.options = providers, collection, options
        self.retriever = MultimodalRetriever(
            collection=collection, text_embeddings=providers.text_embeddings,
            image_embedder=providers.image_embedder, k=options.k, filter=options.filter,
        )
        self.decomposer = decompose_chain(providers.fast_chat, max_sub_questions=options.max_sub_questions)

    def sub_questions(self, question: str) -> list[str]:
        if not self.options.decompose:
            return [question]
        return list(self.decomposer.invoke(question)) or [question]

    def fuse(self, sub_questions: Sequence[str]) -> list[Hit]:
        lists = retrieve_all(self.retriever, sub_questions, self.options.filter)
        return reciprocal_rank_fusion(lists, self.options.rrf_k, limit=self.options.context_size)

    def answer_tokens(self, question: str, subs: list[str], hits: list[Hit]) -> Iterator[str | Answer]:
        strong = self.providers.strong_chat
        if strong is None or not hits:
            yield from self._extractive(question, subs, hits)
            return
        images = load_images(hits, self.collection.objects, self.options.max_images)
        pairs: list[tuple[str, str]] = []
        # The original question leads ``subs``; it is answered by the final synthesis, not as a pair of its own.
        sub_only = [s for s in subs if s.strip() != question.strip()]
        if self.options.mode == "qa-pairs" and sub_only:
            pairs = self._qa_pairs(sub_only, hits, images)
        messages = synthesis_messages(question, subs, hits, images, qa_pairs=pairs)
        parts: list[str] = []
        for token in _stream_text(strong, messages):
            parts.append(token)
            yield token
        text = "".join(parts).strip()
        yield Answer(question, text, "generated", tuple(subs), citations_for(text, hits, self.collection.objects),
                     tuple(hits))

    def _qa_pairs(self, subs: list[str], hits: list[Hit], images: list[tuple[int, bytes]]) -> list[tuple[str, str]]:
        model = self.providers.fast_chat or self.providers.strong_chat
        assert model is not None

        def one(sub: str) -> tuple[str, str]:
            return sub, "".join(_stream_text(model, synthesis_messages(sub, [], hits, images))).strip()

        with ThreadPoolExecutor(max_workers=min(len(subs), 8), thread_name_prefix="mmrag-qa") as pool:
            return list(pool.map(one, subs))

    def _extractive(self, question: str, subs: list[str], hits: list[Hit]) -> Iterator[str | Answer]:
        from mmrag.providers.offline import extractive_answer

        answer = extractive_answer(question, hits, sub_questions=subs)
        by_id = {h.element.id: h.element for h in hits}
        citations = tuple(replace(c, object_uri=object_uri(by_id[c.element_id], self.collection.objects))
                          if c.element_id in by_id else c for c in answer.citations)
        answer = replace(answer, citations=citations, hits=tuple(hits))
        yield answer.text
        yield answer


def _stream_text(model: BaseChatModel, messages: Any) -> Iterator[str]:
    from mmrag.providers.claude import stream_with_retry

    for chunk in stream_with_retry(model, messages):
        content = chunk.content
        if isinstance(content, str):
            if content:
                yield content
            continue
        for block in content:
            if isinstance(block, str):
                yield block
            elif isinstance(block, dict) and block.get("type") == "text" and block.get("text"):
                yield str(block["text"])


def build_query_chain(
    settings: Settings | None = None,
    *,
    providers: Providers | None = None,
    collection: Collection | None = None,
    options: QueryOptions | None = None,
) -> Runnable[str, Any]:
    """The query chain over one collection (see the module docstring for what it yields).

    Args:
        settings: used to build the providers and open the collection when they are not given.
        providers, collection: use these (tests, notebooks, apps that already hold them).
        options: retrieval and synthesis options.
    """
    from langchain_core.runnables import RunnableGenerator

    if providers is None or collection is None:
        from mmrag.chains._components import open_components
        from mmrag.config import Settings

        # Asking never creates a collection: a missing one is a NotFoundError naming the known ones.
        built_providers, built_collection = open_components(settings or Settings(), create=False)
        if collection is None and not built_collection.manifest.sources():
            from mmrag.errors import NotFoundError

            raise NotFoundError(f"collection {built_collection.name!r} is empty: add documents with "
                                f"`mmrag ingest SOURCE... -c {built_collection.name}`")
        providers, collection = providers or built_providers, collection or built_collection
    pipeline = _Pipeline(providers, collection, options or QueryOptions())

    def run(inputs: Iterator[str]) -> Iterator[str | Answer]:
        question = "".join(inputs).strip()
        if not question:
            raise ValueError("the question is empty")
        subs = pipeline.sub_questions(question)
        yield from pipeline.answer_tokens(question, subs, pipeline.fuse(subs))

    async def arun(inputs: AsyncIterator[str]) -> AsyncIterator[str | Answer]:
        question = "".join([part async for part in inputs]).strip()
        if not question:
            raise ValueError("the question is empty")
        subs = list(await pipeline.decomposer.ainvoke(question)) if pipeline.options.decompose else [question]
        subs = subs or [question]
        ranked = await asyncio.gather(*(asyncio.to_thread(pipeline.retriever.rank, q, filter=pipeline.options.filter)
                                        for q in subs))
        lists = {f"{name}:q{i}": hits for i, r in enumerate(ranked, 1) for name, hits in r.items()}
        hits = reciprocal_rank_fusion(lists, pipeline.options.rrf_k, limit=pipeline.options.context_size)
        tokens = pipeline.answer_tokens(question, subs, hits)
        done = object()
        while (item := await asyncio.to_thread(next, tokens, done)) is not done:
            yield item  # type: ignore[misc]

    return RunnableGenerator(run, arun, name="mmrag_query")
