"""Decomposition with the fast model through ChatBedrockConverse, against the loopback Bedrock emulator."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from mmrag.chains.decomposition import DECOMPOSE_SYSTEM, decompose_chain
from mmrag.config import Settings
from mmrag.providers._concurrency import RetryPolicy
from mmrag.providers.bedrock.claude import make_chat_model
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.factory import build_providers
from mmrag.providers.offline import decompose_rule_based
from mmrag.testing import BedrockEmulator, Fault, RecordedRequest

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_retries=4, base_delay=0.001, max_delay=0.01)
MULTI = "What was the revenue in Europe in 2023, and how many employees did the company have?"
SUBS = ["What was the revenue in Europe in 2023?", "How many employees did the company have?"]
LOGGER = "mmrag.chains.decomposition"


@pytest.fixture
def settings(emu: BedrockEmulator) -> Settings:
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", fast_max_tokens=300)


@pytest.fixture
def llm(settings: Settings) -> Any:
    # As build_providers wires it: a shared client without botocore retries, so the chain's retry layer is the
    # only one and every injected fault reaches it.
    return make_chat_model(settings, "fast", client=make_bedrock_client(settings))


def _converse(emu: BedrockEmulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.operation == "Converse"]


def test_request_carries_the_json_schema_max_tokens_and_the_question(
    emu: BedrockEmulator, settings: Settings, llm: Any
) -> None:
    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}])
    assert decompose_chain(llm, policy=FAST).invoke(MULTI) == [MULTI, *SUBS]
    (request,) = _converse(emu)
    assert request.model_id == "us." + settings.fast_model
    body = request.body
    assert body["inferenceConfig"]["maxTokens"] == 300
    assert body["inferenceConfig"]["temperature"] == 0.0
    assert body["system"] == [{"text": DECOMPOSE_SYSTEM}]
    assert MULTI in request.last_user_text and "at most 3 simpler sub-questions" in request.last_user_text
    # Haiku 4.5 supports Bedrock's native structured output: the schema goes in outputConfig, no forced tool.
    assert "toolConfig" not in body
    text_format = body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema" and text_format["structure"]["jsonSchema"]["name"] == "SubQuestions"
    schema = json.loads(text_format["structure"]["jsonSchema"]["schema"])
    assert schema["type"] == "object" and schema["required"] == ["sub_questions"]
    assert schema["properties"]["sub_questions"]["type"] == "array"
    assert schema["properties"]["sub_questions"]["items"] == {"type": "string"}


def test_models_without_structured_output_use_tool_calling(emu: BedrockEmulator, settings: Settings) -> None:
    # Sonnet 4 has no native structured output: the SubQuestions tool is offered instead.
    legacy = settings.model_copy(update={"fast_model": "anthropic.claude-sonnet-4-20250514-v1:0"})
    llm = make_chat_model(legacy, "fast", client=make_bedrock_client(legacy))
    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}])
    assert decompose_chain(llm, policy=FAST).invoke(MULTI) == [MULTI, *SUBS]
    (request,) = _converse(emu)
    assert request.model_id == "us.anthropic.claude-sonnet-4-20250514-v1:0"
    (tool,) = request.body["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "SubQuestions" and "outputConfig" not in request.body


def test_structured_reply_is_deduped_and_capped(emu: BedrockEmulator, llm: Any) -> None:
    many = [SUBS[0].lower(), *SUBS, "What was the revenue in Asia in 2023?", "", MULTI]
    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": many}}] * 2)
    assert decompose_chain(llm, policy=FAST).invoke(MULTI) == [
        MULTI, SUBS[0].lower(), SUBS[1], "What was the revenue in Asia in 2023?"]
    two = decompose_chain(llm, max_sub_questions=2, policy=FAST)
    assert two.invoke(MULTI) == [MULTI, SUBS[0].lower()]
    assert "at most 1 simpler sub-questions" in _converse(emu)[-1].last_user_text


def test_unscripted_forced_tool_reply_means_a_simple_question(emu: BedrockEmulator, llm: Any) -> None:
    # The emulator answers a forced tool with the smallest valid input: {"sub_questions": []}.
    assert decompose_chain(llm, policy=FAST).invoke("What is FAISS?") == ["What is FAISS?"]
    assert len(_converse(emu)) == 1


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("Sure! 1. Revenue in Europe 2. Employees", "Invalid json output"),
        ({"tool": "SubQuestions", "input": {"sub_questions": 7}}, "valid list"),
        ({"tool": "SubQuestions", "input": {"questions": SUBS}}, "sub_questions"),
    ],
)
def test_malformed_reply_falls_back_to_rules(
    emu: BedrockEmulator, llm: Any, reply: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu.script_chat([reply])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = decompose_chain(llm, policy=FAST).invoke(MULTI)
    assert out == decompose_rule_based(MULTI) and len(out) > 1
    assert len(_converse(emu)) == 1
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING and "malformed output" in record.getMessage()
    assert why in record.getMessage()


@pytest.mark.parametrize("kind", ["throttle", "model_not_ready", "unavailable", "server_error"])
def test_retryable_faults_are_retried(emu: BedrockEmulator, llm: Any, kind: Any,
                                      caplog: pytest.LogCaptureFixture) -> None:
    emu.add_fault(Fault(kind, times=2, operation="Converse"))
    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert decompose_chain(llm, policy=FAST).invoke(MULTI) == [MULTI, *SUBS]
    requests = _converse(emu)
    assert len(requests) == 3
    assert [r.status for r in requests] == [requests[0].status, requests[0].status, 200]
    assert requests[0].status in (429, 500, 503)
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_throttling_without_end_falls_back_to_rules(
    emu: BedrockEmulator, llm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emu.add_fault(Fault("throttle", times=None, operation="Converse"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = decompose_chain(llm, policy=FAST).invoke(MULTI)
    assert out == decompose_rule_based(MULTI)
    assert len(_converse(emu)) == 1 + FAST.max_retries
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert "ThrottlingException" in record.getMessage() and "rule-based" in record.getMessage()


def test_async_batch_against_the_emulator(emu: BedrockEmulator, llm: Any) -> None:
    def reply(request: RecordedRequest) -> dict[str, Any]:
        question = request.last_user_text.rsplit("Question: ", 1)[1]
        return {"tool": "SubQuestions", "input": {"sub_questions": [f"{question} (part {i})" for i in (1, 2)]}}

    emu.script_chat(reply)
    chain = decompose_chain(llm, policy=FAST)
    questions = [f"What is topic {i} and why?" for i in range(4)]
    out = asyncio.run(chain.abatch(questions))
    assert out == [[q, f"{q} (part 1)", f"{q} (part 2)"] for q in questions]
    assert asyncio.run(chain.ainvoke(questions[0])) == out[0]
    assert len(_converse(emu)) == 5


def test_fast_chat_of_build_providers(emu: BedrockEmulator, settings: Settings) -> None:
    providers = build_providers(settings.model_copy(update={"cache": False}))
    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}])
    assert decompose_chain(providers.fast_chat, policy=FAST).invoke(MULTI) == [MULTI, *SUBS]
    (request,) = _converse(emu)
    assert request.model_id == "us." + settings.fast_model and "outputConfig" in request.body
