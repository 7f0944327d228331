"""Decomposition chain: rule-based path, structured-output path with a tool-calling fake model, and fallbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from mmrag.chains.decomposition import (
    DECOMPOSE_SYSTEM,
    SubQuestions,
    decompose_chain,
    merge_sub_questions,
)
from mmrag.errors import ConfigError
from mmrag.providers._concurrency import RetryPolicy
from mmrag.providers.offline import decompose_rule_based

FAST = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01)
MULTI = "What was the revenue in Europe in 2023, and how many employees did the company have?"
LOGGER = "mmrag.chains.decomposition"


class ToolCallingFake(BaseChatModel):
    """A chat model that supports ``bind_tools`` and answers from a script (messages or exceptions to raise)."""

    replies: list[Any] = Field(default_factory=list)
    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "tool-calling-fake"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append((list(messages), kwargs))
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _tool_reply(args: Any, name: str = "SubQuestions") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "call_1", "type": "tool_call"}])


def _subs(*questions: str) -> AIMessage:
    return _tool_reply({"sub_questions": list(questions)})


def _aws_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (test)"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Converse")


# -- offline ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question",
    [MULTI, "What is FAISS?", "Compare the revenue of Europe and Asia in 2023.", "   ", "What is X? What is Y?"],
)
def test_without_a_model_it_is_the_rule_based_splitter(question: str) -> None:
    chain = decompose_chain(None)
    assert chain.invoke(question) == decompose_rule_based(question)
    assert asyncio.run(chain.ainvoke(question)) == decompose_rule_based(question)
    two = decompose_chain(None, max_sub_questions=2)
    assert two.invoke(question) == decompose_rule_based(question, max_sub_questions=2)


def test_rule_based_chain_splits_a_multi_part_question() -> None:
    out = decompose_chain(None).invoke(MULTI)
    assert out[0] == MULTI and len(out) >= 3  # the original, then its parts
    assert decompose_chain(None).batch([MULTI, "What is FAISS?"]) == [out, ["What is FAISS?"]]


@pytest.mark.parametrize("llm", [None, ToolCallingFake()])
def test_max_sub_questions_must_be_positive(llm: BaseChatModel | None) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        decompose_chain(llm, max_sub_questions=0)


# -- with a model ----------------------------------------------------------------------------------------------
def test_structured_reply_becomes_sub_questions_after_the_original() -> None:
    llm = ToolCallingFake(replies=[_subs("What was the revenue in Europe in 2023?",
                                         "How many employees did the company have?")])
    out = decompose_chain(llm).invoke(MULTI)
    assert out == [MULTI, "What was the revenue in Europe in 2023?", "How many employees did the company have?"]
    ((messages, kwargs),) = llm.calls
    assert isinstance(messages[0], SystemMessage) and messages[0].content == DECOMPOSE_SYSTEM
    assert isinstance(messages[1], HumanMessage)
    assert MULTI in str(messages[1].content) and "at most 3 simpler sub-questions" in str(messages[1].content)
    (tool,) = kwargs["tools"]
    assert tool["function"]["name"] == "SubQuestions"
    params = tool["function"]["parameters"]
    assert params["properties"]["sub_questions"]["type"] == "array"
    assert params["properties"]["sub_questions"]["items"] == {"type": "string"}
    assert params["required"] == ["sub_questions"]


def test_original_is_always_first_deduped_and_capped() -> None:
    reply = _subs(
        "  what was the REVENUE in europe in 2023 ",  # same as the next one but for case/space/punctuation
        "What was the revenue in Europe in 2023?",
        "",
        "   ",
        MULTI.upper(),  # the original again
        "How many employees did the company have?",
        "What was the revenue in Asia in 2023?",
        "What was the profit in 2023?",
    )
    out = decompose_chain(ToolCallingFake(replies=[reply])).invoke(f"  {MULTI}\n")
    # The cap counts the original: 4 in total, i.e. the original and the first 3 distinct sub-questions.
    assert out == [MULTI, "what was the REVENUE in europe in 2023", "How many employees did the company have?",
                   "What was the revenue in Asia in 2023?"]
    capped = decompose_chain(ToolCallingFake(replies=[reply]), max_sub_questions=2).invoke(MULTI)
    assert capped == [MULTI, "what was the REVENUE in europe in 2023"]


def test_a_simple_question_yields_itself() -> None:
    llm = ToolCallingFake(replies=[_subs(), _subs("What is FAISS?")])
    chain = decompose_chain(llm)
    assert chain.invoke("What is FAISS?") == ["What is FAISS?"]
    assert chain.invoke("What is FAISS?") == ["What is FAISS?"]  # the model echoing the question adds nothing
    assert len(llm.calls) == 2


def test_no_model_call_for_a_blank_question_or_a_cap_of_one() -> None:
    llm = ToolCallingFake()
    assert decompose_chain(llm).invoke("  \n ") == []
    assert decompose_chain(llm, max_sub_questions=1).invoke(MULTI) == [MULTI]
    assert llm.calls == []


def test_async_and_batch() -> None:
    llm = ToolCallingFake(replies=[_subs("A?", "B?"), _subs("C?")])
    chain = decompose_chain(llm)
    assert asyncio.run(chain.ainvoke("A and B?")) == ["A and B?", "A?", "B?"]
    assert chain.batch(["Only C?"]) == [["Only C?", "C?"]]


# -- failures fall back to the rules, loudly -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (AIMessage(content="1. What was the revenue? 2. How many employees?"), "no SubQuestions tool call"),
        (_tool_reply({"sub_questions": 3}), "valid list"),
        (_tool_reply({"questions": ["a"]}), "sub_questions"),
        (_tool_reply({"sub_questions": [1, 2]}), "valid string"),
    ],
)
def test_malformed_output_falls_back_to_rules_with_a_warning(
    reply: AIMessage, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = ToolCallingFake(replies=[reply])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = decompose_chain(llm, policy=FAST).invoke(MULTI)
    assert out == decompose_rule_based(MULTI) and len(out) > 1
    assert len(llm.calls) == 1  # malformed output is not retried
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING
    assert "malformed output" in record.getMessage() and why in record.getMessage()


@pytest.mark.parametrize("error", [_aws_error("ValidationException", 400), RuntimeError("model exploded")])
def test_model_failure_falls_back_to_rules_with_a_warning(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    llm = ToolCallingFake(replies=[error])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = decompose_chain(llm, policy=FAST).invoke(MULTI)
    assert out == decompose_rule_based(MULTI)
    assert len(llm.calls) == 1  # neither is retryable
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING and "failed" in record.getMessage()


def test_throttling_is_retried_then_exhausted_retries_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    throttle = _aws_error("ThrottlingException", 429)
    llm = ToolCallingFake(replies=[throttle, _aws_error("ServiceUnavailableException", 503), _subs("A?")])
    assert decompose_chain(llm, policy=FAST).invoke("A or B?") == ["A or B?", "A?"]
    assert len(llm.calls) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    stuck = ToolCallingFake(replies=[throttle] * 4)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert decompose_chain(stuck, policy=FAST).invoke(MULTI) == decompose_rule_based(MULTI)
    assert len(stuck.calls) == 4  # 1 + FAST.max_retries
    assert "gave up after retries" in caplog.records[-1].getMessage()


def test_config_errors_propagate() -> None:
    llm = ToolCallingFake(replies=[ConfigError("No AWS credentials found: run `aws configure`")])
    with pytest.raises(ConfigError, match="aws configure"):
        decompose_chain(llm).invoke(MULTI)


def test_a_model_without_tool_calling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="llm=None"):
        decompose_chain(GenericFakeChatModel(messages=iter([])))


# -- merge -----------------------------------------------------------------------------------------------------
def test_merge_sub_questions() -> None:
    assert merge_sub_questions(" What  is X? ", ["what is x", "What is Y?", " What is  Y "]) == [
        "What is X?", "What is Y?"]
    assert merge_sub_questions("Q?", ["a", "b", "c", "d"], max_sub_questions=3) == ["Q?", "a", "b"]
    assert merge_sub_questions("   ", ["a"]) == []
    assert SubQuestions(sub_questions=["a"]).sub_questions == ["a"]
    with pytest.raises(ValueError, match="at least 1"):
        merge_sub_questions("Q?", [], max_sub_questions=0)
