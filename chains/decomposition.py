"""Question decomposition: the first step of the query chain, ``str -> list[str]``.

With a chat model (the fast model, Claude Haiku on Bedrock) the question is split through structured output: where
the model supports Bedrock's native structured output (``outputConfig`` with a JSON schema; see
:mod:`mmrag.providers.bedrock.catalog`) the reply is constrained to the ``SubQuestions`` schema; otherwise the
model is asked to call a ``SubQuestions`` tool (tool use; some current Claude models reject a forced
``toolChoice``, which langchain-aws then does not send). Without one (the local profile) the rule-based splitter of
:func:`mmrag.providers.offline.decompose_rule_based` does it.

Either way the result has the same shape: the original question (whitespace tidied) first, then distinct
sub-questions, ``max_sub_questions`` items at most *in total* (the original counts toward the cap, as in the
rule-based splitter); a simple question yields just itself, a blank one ``[]``.

Decomposition only widens retrieval, so it must never sink a query: when the model call fails (after retries) or
its output is malformed, the chain logs a WARNING and falls back to the rules. Only a configuration problem
(:class:`~mmrag.errors.ConfigError`, e.g. missing AWS credentials) propagates, because the rest of the query
would fail the same way.

The list returned is a :class:`SubQuestionList`: a ``list[str]`` that also says how it was made
(``decomposition``: ``"model"``, ``"rules"``, ``"rules (model error: ValidationException: …)"``, ``"rules
(malformed model output: …)"`` or ``"off"``), which the synthesize stage copies into ``Answer.decomposition``, so a
fallback is reported in the answer, not only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel, Field

from mmrag.errors import ConfigError
from mmrag.providers._concurrency import call_with_retry
from mmrag.providers.offline import decompose_rule_based

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable, RunnableConfig

    from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy

__all__ = [
    "DECOMPOSE_PROMPT",
    "DECOMPOSE_SYSTEM",
    "SubQuestionList",
    "SubQuestions",
    "decompose_chain",
    "decomposition_of",
    "merge_sub_questions",
]

logger = logging.getLogger(__name__)

DECOMPOSE_SYSTEM = (
    "You prepare searches over a collection of documents (text passages, tables and figures). Given a user's "
    "question, you decide whether answering it needs several separate searches and, if so, write them."
)

DECOMPOSE_PROMPT = (
    "Split the question below into at most {max_parts} simpler sub-questions that can each be searched on its "
    "own, only if it asks about several things (several entities, periods, quantities or aspects, or a "
    "comparison). Each sub-question must be self-contained: repeat the names, dates, units and context it "
    "needs instead of using pronouns, and keep the wording and key terms of the original. Do not answer, do "
    "not add anything the question does not ask, and do not repeat the original question. If the question asks "
    "one simple thing, return an empty list.\n\nQuestion: {question}"
)
"""User turn of the decomposition request; ``{max_parts}`` is ``max_sub_questions - 1`` (the original is kept)."""


class SubQuestions(BaseModel):
    """Self-contained sub-questions that together cover everything the user's question asks."""

    sub_questions: list[str] = Field(
        description="The sub-questions, most important first; an empty list when the question is already simple.",
    )


class SubQuestionList(list[str]):
    """The decompose stage's output: the questions retrieval runs, and how they were made.

    Attributes:
        decomposition: ``"model"`` (the chat model split it), ``"rules"`` (the rule-based splitter, no model
            configured), ``"rules (model error: <code>: <message>)"`` / ``"rules (malformed model output: …)"``
            (the model failed and the rules stood in) or ``"off"`` (no split asked for).
    """

    __slots__ = ("decomposition",)

    def __init__(self, questions: Iterable[str] = (), decomposition: str = "model") -> None:
        super().__init__(questions)
        self.decomposition = decomposition

    def __reduce__(self) -> Any:  # pickling and deepcopy keep the attribute
        return (SubQuestionList, (list(self), self.decomposition))


def decomposition_of(questions: object) -> str | None:
    """How a decompose stage's output was made (:class:`SubQuestionList`); None for a plain list (a custom stage)."""
    value = getattr(questions, "decomposition", None)
    return value if isinstance(value, str) else None


def _reason(exc: BaseException) -> str:
    """``<AWS error code or exception type>: <message>`` of a failed model call, on one line, 300 characters at most."""
    from mmrag.providers._concurrency import error_code

    cause = exc.__cause__ if exc.__cause__ is not None else exc
    code = error_code(cause) or error_code(exc) or type(cause).__name__
    response = getattr(cause, "response", None)
    message = (response.get("Error") or {}).get("Message") if isinstance(response, dict) else None
    text = " ".join(str(message or cause).split())
    return f"{code}: {text}"[:300]


def _tidy(text: str) -> str:
    return " ".join(text.split())


def _key(text: str) -> str:
    # The rule-based splitter's notion of "the same question": case, spacing and final punctuation do not count.
    return " ".join(text.lower().split()).rstrip(".?!; ")


