"""Issue 24: more of what Bedrock rejects or produces, each through real boto3 (citations in mmrag/testing/_strict.py,
_records.py, _emulator.py and _cohere.py)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET_46 = "us.anthropic.claude-sonnet-4-6"
OPUS_5 = "us.anthropic.claude-opus-5"
USER = {"role": "user", "content": [{"text": "hi"}]}


def _fails(match: str, fn: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError, match=match) as excinfo:
        fn(**kwargs)
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"


def _converse(client: Any, model: str = HAIKU, messages: list[dict[str, Any]] | None = None,
              max_tokens: int = 50, **kw: Any) -> dict[str, Any]:
    inference = {"maxTokens": max_tokens, **kw.pop("inference", {})}
    result: dict[str, Any] = client.converse(modelId=model, messages=messages or [USER], inferenceConfig=inference,
                                             **kw)
    return result


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_blank_text_blocks_are_rejected(emu: BedrockEmulator, text: str) -> None:
    client = emu.client()
    _fails("ContentBlock object at messages.0.content.1 is blank", _converse, client=client,
           messages=[{"role": "user", "content": [{"text": "hi"}, {"text": text}]}])
    if text:  # boto3 itself refuses an empty system text (min length 1) before sending
        _fails("SystemContentBlock object at system.0 is blank", _converse, client=client, system=[{"text": text}])


def test_a_prompt_over_the_context_window_is_rejected(emu: BedrockEmulator) -> None:
    long = "word " * 210_000  # over Haiku 4.5's 200K tokens
    _fails("Input is too long for requested model", _converse, client=emu.client(),
           messages=[{"role": "user", "content": [{"text": long}]}])


def test_assistant_prefill_is_rejected_where_the_model_dropped_it(emu: BedrockEmulator) -> None:
    client = emu.client()
    prefill = [USER, {"role": "assistant", "content": [{"text": "Sure:"}]}]
    assert _converse(client, HAIKU, prefill)["stopReason"] == "end_turn"  # Haiku 4.5 still accepts it
    for model in (SONNET_46, OPUS_5):
        _fails("does not support assistant message prefill", _converse, client=client, model=model, messages=prefill)


def test_top_p_and_top_k_are_rejected_by_models_that_reject_sampling_parameters(emu: BedrockEmulator) -> None:
    client = emu.client()
    _fails("`top_p` is deprecated", _converse, client=client, model=OPUS_5, inference={"topP": 0.9})
    _fails("`top_k` is deprecated", _converse, client=client, model=OPUS_5,
           additionalModelRequestFields={"top_k": 5})
    assert _converse(client, HAIKU, additionalModelRequestFields={"top_k": 5})["stopReason"] == "end_turn"


def test_thinking_budget_and_temperature_rules(emu: BedrockEmulator) -> None:
    client = emu.client()
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    _fails("must be greater than `thinking.budget_tokens`", _converse, client=client, max_tokens=2048,
           additionalModelRequestFields=thinking)
    _fails("`temperature` may only be set to 1", _converse, client=client, max_tokens=4096,
           inference={"temperature": 0.0}, additionalModelRequestFields=thinking)
    assert _converse(client, max_tokens=4096, additionalModelRequestFields=thinking)["stopReason"] == "end_turn"


def test_invalid_document_bytes_are_rejected(emu: BedrockEmulator) -> None:
    client = emu.client()

    def doc(data: bytes) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"text": "Summarise"}, {"document": {
            "format": "pdf", "name": "report", "source": {"bytes": data}}}]}]

    _fails("not a valid pdf file", _converse, client=client, messages=doc(b"<html>not a pdf</html>"))
    assert _converse(client, messages=doc(b"%PDF-1.7\n%fake but well-started\n"))["stopReason"] == "end_turn"


def test_a_tool_result_without_its_tool_use_is_rejected(emu: BedrockEmulator) -> None:
    client = emu.client()
    tools = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}
    use = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {}}}]}

    def result(tool_id: str) -> dict[str, Any]:
        return {"role": "user", "content": [{"toolResult": {"toolUseId": tool_id, "content": [{"text": "42"}]}}]}

    _fails("Each `tool_result` block must have a corresponding `tool_use`", _converse, client=client,
           messages=[USER, use, result("tooluse_2")], toolConfig=tools)
    assert _converse(client, messages=[USER, use, result("tooluse_1")], toolConfig=tools)["stopReason"]


def test_application_inference_profile_arns_are_accepted_in_their_region(emu: BedrockEmulator) -> None:
    arn = emu.create_application_inference_profile("us.anthropic.claude-haiku-4-5-20251001-v1:0",
                                                   region="us-east-1")
    assert _converse(emu.client(region_name="us-east-1"), arn)["stopReason"] == "end_turn"
    assert emu.requests[-1].base_model_id == "anthropic.claude-haiku-4-5-20251001-v1:0"
    _fails("model identifier is invalid", _converse, client=emu.client(region_name="eu-west-1"), model=arn)
    _fails("model identifier is invalid", _converse, client=emu.client(), model=arn.replace("mmrag0", "nope"))


@pytest.mark.parametrize(("region", "model"), [("ap-northeast-1", "jp.anthropic.claude-opus-5"),
                                                ("ap-southeast-2", "au.anthropic.claude-sonnet-5"),
                                                ("ap-south-1", "in.anthropic.claude-haiku-4-5-20251001-v1:0")])
def test_jp_au_in_profiles_are_accepted_in_their_geography(emu: BedrockEmulator, region: str, model: str) -> None:
    assert _converse(emu.client(region_name=region), model)["stopReason"] == "end_turn"
    _fails("model identifier is invalid", _converse, client=emu.client(region_name="us-east-1"), model=model)


def test_cohere_image_embeddings_carry_image_metadata(emu: BedrockEmulator) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    body = {"input_type": "search_document", "images": [uri], "embedding_types": ["float"], "output_dimension": 256}
    out = json.loads(emu.client().invoke_model(modelId="us.cohere.embed-v4:0", body=json.dumps(body))["body"].read())
    assert out["images"] == [{"width": 40, "height": 30, "format": "png", "bit_depth": 8}]
