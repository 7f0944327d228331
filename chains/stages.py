"""The query chain's stages: public, named Runnables that :func:`~mmrag.chains.build_query_chain` joins with ``|``.

::

    question ─▶ decompose ─▶ retrieve ─▶ fuse ─▶ synthesize ─▶ str tokens, then the Answer

==========================  ============================================  =============================================
stage (``run_name``)        input                                         output
==========================  ============================================  =============================================
:func:`decompose_stage`     the question (``str``)                        ``list[str]``: the original first, then
                                                                          sub-questions
:func:`retrieve_stage`      the questions (``list[str]``)                 ``dict[str, list]``: ranked lists named
                                                                          ``<list>:q<i>`` (``dense:q1``, ``image:q2``)
:func:`fuse_stage`          those lists                                   ``list[Hit]``, best first
:func:`synthesize_stage`    ``{"question", "sub_questions", "hits"}``     streams ``str`` tokens, then an ``Answer``
==========================  ============================================  =============================================

Each works on its own (``invoke``, ``batch``, ``stream``, ``astream``) and passes the config it is given (callbacks,
tags, ``max_concurrency``) to the model and retriever calls inside it, so a trace shows
``mmrag_query → decompose → (model)``, ``retrieve → (one run per sub-question)``, ``fuse``, ``synthesize → (model)``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    Required,  # pydantic needs these for schemas on Python < 3.12
)

from langchain_core.runnables import RunnableGenerator, RunnableLambda
from typing_extensions import TypedDict

from mmrag.answers import Answer, Citation, Hit
from mmrag.chains.synthesis import citations_for, load_images, object_uri, synthesis_messages
from mmrag.elements import ELEMENT_KINDS, Element
from mmrag.retrievers.fusion import (
    RRF_K,
    reciprocal_rank_fusion,
    relative_score_fusion,
    weighted_reciprocal_rank_fusion,
)

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_core.language_models import BaseChatModel
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableConfig

    from mmrag.stores.collection import ObjectStore

__all__ = [
    "FUSIONS",
    "SynthesisInput",
    "decompose_stage",
    "fuse_stage",
    "relative_fusion",
    "retrieve_stage",
    "rrf_fusion",
    "stream_pieces",
    "synthesize_stage",
    "weighted_fusion",
]

logger = logging.getLogger(__name__)

FusionName = Literal["rrf", "weighted", "relative"]


class SynthesisInput(TypedDict, total=False):
    """What the synthesize stage reads (other keys, such as ``lists``, are ignored)."""

    question: Required[str]
    sub_questions: list[str]
    hits: list[Hit]

FUSIONS: tuple[str, ...] = ("rrf", "weighted", "relative")
QA_PAIRS_OFFLINE_NOTE = ("(Mode qa-pairs needs a chat model to draft the sub-answers; none is configured, so this "
                         "answer was made as in mode fusion.)")
"""The first line of an answer asked for in mode ``qa-pairs`` without a chat model: the answer says what ran."""
Lists = dict[str, list[Any]]


# -- decompose -------------------------------------------------------------------------------------------------
def decompose_stage(llm: BaseChatModel | None = None, *, max_sub_questions: int = 4,
                    enabled: bool = True) -> Runnable[str, list[str]]:
    """``question -> [question, sub-question, ...]``, run name ``decompose``.

    Args:
        llm: the fast chat model (structured output); None: the rule-based splitter (see
            :func:`mmrag.chains.decomposition.decompose_chain`, which this wraps).
        max_sub_questions: most questions returned, the original included.
        enabled: False: the question alone, no split and no model call.
    """
    if not enabled:
        return RunnableLambda(_alone, name="decompose")
    from mmrag.chains.decomposition import decompose_chain

    inner = decompose_chain(llm, max_sub_questions=max_sub_questions)
    if isinstance(inner, RunnableLambda):  # the same function under the stage's name (no extra nesting level)
        return RunnableLambda(inner.func, afunc=getattr(inner, "afunc", None), name="decompose")
    return inner.with_config(run_name="decompose")


def _alone(question: str) -> list[str]:
    from mmrag.chains.decomposition import SubQuestionList

    return SubQuestionList([" ".join(question.split())], "off")


# -- retrieve --------------------------------------------------------------------------------------------------
def retrieve_stage(retriever: BaseRetriever, *, filter: Mapping[str, Any] | None = None,
                   list_name: str = "retriever") -> Runnable[list[str], Lists]:
    """``questions -> ranked lists``, every question retrieved in parallel, run name ``retrieve``.

    A :class:`~mmrag.retrievers.MultimodalRetriever` gives its own lists per question (``dense``, ``bm25`` and
    ``image``, each named ``<list>:q<i>``). Any other LangChain ``BaseRetriever`` gives one list per question,
    ``<list_name>:q<i>``, of its Documents as hits: a Document whose ``id`` is set keeps it as the element id (so
    the same chunk found twice is one result), its ``metadata`` gives ``kind``, ``source``, ``page`` and ``score``
    when present (else the score is ``1/rank``).

    Args:
        retriever: any LangChain retriever.
        filter: metadata filter for a ``MultimodalRetriever`` (others filter on their own).
        list_name: the list name of a plain retriever's results.
    """
    from mmrag.retrievers.multimodal import MultimodalRetriever

    one: Runnable[str, Lists]
    if isinstance(retriever, MultimodalRetriever):
        one = RunnableLambda(partial(_rank, retriever, dict(filter) if filter is not None else None),
                             name="rank_lists")
    else:
        one = retriever | RunnableLambda(partial(_as_list, list_name), name="as_ranked_list")

    def retrieve(questions: list[str], config: RunnableConfig) -> Lists:
        return _named(one.batch(list(questions), config) if questions else [])

    async def aretrieve(questions: list[str], config: RunnableConfig) -> Lists:
        return _named(await one.abatch(list(questions), config) if questions else [])

    return RunnableLambda(retrieve, afunc=aretrieve, name="retrieve")


def _rank(retriever: Any, filter: dict[str, Any] | None, question: str) -> Lists:
    return dict(retriever.rank(question, filter=filter))


def _named(per_question: Sequence[Lists]) -> Lists:
    return {f"{name}:q{i}": hits for i, lists in enumerate(per_question, 1) for name, hits in lists.items()}


def _as_list(name: str, docs: list[Document]) -> Lists:
    return {name: [_doc_hit(doc, rank) for rank, doc in enumerate(docs, 1)]}


_DOC_FIELDS = frozenset({"id", "kind", "source", "page", "score", "lists", "object_key", "mime_type", "bbox"})


def _doc_hit(doc: Document, rank: int) -> Hit:
    meta = dict(doc.metadata)
    kind = meta.get("kind") if meta.get("kind") in ELEMENT_KINDS else "text"
    page = meta.get("page") if isinstance(meta.get("page"), int) and meta["page"] >= 1 else None
    source = str(meta.get("source") or "retrieved")
    score = meta.get("score")
    score = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 1.0 / rank
    fields: dict[str, Any] = {"kind": kind, "source": source, "text": doc.page_content, "page": page,
                              "object_key": meta.get("object_key") if isinstance(meta.get("object_key"), str) else None,
                              "mime_type": meta.get("mime_type") if isinstance(meta.get("mime_type"), str) else None,
                              "metadata": {k: v for k, v in meta.items() if k not in _DOC_FIELDS}}
    element = Element.restore(id=str(doc.id), **fields) if doc.id else Element(**fields)
    return Hit(element, score, ())


# -- fuse ------------------------------------------------------------------------------------------------------
def fuse_stage(
    method: FusionName | Callable[[Mapping[str, Sequence[Any]]], list[Hit]] = "rrf",
    *,
    weights: Mapping[str, float] | None = None,
    k: int = RRF_K,
    limit: int | None = 10,
) -> Runnable[Lists, list[Hit]]:
    """``ranked lists -> fused hits``, run name ``fuse``.

    Args:
        method: ``rrf`` (reciprocal rank fusion, ``Σ 1/(k + rank)``), ``weighted`` (weighted RRF,
            ``Σ w_l/(k + rank)``), ``relative`` (min-max normalised scores, ``Σ w_l · norm(s)``), or any function of
            the lists returning hits. See :mod:`mmrag.retrievers.fusion` for the formulas.
        weights: per list (``"image:q2"``) or per kind of list (``"image"``); ``weighted`` and ``relative`` only.
        k: the RRF constant (``rrf``, ``weighted``).
        limit: most hits kept (the synthesis' context size); None keeps all (a custom function decides itself).
    """
    if callable(method):
        fn = method
    elif method == "rrf":
        if weights:
            raise ValueError("weights need --fusion weighted or relative (plain RRF weighs every list the same)")
        fn = partial(reciprocal_rank_fusion, k=k, limit=limit)
    elif method == "weighted":
        fn = partial(weighted_reciprocal_rank_fusion, weights=dict(weights or {}), k=k, limit=limit)
    elif method == "relative":
        fn = partial(relative_score_fusion, weights=dict(weights or {}), limit=limit)
    else:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {method!r}")

    def fuse(lists: dict[str, list[Any]]) -> list[Hit]:
        return list(fn(lists))

    return RunnableLambda(fuse, name="fuse")


def rrf_fusion(k: int = RRF_K, *, limit: int | None = 10) -> Runnable[Lists, list[Hit]]:
    """The default fuse stage: reciprocal rank fusion with constant ``k``."""
    return fuse_stage("rrf", k=k, limit=limit)


def weighted_fusion(weights: Mapping[str, float], *, k: int = RRF_K,
                    limit: int | None = 10) -> Runnable[Lists, list[Hit]]:
    """A fuse stage by weighted RRF: ``weighted_fusion({"image": 2.0})`` counts image-space ranks twice."""
    return fuse_stage("weighted", weights=weights, k=k, limit=limit)


def relative_fusion(weights: Mapping[str, float] | None = None, *,
                    limit: int | None = 10) -> Runnable[Lists, list[Hit]]:
    """A fuse stage by relative score fusion (each list's scores min-max normalised, then weighted and summed)."""
    return fuse_stage("relative", weights=weights, limit=limit)


# -- synthesize ------------------------------------------------------------------------------------------------
_PIECE = re.compile(r"\S+\s*|\s+")


def stream_pieces(text: str) -> Iterator[str]:
    """``text`` as the words a streamed answer arrives in (each with its following spaces); they join to ``text``."""
    return (m.group(0) for m in _PIECE.finditer(text))


def synthesize_stage(
    chat_model: BaseChatModel | None = None,
    *,
    objects: ObjectStore | None = None,
    max_images: int = 4,
    mode: Literal["fusion", "qa-pairs"] = "fusion",
    sub_answer_model: BaseChatModel | None = None,
) -> Runnable[Mapping[str, Any], str | Answer]:
    """``{"question", "sub_questions", "hits"} -> str tokens, then the Answer``, run name ``synthesize``.

    ``invoke`` returns the :class:`~mmrag.answers.Answer` (the tokens add up to it). With a chat model the answer
    is generated from the fenced evidence and the images of the best ``max_images`` image/page hits (read from
    ``objects``); in ``qa-pairs`` mode each sub-question is first answered by ``sub_answer_model`` (default: the
    chat model), in parallel, and the final answer is written from those drafts too. Without a chat model (the
    offline profile) the answer is extractive, streamed word by word; ``qa-pairs`` then runs as ``fusion``
    (there is no model to draft sub-answers) and the answer's text opens with :data:`QA_PAIRS_OFFLINE_NOTE`.
    """

    def answer(state: Mapping[str, Any], config: RunnableConfig) -> Iterator[str | Answer]:
        question = str(state["question"])
        subs = [str(s) for s in state.get("sub_questions") or [question]]
        from mmrag.chains.decomposition import decomposition_of

        how = decomposition_of(state.get("sub_questions"))  # "model", "rules (model error: ...)", ...
        hits = list(state.get("hits") or [])
        if chat_model is None or not hits:
            note = QA_PAIRS_OFFLINE_NOTE if chat_model is None and mode == "qa-pairs" else ""
            if note:
                logger.warning("qa-pairs needs a chat model: without one it runs as fusion (one extractive answer)")
            yield from _extractive(question, subs, hits, objects, note, how)
            return
        images = load_images(hits, objects, max_images)
        pairs: list[tuple[str, str]] = []
        # The original question leads ``subs``; it is answered by the final synthesis, not as a pair of its own.
        sub_only = [s for s in subs if s.strip() != question.strip()]
        if mode == "qa-pairs" and sub_only:
            pairs = _qa_pairs(sub_answer_model or chat_model, sub_only, hits, images, config)
        messages = synthesis_messages(question, subs, hits, images, qa_pairs=pairs)
        parts: list[str] = []
        for token in _stream_text(chat_model, messages, config):
            parts.append(token)
            yield token
        text = "".join(parts).strip()
        from mmrag.providers._support import ABSTAIN_PREFIX

        yield Answer(question, text, "generated", tuple(subs), citations_for(text, hits, objects),
                     _linked(hits, objects), how, answered=not text.startswith(ABSTAIN_PREFIX))

    def run(inputs: Iterator[Mapping[str, Any]], config: RunnableConfig) -> Iterator[str | Answer]:
        yield from answer(_merge(inputs), config)

    async def arun(inputs: AsyncIterator[Mapping[str, Any]], config: RunnableConfig) -> AsyncIterator[str | Answer]:
        state: dict[str, Any] = {}
        async for chunk in inputs:
            state.update(chunk)
        tokens = answer(state, config)
        done = object()
        # The model client is synchronous: each next token is awaited in a worker thread, keeping the loop free.
        while (item := await asyncio.to_thread(next, tokens, done)) is not done:
            yield item  # type: ignore[misc]

    # LangChain passes ``config`` to generator functions that accept it; its type hints only show one parameter.
    stage: Runnable[Any, Any] = RunnableGenerator(run, arun, name="synthesize")  # type: ignore[arg-type]
    # RunnableGenerator cannot read postponed annotations: declare the types (the run keeps the name "synthesize").
    return stage.with_types(input_type=SynthesisInput, output_type=Answer)


def _merge(inputs: Iterator[Mapping[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for chunk in inputs:
        state.update(chunk)
    return state


def _extractive(question: str, subs: list[str], hits: list[Hit], objects: ObjectStore | None,
                note: str = "", how: str | None = None) -> Iterator[str | Answer]:
    from mmrag.providers.offline import extractive_answer

    answer = extractive_answer(question, hits, sub_questions=subs)
    by_id = {h.element.id: h.element for h in hits}
    citations = tuple(_placed(c, by_id[c.element_id], objects) if c.element_id in by_id else c
                      for c in answer.citations)
    text = f"{note}\n\n{answer.text}" if note else answer.text
    answer = replace(answer, text=text, citations=citations, hits=_linked(hits, objects), decomposition=how)
    yield from stream_pieces(answer.text)
    yield answer


def _placed(citation: Citation, element: Element, objects: ObjectStore | None) -> Citation:
    """An extractive citation (its snippet is the quote) with the element's link, breadcrumb and source link."""
    from mmrag.answers import breadcrumb, location_kind_of, location_of, media_time, source_link

    start, end = media_time(element) or (None, None)
    return replace(citation, object_uri=object_uri(element, objects), section=breadcrumb(element),
                   source_uri=source_link(element), location=location_of(element),
                   location_kind=location_kind_of(element), start=start, end=end)


def _linked(hits: Sequence[Hit], objects: ObjectStore | None) -> tuple[Hit, ...]:
    """The hits with ``object_uri`` filled in (a stored object's link, else the source's), as ``search`` gives them."""
    from mmrag.answers import object_link

    return tuple(h if h.object_uri else replace(h, object_uri=object_link(h.element, objects)) for h in hits)


def _qa_pairs(model: BaseChatModel, subs: list[str], hits: list[Hit], images: list[tuple[int, bytes]],
              config: RunnableConfig) -> list[tuple[str, str]]:
    def one(sub: str) -> tuple[str, str]:
        return sub, "".join(_stream_text(model, synthesis_messages(sub, [], hits, images), config)).strip()

    with ThreadPoolExecutor(max_workers=min(len(subs), 8), thread_name_prefix="mmrag-qa") as pool:
        return list(pool.map(one, subs))


def _stream_text(model: BaseChatModel, messages: Any, config: RunnableConfig | None = None) -> Iterator[str]:
    from mmrag.providers.bedrock.claude import stream_with_retry

    for chunk in stream_with_retry(model, messages, config=config):
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