def merge_sub_questions(question: str, candidates: Iterable[str], *, max_sub_questions: int = 4) -> list[str]:
    """The original question first, then the distinct, non-empty candidates, ``max_sub_questions`` at most.

    Duplicates are detected ignoring case, spacing and final punctuation; a candidate equal to the original is
    dropped. Whitespace inside every question is tidied.

    Raises:
        ValueError: ``max_sub_questions`` is below 1.
    """
    if max_sub_questions < 1:
        raise ValueError(f"max_sub_questions must be at least 1, got {max_sub_questions}")
    original = _tidy(question)
    if not _key(original):
        return []
    out = {_key(original): original}
    for candidate in candidates:
        text = _tidy(candidate)
        if _key(text):
            out.setdefault(_key(text), text)
    return list(out.values())[:max_sub_questions]


def decompose_chain(
    llm: BaseChatModel | None,
    *,
    max_sub_questions: int = 4,
    policy: RetryPolicy | None = None,
    limiter: AdaptiveLimiter | None = None,
) -> Runnable[str, list[str]]:
    """A runnable that turns a question into the questions retrieval runs (``invoke``, ``ainvoke``, ``batch``).

    Args:
        llm: the fast chat model; it must support tool calling (``with_structured_output``), as
            ``ChatBedrockConverse`` does. None: the rule-based splitter, no model call.
        max_sub_questions: most questions returned, the original included (so the model is asked for at most
            ``max_sub_questions - 1``; with 1 it is not called at all).
        policy: retries of throttled / 5xx / timed-out model calls (default :class:`RetryPolicy`). The fast model
            built by :func:`mmrag.providers.factory.build_providers` shares a client without botocore retries,
            so this is the only retry layer of the call.
        limiter: concurrency gate shared with other Bedrock calls, if any.

    Returns:
        ``Runnable[str, list[str]]``: the original question first, then up to ``max_sub_questions - 1``
        distinct sub-questions; ``[]`` for a blank question.

    Raises:
        ValueError: ``max_sub_questions`` is below 1.
        ConfigError: ``llm`` cannot do structured output (tool calling).
    """
    if max_sub_questions < 1:
        raise ValueError(f"max_sub_questions must be at least 1, got {max_sub_questions}")
    if llm is None:
        return RunnableLambda(partial(_rules, max_sub_questions=max_sub_questions, how="rules"),
                              name="decompose_rule_based")
    from mmrag.providers.bedrock.catalog import structured_output_kwargs

    try:
        # include_raw: a reply that does not parse comes back as data (parsing_error), not as an exception that
        # the retry layer would mistake for a failed call.
        structured = llm.with_structured_output(SubQuestions, include_raw=True, **structured_output_kwargs(llm))
    except NotImplementedError as exc:
        raise ConfigError(
            f"{type(llm).__name__} cannot return structured output (it does not support tool calling): use a chat "
            "model that does, such as ChatBedrockConverse, or pass llm=None for the rule-based splitter"
        ) from exc
    model_id = str(getattr(llm, "model_id", None) or type(llm).__name__)

    def decompose(question: str, config: RunnableConfig) -> list[str]:
        original = _tidy(question)
        if not original or max_sub_questions == 1:
            return SubQuestionList(merge_sub_questions(original, [], max_sub_questions=max_sub_questions), "off")
        messages = [
            ("system", DECOMPOSE_SYSTEM),
            ("human", DECOMPOSE_PROMPT.format(max_parts=max_sub_questions - 1, question=original)),
        ]
        try:
            out = call_with_retry(lambda: structured.invoke(messages, config), limiter=limiter, policy=policy,
                                  model_id=model_id)
        except ConfigError:
            raise
        except Exception as exc:
            logger.warning("decomposition by %s failed (%s); falling back to the rule-based splitter", model_id, exc)
            return _rules(original, max_sub_questions=max_sub_questions, how=f"rules (model error: {_reason(exc)})")
        parts = _parsed(out)
        if parts is None:
            error = out.get("parsing_error") if isinstance(out, dict) else None
            why = " ".join(str(error).split())[:300] if error else "no SubQuestions tool call"
            logger.warning("decomposition by %s returned malformed output (%s); falling back to the rule-based "
                           "splitter", model_id, why)
            return _rules(original, max_sub_questions=max_sub_questions,
                          how=f"rules (malformed model output: {why[:200]})")
        return SubQuestionList(merge_sub_questions(original, parts, max_sub_questions=max_sub_questions), "model")

    return RunnableLambda(decompose, name="decompose")


def _rules(question: str, *, max_sub_questions: int, how: str) -> list[str]:
    # Annotated list[str]: the stage's output schema (a SubQuestionList is a list of strings).
    return SubQuestionList(decompose_rule_based(question, max_sub_questions=max_sub_questions), how)


def _parsed(out: Any) -> list[str] | None:
    """The sub-questions of a ``with_structured_output(include_raw=True)`` result; None when it is malformed."""
    parsed = out.get("parsed") if isinstance(out, dict) else out
    if not isinstance(parsed, SubQuestions):
        return None
    return parsed.sub_questions
