"""The emulator rejects what real Bedrock rejects, with the real error class and message shape (real boto3)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from mmrag.providers.bedrock.catalog import MODELS, approx_tokens
from mmrag.testing import BedrockEmulator, Fault

pytestmark = pytest.mark.integration

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


def _client(emu: BedrockEmulator, region: str = "us-east-1") -> Any:
    return emu.client(region_name=region)


def _converse(client: Any, model: str, **config: Any) -> dict[str, Any]:
    inference = {"maxTokens": 50, **config.pop("inference", {})}
    result: dict[str, Any] = client.converse(modelId=model, messages=MESSAGES, inferenceConfig=inference, **config)
    return result


def _fails(client: Any, code: str, match: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError, match=match) as excinfo:
        fn(*args, **kwargs)
    assert excinfo.value.response["Error"]["Code"] == code


def test_base_id_of_a_model_that_needs_a_profile_is_rejected(emu: BedrockEmulator) -> None:
    client = _client(emu)
    _fails(client, "ValidationException", "on-demand throughput isn.t supported", _converse, client, HAIKU)
    assert _converse(client, f"us.{HAIKU}")["stopReason"] == "end_turn"


@pytest.mark.parametrize(("region", "ok", "bad"), [
    ("eu-west-1", "eu", "us"), ("us-east-1", "us", "eu"), ("ap-northeast-1", "jp", "us"),
    ("ap-southeast-2", "au", "eu"),
])
def test_geo_profile_only_from_its_own_regions(emu: BedrockEmulator, region: str, ok: str, bad: str) -> None:
    client = _client(emu, region)
    assert _converse(client, f"{ok}.{HAIKU}")["stopReason"] == "end_turn"
    assert _converse(client, f"global.{HAIKU}")["stopReason"] == "end_turn"
    _fails(client, "ValidationException", "model identifier is invalid", _converse, client, f"{bad}.{HAIKU}")
    # A profile that does not exist for the model at all (Haiku 4.5 has no apac. profile).
    _fails(client, "ValidationException", "model identifier is invalid", _converse, client, f"apac.{HAIKU}")


def test_in_region_model_not_offered_in_the_region(emu: BedrockEmulator) -> None:
    body = json.dumps({"inputText": "x"})
    client = _client(emu, "ap-northeast-1")  # Titan Multimodal G1 is not offered in Tokyo
    _fails(client, "ValidationException", "model identifier is invalid", client.invoke_model,
           modelId="amazon.titan-embed-image-v1", body=body)
    assert client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=body)["ResponseMetadata"]


def test_temperature_for_a_model_that_rejects_it(emu: BedrockEmulator) -> None:
    client = _client(emu)
    model = "us.anthropic.claude-sonnet-5"
    assert not MODELS["anthropic.claude-sonnet-5"].temperature
    _fails(client, "ValidationException", "temperature. is deprecated", _converse, client, model,
           inference={"temperature": 0.0})
    assert _converse(client, model)["stopReason"] == "end_turn"


def test_temperature_and_top_p_together(emu: BedrockEmulator) -> None:
    client = _client(emu)
    _fails(client, "ValidationException", "cannot both be specified", _converse, client, f"us.{HAIKU}",
           inference={"temperature": 0.0, "topP": 0.9})
    assert _converse(client, f"us.{HAIKU}", inference={"topP": 0.9})["stopReason"] == "end_turn"


def test_forced_tool_choice_where_unsupported(emu: BedrockEmulator) -> None:
    client = _client(emu)
    tools = {"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {"type": "object"}}}}]}
    forced = {**tools, "toolChoice": {"tool": {"name": "t"}}}
    _fails(client, "ValidationException", "tool_choice forces tool use", _converse, client,
           "global.anthropic.claude-haiku-5-5", toolConfig=forced)
    assert _converse(client, "global.anthropic.claude-haiku-5-5", toolConfig={**tools, "toolChoice": {"auto": {}}})
    assert _converse(client, f"us.{HAIKU}", toolConfig=forced)["stopReason"] == "tool_use"


def test_max_tokens_above_the_model_maximum(emu: BedrockEmulator) -> None:
    client = _client(emu)
    limit = MODELS[HAIKU].max_output_tokens
    assert limit == 64_000
    _fails(client, "ValidationException", f"exceeds the model limit of {limit}", _converse, client, f"us.{HAIKU}",
           inference={"maxTokens": limit + 1})
    assert _converse(client, f"us.{HAIKU}", inference={"maxTokens": limit})["stopReason"] == "end_turn"


def test_retired_model_ids(emu: BedrockEmulator) -> None:
    client = _client(emu)
    _fails(client, "ResourceNotFoundException", "end of its life", _converse, client,
           "us.anthropic.claude-3-5-haiku-20241022-v1:0")


def test_token_limits_do_not_undercount_prose(emu: BedrockEmulator) -> None:
    client = _client(emu)
    # Long words cost more than one token each: 2,300 long words (48k characters, under the 50k character limit)
    # are over Titan V2's 8,192-token limit, where a one-token-per-word count would let them through.
    prose = " ".join(["internationalization"] * 2_300)
    assert len(prose) < 50_000 and approx_tokens(prose) > 8_192 > len(prose.split())
    _fails(client, "ValidationException", "Too many input tokens", client.invoke_model,
           modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": prose}))


@pytest.mark.parametrize(("kind", "code", "status"), [
    ("access_denied", "AccessDeniedException", 403),
    ("quota_exceeded", "ServiceQuotaExceededException", 400),
    ("model_error", "ModelErrorException", 424),
])
def test_injectable_access_and_quota_faults(emu: BedrockEmulator, kind: Any, code: str, status: int) -> None:
    client = _client(emu)
    emu.add_fault(Fault(kind, model="*haiku*"))
    with pytest.raises(ClientError) as excinfo:
        _converse(client, f"us.{HAIKU}")
    assert excinfo.value.response["Error"]["Code"] == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert _converse(client, f"us.{HAIKU}")["stopReason"] == "end_turn"


# -- Nova Multimodal Embeddings ------------------------------------------------------------------------------
def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _nova(client: Any, params: dict[str, Any]) -> dict[str, Any]:
    body = {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": params}
    out: dict[str, Any] = json.loads(client.invoke_model(modelId="amazon.nova-2-multimodal-embeddings-v1:0",
                                                         body=json.dumps(body))["body"].read())
    return out


def test_nova_mme_documented_request_and_response(emu: BedrockEmulator) -> None:
    client = _client(emu)
    text = _nova(client, {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": 384,
                          "text": {"truncationMode": "END", "value": "a green rectangle"}})
    assert text["embeddings"][0]["embeddingType"] == "TEXT" and len(text["embeddings"][0]["embedding"]) == 384
    image = _nova(client, {"embeddingPurpose": "IMAGE_RETRIEVAL", "embeddingDimension": 256, "image": {
        "format": "png", "detailLevel": "DOCUMENT_IMAGE", "source": {"bytes": base64.b64encode(_png()).decode()}}})
    assert image["embeddings"][0]["embeddingType"] == "IMAGE" and len(image["embeddings"][0]["embedding"]) == 256
    with pytest.raises(ClientError, match="embeddingPurpose"):
        _nova(client, {"embeddingPurpose": "INDEX", "text": {"truncationMode": "END", "value": "x"}})
    with pytest.raises(ClientError, match="truncationMode"):
        _nova(client, {"embeddingPurpose": "GENERIC_INDEX", "text": {"value": "x"}})
    with pytest.raises(ClientError, match="exactly one of"):
        _nova(client, {"embeddingPurpose": "GENERIC_INDEX"})
    eu = _client(emu, "eu-west-1")  # launched in us-east-1 only
    with pytest.raises(ClientError, match="model identifier is invalid"):
        _nova(eu, {"embeddingPurpose": "GENERIC_INDEX", "text": {"truncationMode": "END", "value": "x"}})
