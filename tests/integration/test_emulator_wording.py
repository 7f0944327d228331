"""The emulator words sampling and tool-choice rejections as Bedrock does: the model's message behind "The model
returned the following errors: " (as quoted from real Bedrock responses; sources in mmrag/testing/_chat.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
TOOLS = {"tools": [{"toolSpec": {"name": "Pick", "inputSchema": {"json": {"type": "object"}}}}],
         "toolChoice": {"tool": {"name": "Pick"}}}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with BedrockEmulator() as emulator:
        yield emulator.client(region_name="us-east-1")


def _message(client: Any, model: str, inference: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 50, **inference}, **extra)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


def test_temperature_where_the_model_rejects_it(client: Any) -> None:
    assert _message(client, "us.anthropic.claude-haiku-5-5", {"temperature": 0.0}) == (
        "The model returned the following errors: `temperature` is deprecated for this model.")


def test_temperature_with_top_p(client: Any) -> None:
    assert _message(client, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"temperature": 0.0, "topP": 0.9}) == (
        "The model returned the following errors: `temperature` and `top_p` cannot both be specified for this "
        "model. Please use only one.")


def test_forced_tool_choice_where_the_model_thinks(client: Any) -> None:
    assert _message(client, "us.anthropic.claude-haiku-5-5", {}, toolConfig=TOOLS) == (
        "The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use.")
