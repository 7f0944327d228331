"""The Bedrock emulator, driven by the real boto3 client over loopback HTTP: round trips, validation, embeddings."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from mmrag.providers.bedrock.catalog import approx_tokens
from mmrag.testing import BedrockEmulator, Limits, RecordedRequest

pytestmark = pytest.mark.integration

HAIKU_BASE = "anthropic.claude-haiku-4-5-20251001-v1:0"  # needs an inference profile: not callable on its own
HAIKU = f"us.{HAIKU_BASE}"
HAIKU_PROFILE = f"global.{HAIKU_BASE}"
HAIKU_ARN = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{HAIKU}"
TITAN_TEXT = "amazon.titan-embed-text-v2:0"
TITAN_MM = "amazon.titan-embed-image-v1"


@pytest.fixture
def client(emu: BedrockEmulator) -> Any:
    return emu.client()


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", size, color)
    for x in range(size[0] // 2):  # a diagonal band, so images differ in layout as well as colour
        img.putpixel((x, min(size[1] - 1, x * size[1] // size[0])), (255 - color[0], 255 - color[1], 0))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with almost no pixel data (cheap oversized image)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _resized(data: bytes, factor: float) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    img = img.resize((max(1, int(img.width * factor)), max(1, int(img.height * factor))))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def _invoke(client: Any, model: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    assert response["contentType"] == "application/json"
    result: dict[str, Any] = json.loads(response["body"].read())
    return result


def _embed(client: Any, text: str, **extra: Any) -> list[float]:
    vector: list[float] = _invoke(client, TITAN_TEXT, {"inputText": text, **extra})["embedding"]
    return vector


def _mm(client: Any, *, text: str | None = None, image: bytes | None = None, dims: int = 1024) -> list[float]:
    body: dict[str, Any] = {"embeddingConfig": {"outputEmbeddingLength": dims}}
    if text is not None:
        body["inputText"] = text
    if image is not None:
        body["inputImage"] = base64.b64encode(image).decode()
    vector: list[float] = _invoke(client, TITAN_MM, body)["embedding"]
    return vector


def _user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def _converse(client: Any, messages: list[dict[str, Any]], model: str = HAIKU, **kw: Any) -> dict[str, Any]:
    kw.setdefault("inferenceConfig", {"maxTokens": 200})
    result: dict[str, Any] = client.converse(modelId=model, messages=messages, **kw)
    return result


def _claude_body(content: Any, **kw: Any) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": content}],
        **kw,
    }


def _claude_image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()},
    }


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# -- Titan Text Embeddings V2 ------------------------------------------------------------------------------------
def test_titan_text_v2_round_trip(client: Any, emu: BedrockEmulator) -> None:
    response = client.invoke_model(modelId=TITAN_TEXT, body=json.dumps({"inputText": "Hello, multimodal world"}))
    out = json.loads(response["body"].read())
    assert len(out["embedding"]) == 1024 and out["embeddingsByType"]["float"] == out["embedding"]
    assert math.isclose(math.hypot(*out["embedding"]), 1.0, rel_tol=1e-9)
    tokens = approx_tokens("Hello, multimodal world")
    assert out["inputTextTokenCount"] == tokens >= 5  # conservative: Hello , multi modal world
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == str(tokens)
    for dims in (256, 512):
        assert len(_embed(client, "x", dimensions=dims)) == dims
    both = _invoke(client, TITAN_TEXT, {"inputText": "abc", "embeddingTypes": ["float", "binary"]})
    assert both["embeddingsByType"]["binary"] == [int(v > 0) for v in both["embeddingsByType"]["float"]]
    raw = _embed(client, "the same words the same words", normalize=False)
    assert math.hypot(*raw) > 1.5
    assert _embed(client, "deterministic text") == _embed(client, "deterministic text")
    assert [r.operation for r in emu.requests] == ["InvokeModel"] * 7


def test_titan_text_similarity_follows_shared_words(client: Any) -> None:
    query = _embed(client, "a cat sat on the warm mat")
    close = _embed(client, "the cat sat on a mat")
    related = _embed(client, "cats like warm places")
    unrelated = _embed(client, "quarterly bond yields rose sharply")
    assert _cos(query, close) > _cos(query, related) > _cos(query, unrelated)
    assert _cos(query, close) > 0.6 and abs(_cos(query, unrelated)) < 0.3


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "required key [inputText]"),
        ({"inputText": ""}, "minLength"),
        ({"inputText": "x", "dimensions": 300}, "300 is not a valid enum value"),
        ({"inputText": "x", "normalize": "yes"}, "normalize"),
        ({"inputText": "x", "extra": 1}, "extraneous key [extra]"),
        ({"inputText": "x" * 50_001}, "expected maxLength: 50000, actual: 50001"),
        ({"inputText": "word " * 8_193}, "Too many input tokens. Max input tokens: 8192"),
    ],
)
def test_titan_text_validation(client: Any, body: dict[str, Any], needle: str) -> None:
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.invoke_model(modelId=TITAN_TEXT, body=json.dumps(body))
    assert needle in excinfo.value.response["Error"]["Message"]


def test_invalid_json_body_is_a_validation_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="Malformed input request"):
        client.invoke_model(modelId=TITAN_TEXT, body=b"{not json")


# -- Titan Multimodal Embeddings G1 ------------------------------------------------------------------------------
def test_titan_mm_image_vectors(client: Any, data_dir: Path) -> None:
    fish = (data_dir / "images" / "img_023.jpg").read_bytes()
    chart = (data_dir / "images" / "img_029.png").read_bytes()
    fish_vec = _mm(client, image=fish)
    assert len(fish_vec) == 1024 and math.isclose(math.hypot(*fish_vec), 1.0, rel_tol=1e-9)
    assert _mm(client, image=fish) == fish_vec
    resized = _mm(client, image=_resized(fish, 0.6))
    assert _cos(fish_vec, resized) > 0.9 > _cos(fish_vec, _mm(client, image=chart))
    assert _cos(fish_vec, resized) > _cos(
        fish_vec, _mm(client, image=(data_dir / "images" / "img_031.png").read_bytes())
    )
    assert len(_mm(client, image=fish, dims=384)) == 384 and len(_mm(client, text="fish", dims=256)) == 256


def test_titan_mm_joint_vector_averages_text_and_image(client: Any) -> None:
    image, text = _png((200, 30, 30)), "a red square"
    text_only, image_only = _mm(client, text=text), _mm(client, image=image)
    joint = _mm(client, text=text, image=image)
    assert joint not in (text_only, image_only)
    expected = [(a + b) / 2 for a, b in zip(text_only, image_only, strict=True)]
    assert _cos(joint, expected) == pytest.approx(1.0)
    assert math.isclose(math.hypot(*joint), 1.0, rel_tol=1e-9)
    body = {"inputText": text, "inputImage": base64.b64encode(image).decode()}
    assert _invoke(client, TITAN_MM, body)["inputTextTokenCount"] == approx_tokens(text)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "at least one of [inputText, inputImage]"),
        ({"inputText": "word " * 257}, "Max input tokens: 256, request input token count: 3"),
        ({"inputText": "x", "embeddingConfig": {"outputEmbeddingLength": 512}}, "512 is not a valid enum value"),
        ({"inputImage": "not base64!"}, "invalid base64"),
        ({"inputImage": base64.b64encode(b"\x89PNG\r\n\x1a\ngarbage").decode()}, "not a readable image"),
        ({"inputImage": base64.b64encode(_png((1, 2, 3), fmt="GIF")).decode()}, "must be a PNG or JPEG"),
        ({"inputImage": base64.b64encode(_png_header_only(2049, 10)).decode()}, "2049x10 exceeds the maximum"),
    ],
)
def test_titan_mm_validation(client: Any, body: dict[str, Any], needle: str) -> None:
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.invoke_model(modelId=TITAN_MM, body=json.dumps(body))
    assert needle in excinfo.value.response["Error"]["Message"]


def test_mm_text_token_limit_is_a_setting() -> None:
    with BedrockEmulator(limits=Limits(mm_text_max_tokens=4)) as emu:
        client = emu.client()
        assert len(_mm(client, text="one two three")) == 1024
        with pytest.raises(client.exceptions.ValidationException, match="Max input tokens: 4"):
            _mm(client, text="one two three four")


# -- Claude Messages through InvokeModel -------------------------------------------------------------------------
@pytest.mark.parametrize("model", [HAIKU, HAIKU_PROFILE, HAIKU_ARN])
def test_claude_invoke_round_trip(client: Any, emu: BedrockEmulator, model: str) -> None:
    emu.script_chat(["A happy fish."])
    body = _claude_body(
        [_claude_image(_png((0, 90, 200))), {"type": "text", "text": "Describe it."}],
        system="Be brief.",
        temperature=0.2,
    )
    out = _invoke(client, model, body)
    assert out["type"] == "message" and out["role"] == "assistant" and out["stop_reason"] == "end_turn"
    assert out["content"] == [{"type": "text", "text": "A happy fish."}]
    assert out["model"] == "claude-haiku-4-5-20251001" and out["id"].startswith("msg_bdrk_")
    assert out["usage"]["output_tokens"] == 4 and out["usage"]["input_tokens"] > 5
    assert emu.requests[-1].base_model_id == HAIKU_BASE and emu.requests[-1].model_id == model
    default = _invoke(client, model, _claude_body("What is RRF?"))
    assert default["content"][0]["text"] == "Emulated reply to: What is RRF?"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "hi"}]},
            "required key [max_tokens] not found",
        ),
        ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}, "required key [anthropic_version]"),
        (
            _claude_body([_claude_image(_png((1, 1, 1)), "image/jpeg")]),
            "specified using the image/jpeg media type, but the image appears to be a image/png image",
        ),
        (_claude_body([_claude_image(_png((1, 1, 1)), "image/bmp")]), "media_type"),
        (_claude_body([_claude_image(_png((1, 1, 1)))] * 21), "at most 20 images"),
        (_claude_body([_claude_image(_png_header_only(8001, 20))]), "8000 pixels"),
        (
            {**_claude_body("hi"), "messages": [{"role": "assistant", "content": "hi"}]},
            "must start with a user message",
        ),
        (_claude_body("hi", unknown_field=1), "extraneous key [unknown_field]"),
    ],
)
def test_claude_invoke_validation(client: Any, body: dict[str, Any], needle: str) -> None:
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.invoke_model(modelId=HAIKU, body=json.dumps(body))
    assert needle in excinfo.value.response["Error"]["Message"]


def test_claude_invoke_tool_use(client: Any, emu: BedrockEmulator) -> None:
    tool = {
        "name": "caption",
        "description": "d",
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    emu.script_chat([{"tool": "caption", "input": {"text": "a fish"}}])
    out = _invoke(client, HAIKU, _claude_body("go", tools=[tool], tool_choice={"type": "tool", "name": "caption"}))
    assert out["stop_reason"] == "tool_use"
    assert out["content"][0]["type"] == "tool_use" and out["content"][0]["input"] == {"text": "a fish"}


# -- Converse ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [HAIKU, HAIKU_PROFILE, "amazon.nova-lite-v1:0"])
def test_converse_round_trip(client: Any, emu: BedrockEmulator, model: str) -> None:
    emu.script_chat(["first reply", "second reply"])
    image = {"image": {"format": "png", "source": {"bytes": _png((9, 9, 9))}}}
    first = _converse(
        client,
        _user(image, {"text": "What is this?"}),
        model=model,
        system=[{"text": "You caption images."}],
        inferenceConfig={"maxTokens": 50, "temperature": 0.0, "stopSequences": ["</a>"]},
    )
    assert first["output"]["message"] == {"role": "assistant", "content": [{"text": "first reply"}]}
    assert first["stopReason"] == "end_turn" and first["metrics"]["latencyMs"] >= 0
    usage = first["usage"]
    assert usage["outputTokens"] == 2 and usage["totalTokens"] == usage["inputTokens"] + 2
    second = _converse(client, _user({"text": "again"}))
    assert second["output"]["message"]["content"][0]["text"] == "second reply"
    third = _converse(client, _user({"text": "and again"}))
    assert third["output"]["message"]["content"][0]["text"] == "Emulated reply to: and again"
    sent = emu.requests[0]
    assert sent.operation == "Converse" and sent.body["inferenceConfig"]["maxTokens"] == 50
    assert sent.headers["content-type"] == "application/json" and "authorization" in sent.headers  # SigV4-signed
    assert base64.b64decode(sent.body["messages"][0]["content"][0]["image"]["source"]["bytes"]) == _png((9, 9, 9))


def test_converse_max_tokens_truncates(client: Any, emu: BedrockEmulator) -> None:
    emu.script_chat(["one two three four five six"])
    out = _converse(client, _user({"text": "count"}), inferenceConfig={"maxTokens": 3})
    assert out["output"]["message"]["content"][0]["text"] == "one two three"
    assert out["stopReason"] == "max_tokens" and out["usage"]["outputTokens"] == 3


def _image_block(data: bytes, fmt: str = "png") -> dict[str, Any]:
    return {"image": {"format": fmt, "source": {"bytes": data}}}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"messages": _user({"text": "hi"}), "inferenceConfig": {"temperature": 0.5}}, "maxTokens is required"),
        ({"messages": _user(_image_block(_png((5, 5, 5)), "jpeg"))}, "appears to be a image/png image"),
        ({"messages": _user(_image_block(_png((5, 5, 5)), "jpg"))}, "failed to satisfy constraint"),
        ({"messages": _user(*[_image_block(_png((5, 5, 5)))] * 21)}, "at most 20 images"),
        ({"messages": _user(_image_block(_png_header_only(10, 8001)))}, "8000 pixels"),
        ({"messages": _user({"text": "a"}) + _user({"text": "b"})}, "must alternate between user and assistant"),
        ({"messages": [{"role": "assistant", "content": [{"text": "a"}]}]}, "must start with a user message"),
        (
            {"messages": _user({"text": "a"}) + [{"role": "assistant", "content": [_image_block(_png((1, 1, 1)))]}]},
            "only allowed in messages whose role is user",
        ),
        (
            {"messages": _user({"text": "a"}), "inferenceConfig": {"maxTokens": 5, "temperature": 1.5}},
            "between 0 and 1",
        ),
    ],
)
def test_converse_validation(client: Any, kwargs: dict[str, Any], needle: str) -> None:
    kwargs.setdefault("inferenceConfig", {"maxTokens": 100})
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.converse(modelId=HAIKU, **kwargs)
    assert needle in excinfo.value.response["Error"]["Message"]


def test_converse_without_max_tokens_can_be_allowed() -> None:
    with BedrockEmulator(require_max_tokens=False) as emu:
        out = emu.client().converse(modelId=HAIKU, messages=_user({"text": "hi"}))
        assert out["output"]["message"]["content"][0]["text"] == "Emulated reply to: hi"


def test_converse_structured_output_tool(client: Any, emu: BedrockEmulator) -> None:
    schema = {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}}, "n": {"type": "integer"}},
        "required": ["queries", "n"],
    }
    tool_config = {
        "tools": [{"toolSpec": {"name": "decompose", "inputSchema": {"json": schema}}}],
        "toolChoice": {"tool": {"name": "decompose"}},
    }
    emu.script_chat([{"tool": "decompose", "input": {"queries": ["a", "b"], "n": 2}}])
    out = _converse(client, _user({"text": "split"}), toolConfig=tool_config)
    block = out["output"]["message"]["content"][0]["toolUse"]
    assert block["name"] == "decompose" and block["input"] == {"queries": ["a", "b"], "n": 2}
    assert out["stopReason"] == "tool_use" and block["toolUseId"].startswith("tooluse_")
    unscripted = _converse(client, _user({"text": "split"}), toolConfig=tool_config)
    assert unscripted["output"]["message"]["content"][0]["toolUse"]["input"] == {"queries": [], "n": 0}
    emu.script_chat([{"tool": "other", "input": {}}])
    with pytest.raises(client.exceptions.ValidationException, match="scripted reply calls tool 'other'"):
        _converse(client, _user({"text": "split"}), toolConfig=tool_config)


def test_script_callable_sees_the_request(client: Any, emu: BedrockEmulator) -> None:
    seen: list[RecordedRequest] = []

    def responder(request: RecordedRequest) -> str:
        seen.append(request)
        return request.last_user_text.upper()

    emu.script_chat(responder, model="anthropic.*")
    emu.script_chat(["queued first"], model="*sonnet*")
    out = _converse(client, _user({"text": "shout this"}), model=HAIKU_PROFILE)
    assert out["output"]["message"]["content"][0]["text"] == "SHOUT THIS"
    sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert (
        _converse(client, _user({"text": "x"}), model=sonnet)["output"]["message"]["content"][0]["text"]
        == "queued first"
    )
    assert seen[0].operation == "Converse" and seen[0].model_id == HAIKU_PROFILE


# -- routing -----------------------------------------------------------------------------------------------------
def test_model_ids_and_operations_that_are_not_emulated(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="model identifier is invalid"):
        _converse(client, _user({"text": "hi"}), model="not-a-model")
    with pytest.raises(client.exceptions.ValidationException, match="doesn't support the model"):
        _converse(client, _user({"text": "hi"}), model=TITAN_TEXT)
    with pytest.raises(client.exceptions.ValidationException, match="model identifier is invalid"):
        client.invoke_model(modelId="amazon.unknown-model-v9", body=b"{}")
    with pytest.raises(client.exceptions.ValidationException, match="not emulated"):
        client.invoke_model_with_response_stream(modelId=HAIKU, body=json.dumps(_claude_body("hi")))


def test_environ_points_default_clients_at_the_emulator(emu: BedrockEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for name, value in emu.environ().items():
        monkeypatch.setenv(name, value)
    out = boto3.client("bedrock-runtime").converse(
        modelId=HAIKU, messages=_user({"text": "env"}), inferenceConfig={"maxTokens": 10}
    )
    assert out["output"]["message"]["content"][0]["text"] == "Emulated reply to: env"


def test_reset_and_stop(emu: BedrockEmulator) -> None:
    client = emu.client()
    emu.script_chat(["never used"])
    _embed(client, "x")
    emu.reset()
    assert emu.requests == [] and emu.in_flight == 0
    assert _converse(client, _user({"text": "y"}))["output"]["message"]["content"][0]["text"].startswith("Emulated")
    emu.stop()
    emu.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.url


def test_import_is_cheap() -> None:
    probe = (
        "import sys, mmrag.testing; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'PIL', 'numpy', 'http')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
