"""The Bedrock emulator's streams, injected faults, latency and concurrency tracking, with the real boto3 client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError, ReadTimeoutError

from mmrag.testing import BedrockEmulator, Fault
from mmrag.testing._eventstream import encode_event, encode_exception

pytestmark = pytest.mark.integration

HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
HAIKU_PROFILE = "global.anthropic.claude-haiku-4-5-20251001-v1:0"
TITAN_TEXT = "amazon.titan-embed-text-v2:0"
MESSAGES = [{"role": "user", "content": [{"text": "Tell me about fusion."}]}]
REPLY = "Reciprocal rank fusion adds 1/(k + rank) over every list, with k = 60."


@pytest.fixture
def emu() -> Iterator[BedrockEmulator]:
    """A fresh emulator per test: fault tests leave server threads sleeping on injected latency, which would
    count as in flight in the next test of a shared emulator."""
    with BedrockEmulator() as emulator:
        yield emulator


def _converse(client: Any, model: str = HAIKU) -> dict[str, Any]:
    result: dict[str, Any] = client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 200})
    return result


def _stream(client: Any, model: str = HAIKU) -> Any:
    response = client.converse_stream(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 200})
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    return response["stream"]


def _embed(client: Any, text: str = "hello") -> list[float]:
    body = json.loads(client.invoke_model(modelId=TITAN_TEXT, body=json.dumps({"inputText": text}))["body"].read())
    vector: list[float] = body["embedding"]
    return vector


# -- event stream ------------------------------------------------------------------------------------------------
def test_eventstream_frames_decode_with_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_event("messageStart", {"role": "assistant"}) + encode_exception("throttlingException", "x"))
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(first.payload) == {"role": "assistant"}
    assert second.headers[":exception-type"] == "throttlingException" and json.loads(second.payload) == {"message": "x"}


def test_converse_stream_deltas_concatenate_to_the_reply(emu: BedrockEmulator) -> None:
    emu.script_chat([REPLY])
    events = list(_stream(emu.client(), HAIKU_PROFILE))
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert len(deltas) > 3 and "".join(deltas) == REPLY
    assert events[0]["messageStart"]["role"] == "assistant"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    usage = events[-1]["metadata"]["usage"]
    assert usage["outputTokens"] > 10 and usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def test_converse_stream_tool_use(emu: BedrockEmulator) -> None:
    emu.script_chat([{"tool": "answer", "input": {"text": "a long enough answer to need several deltas"}}])
    tool_config = {
        "tools": [{"toolSpec": {"name": "answer", "inputSchema": {"json": {"type": "object"}}}}],
        "toolChoice": {"any": {}},
    }
    response = emu.client().converse_stream(
        modelId=HAIKU, messages=MESSAGES, toolConfig=tool_config, inferenceConfig={"maxTokens": 100}
    )
    events = list(response["stream"])
    assert events[1]["contentBlockStart"]["start"]["toolUse"]["name"] == "answer"
    raw = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert json.loads(raw) == {"text": "a long enough answer to need several deltas"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


def test_stream_throttle_raises_while_iterating(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("stream_throttle", model="anthropic.*", after_events=3))
    emu.script_chat([REPLY, REPLY])
    stream = _stream(emu.client(), HAIKU_PROFILE)
    received = []
    with pytest.raises(EventStreamError) as excinfo:
        for event in stream:
            received.append(event)
    assert excinfo.value.response["Error"]["Code"] == "throttlingException"
    assert len(received) == 3 and "messageStart" in received[0]
    assert emu.requests[-1].error_code == "throttlingException" and emu.requests[-1].status == 200
    assert (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in _stream(emu.client()) if "contentBlockDelta" in e)
        == REPLY
    )  # a fault fires once, the script is not consumed by it


def test_stream_faults_skip_other_operations(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("stream_error"))
    client = emu.client()
    assert _converse(client)["stopReason"] == "end_turn"
    with pytest.raises(EventStreamError) as excinfo:
        list(_stream(client))
    assert excinfo.value.response["Error"]["Code"] == "modelStreamErrorException"


# -- HTTP faults -------------------------------------------------------------------------------------------------
def test_throttle_without_retries_raises_each_time(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("throttle", times=2, model="anthropic.*"))
    client = emu.client()
    for _ in range(2):
        with pytest.raises(client.exceptions.ThrottlingException) as excinfo:
            _converse(client, HAIKU_PROFILE)
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert _converse(client, HAIKU_PROFILE)["stopReason"] == "end_turn"
    assert _embed(client)  # other models were never affected
    assert [r.status for r in emu.requests] == [429, 429, 200, 200]


def test_throttle_with_standard_retries_succeeds(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("throttle", times=2, operation="InvokeModel"))
    client = emu.client(max_attempts=3)
    assert len(_embed(client)) == 1024
    assert [r.error_code for r in emu.requests] == ["ThrottlingException", "ThrottlingException", None]


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("server_error", "InternalServerException", 500),
        ("unavailable", "ServiceUnavailableException", 503),
        ("model_not_ready", "ModelNotReadyException", 429),
        ("model_timeout", "ModelTimeoutException", 408),
    ],
)
def test_http_faults_map_to_modelled_exceptions(emu: BedrockEmulator, kind: Any, code: str, status: int) -> None:
    emu.add_fault(Fault(kind, message="injected"))
    client = emu.client()
    with pytest.raises(getattr(client.exceptions, code)) as excinfo:
        _converse(client)
    assert excinfo.value.response["Error"]["Message"] == "injected"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_fault_forever_and_validation_of_faults(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("server_error", times=None, model=TITAN_TEXT))
    client = emu.client()
    for _ in range(3):
        with pytest.raises(client.exceptions.InternalServerException):
            _embed(client)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        Fault("throttle", times=0)


def test_timeout_fault_trips_the_client_read_timeout(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("timeout", seconds=2.0))
    client = emu.client(read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        _embed(client)
    assert time.monotonic() - started < 1.9
    assert len(_embed(client)) == 1024  # the next call is answered normally


def test_slow_answer_without_client_timeout(emu: BedrockEmulator) -> None:
    emu.add_fault(Fault("timeout", seconds=0.3, operation="Converse"))
    started = time.monotonic()
    assert _converse(emu.client())["metrics"]["latencyMs"] >= 300
    assert time.monotonic() - started >= 0.3


# -- latency and concurrency -------------------------------------------------------------------------------------
def test_latency_injection_per_model(emu: BedrockEmulator) -> None:
    emu.set_latency(0.25, model=TITAN_TEXT)
    client = emu.client()
    _embed(client)
    _converse(client)
    titan, haiku = emu.requests
    assert titan.duration is not None and titan.duration >= 0.25
    assert haiku.duration is not None and haiku.duration < 0.25
    emu.set_latency(0.0, model="amazon.*")  # the newest matching rule wins
    _embed(client)
    assert (emu.requests[-1].duration or 0) < 0.25


def test_max_in_flight_under_parallel_calls(emu: BedrockEmulator) -> None:
    emu.set_latency(0.2, operation="InvokeModel")
    client = emu.client(max_pool_connections=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        vectors = list(pool.map(lambda i: _embed(client, f"text {i}"), range(8)))
    assert len(vectors) == 8 and emu.in_flight == 0
    assert 2 <= emu.max_in_flight <= 8
    assert emu.peak_in_flight(model="amazon.titan-*", operation="InvokeModel") == emu.max_in_flight
    assert emu.peak_in_flight(model="anthropic.*") == 0
    _converse(client)
    assert emu.peak_in_flight(operation="Converse") == 1


# -- LangChain ---------------------------------------------------------------------------------------------------
def test_langchain_chat_bedrock_converse(emu: BedrockEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_aws import ChatBedrockConverse

    for name, value in emu.environ().items():  # LangChain also builds a control-plane "bedrock" client
        monkeypatch.setenv(name, value)
    emu.script_chat(["Hello from the emulator."])
    llm = ChatBedrockConverse(client=emu.client(), model=HAIKU, max_tokens=100)
    message = llm.invoke("hi")
    assert message.content == "Hello from the emulator."
    sent = emu.requests[-1]
    assert sent.operation == "Converse" and sent.body["inferenceConfig"]["maxTokens"] == 100
    assert sent.body["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    emu.script_chat([REPLY])
    chunks = list(llm.stream("stream please"))
    text = "".join(
        part["text"]
        for chunk in chunks
        for part in chunk.content
        if isinstance(part, dict) and part.get("type") == "text"
    )
    assert text == REPLY and emu.requests[-1].operation == "ConverseStream"
