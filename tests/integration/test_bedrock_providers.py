"""Bedrock providers against the loopback emulator, through the real boto3 client built by make_bedrock_client."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.errors import ConfigError, ProviderError
from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy
from mmrag.providers.bedrock.captioner import BedrockCaptioner
from mmrag.providers.bedrock.claude import make_chat_model, stream_with_retry
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.bedrock.titan import TitanMultimodalEmbedder, TitanTextEmbeddings
from mmrag.providers.cache import CachedCaptioner, CachedEmbeddings, CachedImageEmbedder, ModelCache
from mmrag.testing import BedrockEmulator, Fault
from mmrag.testing._base import approx_tokens

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_retries=8, base_delay=0.001, max_delay=0.01)
REPLY = "A bar chart of revenue by region: Europe 42%, Asia 31%, Americas 27%, for the year 2023."


@pytest.fixture
def settings(emu: BedrockEmulator) -> Settings:
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", max_concurrency=4)


@pytest.fixture
def client(settings: Settings) -> Any:
    return make_bedrock_client(settings)


def _image(i: int, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, 40))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _images(n: int) -> list[Element]:
    return [Element("image", "deck.pdf", text=f"Figure {i}: revenue", page=1, data=_image(i)) for i in range(n)]


def _captioner(settings: Settings, client: Any, **kw: Any) -> BedrockCaptioner:
    return BedrockCaptioner(settings, client=client, policy=FAST, **kw)


# -- request shapes ----------------------------------------------------------------------------------------------
def test_caption_request_carries_max_tokens_image_context_and_prompt(
    emu: BedrockEmulator, settings: Settings, client: Any
) -> None:
    jpeg = _image(3, fmt="JPEG")
    image = Element("image", "a.html", text="Figure 2: Revenue by region", mime_type="image/png", data=jpeg)
    table = Element("table", "a.pdf", text="| region | revenue |\n|---|---|\n| Europe | 42 |", page=2)
    text = Element("text", "a.pdf", text="plain text needs no caption")
    # The two requests run concurrently: answer by content, not by arrival order.
    def reply(request: Any) -> str:
        blocks = [b for m in request.body["messages"] for b in m["content"]]
        return REPLY if any("image" in b for b in blocks) else "Compares revenue (rows: regions)."

    emu.script_chat(reply)
    captioner = _captioner(settings, client)
    out = captioner.caption([image, table, text])
    assert out[0].metadata["caption"] == REPLY and out[0].metadata["caption_model"] == "us." + settings.fast_model
    assert out[0].id == image.id and out[0].text == image.text
    assert out[1].metadata["summary"] == "Compares revenue (rows: regions)."
    assert out[2] is text
    assert len(emu.requests) == 2
    first, second = sorted(emu.requests, key=lambda r: not any("image" in b for b in r.body["messages"][0]["content"]))
    assert first.operation == "Converse" and first.model_id == "us." + settings.fast_model
    assert first.body["inferenceConfig"]["maxTokens"] == settings.fast_max_tokens
    blocks = first.body["messages"][0]["content"]
    images = [b["image"] for b in blocks if "image" in b]
    assert len(images) == 1 and images[0]["format"] == "jpeg"  # declared image/png: the bytes decide
    assert base64.b64decode(images[0]["source"]["bytes"]) == jpeg
    prompt = first.last_user_text
    assert "Figure 2: Revenue by region" in prompt and "legend" in prompt and "number" in prompt
    assert second.body["inferenceConfig"]["maxTokens"] == settings.fast_max_tokens
    assert "| Europe | 42 |" in second.last_user_text and "compares" in second.last_user_text
    assert captioner.stats.as_dict() == {"calls": 2, "retries": 0, "throttles": 0, "failures": 0, "filtered": 0}


def test_titan_text_body_and_empty_strings(emu: BedrockEmulator, client: Any) -> None:
    emb = TitanTextEmbeddings(client=client, dimensions=512, policy=FAST)
    vectors = emb.embed_documents(["hello multimodal world", "", "   ", "second text"])
    assert [len(v) for v in vectors] == [512] * 4
    assert vectors[1] == [0.0] * 512 and vectors[2] == [0.0] * 512
    assert len(emu.requests) == 2  # empty texts never reach the model
    bodies = sorted((r.body for r in emu.requests), key=lambda b: b["inputText"])  # concurrent: any order
    assert bodies == [{"inputText": t, "dimensions": 512, "normalize": True}
                      for t in ("hello multimodal world", "second text")]
    assert emb.embed_query("hello multimodal world") == vectors[0]


def test_titan_multimodal_truncates_captions_and_fits_images(emu: BedrockEmulator, settings: Settings,
                                                              client: Any) -> None:
    emb = TitanMultimodalEmbedder(settings, client=client, policy=FAST)
    caption = " ".join(f"word{i % 50}, value {i}." for i in range(250))  # 1,000 words and then some
    gif = _image(1, fmt="GIF")
    wide = _image(2, size=(3000, 1000))
    vectors = emb.embed_images([_image(0), gif, wide], [caption, None, "a wide banner"])
    assert [len(v) for v in vectors] == [settings.image_embedding_dims] * 3
    by_text = {r.body.get("inputText", "")[:5]: r for r in emu.requests}  # requests run concurrently: any order
    first, second, third = by_text["word0"], by_text[""], by_text["a wid"]
    assert "inputImage" in first.body and first.body["embeddingConfig"] == {"outputEmbeddingLength": 1024}
    assert 0 < approx_tokens(first.body["inputText"]) <= settings.image_caption_max_tokens
    assert caption.startswith(first.body["inputText"])
    assert "inputText" not in second.body
    assert base64.b64decode(second.body["inputImage"]).startswith(b"\x89PNG")  # GIF converted
    assert max(Image.open(io.BytesIO(base64.b64decode(third.body["inputImage"]))).size) == 2048
    assert all(r.error_code is None for r in emu.requests)
    text = emb.embed_texts(["revenue chart", ""])
    assert len(text[0]) == 1024 and text[1] == [0.0] * 1024
    assert emu.requests[-1].body == {"inputText": "revenue chart", "embeddingConfig": {"outputEmbeddingLength": 1024}}


# -- concurrency, throttling, faults -----------------------------------------------------------------------------
def test_captions_run_concurrently_within_the_limit(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    emu.set_latency(0.1, operation="Converse")
    out = _captioner(settings, client).caption(_images(40))
    assert all("caption" in e.metadata for e in out)
    assert 3 <= emu.peak_in_flight(operation="Converse") <= 4


def test_throttling_is_retried_and_lowers_the_limit(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    emu.set_latency(0.05, operation="Converse")
    emu.add_fault(Fault("throttle", times=5, operation="Converse"))
    captioner = _captioner(settings, client)
    out = captioner.caption(_images(40))
    assert all("caption" in e.metadata for e in out)
    assert len(emu.requests) == 45 and sum(r.status == 429 for r in emu.requests) == 5
    assert captioner.stats.retries == 5 and captioner.stats.failures == 0
    assert captioner.limiter.min_limit_seen < 4 and emu.max_in_flight <= 4


@pytest.mark.parametrize("kind", ["model_not_ready", "server_error", "unavailable", "model_timeout"])
def test_transient_faults_are_retried(emu: BedrockEmulator, client: Any, kind: Any) -> None:
    emu.add_fault(Fault(kind, times=2))
    emb = TitanTextEmbeddings(client=client, policy=FAST)
    assert len(emb.embed_documents(["one", "two", "three"])) == 3
    assert len(emu.requests) == 5 and emb.stats.retries == 2


def test_read_timeouts_are_retried(emu: BedrockEmulator, settings: Settings) -> None:
    emu.add_fault(Fault("timeout", seconds=1.0))
    emb = TitanTextEmbeddings(client=make_bedrock_client(settings, read_timeout=0.2), policy=FAST)
    assert len(emb.embed_query("slow")) == 1024
    assert len(emu.requests) == 2


def test_validation_errors_are_not_retried(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    emb = TitanTextEmbeddings(client=client, dimensions=300, policy=FAST)
    with pytest.raises(ProviderError) as excinfo:
        emb.embed_query("x")
    assert not excinfo.value.is_retryable and len(emu.requests) == 1
    assert "ValidationException" in str(excinfo.value) and "amazon.titan-embed-text-v2:0" in str(excinfo.value)
    assert "is not a valid enum value" in str(excinfo.value)
    # A captioner pointed at a model that cannot chat fails on every element: the run stops with that error
    # (it would otherwise index everything uncaptioned), after one request, the failure counted.
    captioner = _captioner(settings, client, model_id="amazon.titan-embed-text-v2:0")
    element = _images(1)[0]
    with pytest.raises(ProviderError, match="every caption request"):
        captioner.caption([element])
    assert len(emu.requests) == 2 and captioner.stats.failures == 1


def test_retries_run_out(emu: BedrockEmulator, client: Any) -> None:
    emu.add_fault(Fault("throttle", times=None))
    emb = TitanTextEmbeddings(client=client, policy=RetryPolicy(max_retries=2, base_delay=0.001))
    with pytest.raises(ProviderError) as excinfo:
        emb.embed_query("x")
    assert excinfo.value.is_retryable and "ThrottlingException" in str(excinfo.value)
    assert len(emu.requests) == 3


def test_one_failing_element_never_sinks_the_batch(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    emu.add_fault(Fault("server_error", times=None, operation="Converse"))
    elements = _images(3)
    captioner = BedrockCaptioner(settings, client=client, policy=RetryPolicy(max_retries=1, base_delay=0.001))
    assert captioner.caption(elements) == elements
    assert captioner.stats.failures == 3 and len(emu.requests) == 6


# -- chat models and streams -------------------------------------------------------------------------------------
def test_fast_chat_model_sets_max_tokens_and_profile_id(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    llm = make_chat_model(settings, "fast", client=client)
    emu.script_chat(["Hello."])
    assert llm.invoke("hi").content == "Hello."
    sent = emu.requests[-1]
    assert sent.model_id == "us." + settings.fast_model and settings.fast_model.startswith("anthropic.")
    assert sent.body["inferenceConfig"] == {"maxTokens": settings.fast_max_tokens, "temperature": 0.0}
    assert llm.bedrock_client._client is None  # the control-plane client was never built
    strong = make_chat_model(settings, "strong", client=client)
    strong.invoke("hi")
    assert emu.requests[-1].body["inferenceConfig"]["maxTokens"] == settings.strong_max_tokens
    assert emu.requests[-1].model_id == "us." + settings.strong_model


def _text(chunks: list[Any]) -> str:
    return "".join(p["text"] for c in chunks for p in c.content if isinstance(p, dict) and p.get("type") == "text")


def test_stream_throttle_before_first_token_is_retried(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    llm = make_chat_model(settings, "fast", client=client)
    emu.add_fault(Fault("stream_throttle", after_events=1))  # only messageStart before the exception
    emu.script_chat([REPLY, REPLY])
    limiter = AdaptiveLimiter(4)
    chunks = list(stream_with_retry(llm, "describe", limiter=limiter, policy=FAST))
    assert _text(chunks) == REPLY
    assert [r.error_code for r in emu.requests] == ["throttlingException", None]
    assert limiter.in_flight == 0 and limiter.min_limit_seen == 2


def test_stream_failure_after_tokens_raises_retryable(emu: BedrockEmulator, settings: Settings, client: Any) -> None:
    llm = make_chat_model(settings, "fast", client=client)
    emu.add_fault(Fault("stream_error", after_events=3))
    emu.script_chat([REPLY])
    received: list[Any] = []
    with pytest.raises(ProviderError) as excinfo:
        received.extend(stream_with_retry(llm, "describe", policy=FAST))
    assert excinfo.value.is_retryable and "partial output" in str(excinfo.value)
    assert _text(received) and len(emu.requests) == 1


# -- cache -------------------------------------------------------------------------------------------------------
def test_cache_second_run_makes_no_requests(emu: BedrockEmulator, settings: Settings, client: Any,
                                            tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache" / "models.sqlite")
    texts = ["alpha beta", "gamma", "alpha beta"]
    emb = CachedEmbeddings(TitanTextEmbeddings(settings, client=client, policy=FAST), cache)
    first = emb.embed_documents(texts)
    assert len(emu.requests) == 2  # duplicates inside a batch are sent once
    captioner = CachedCaptioner(_captioner(settings, client), cache)
    images = CachedImageEmbedder(TitanMultimodalEmbedder(settings, client=client, policy=FAST), cache)
    elements = _images(3)
    captioned = captioner.caption(elements)
    vectors = images.embed_images([e.data or b"" for e in elements], [e.metadata["caption"] for e in captioned])
    emu.reset()
    assert emb.embed_documents(texts) == first
    assert captioner.caption(elements) == captioned
    assert images.embed_images([e.data or b"" for e in elements], [e.metadata["caption"] for e in captioned]) == vectors
    assert emu.requests == [] and emb.hits == 3 and captioner.hits == 3 and images.hits == 3
    # Anything that changes the output misses: dimensions, model id.
    smaller = TitanTextEmbeddings(settings, client=client, dimensions=256, policy=FAST)
    CachedEmbeddings(smaller, cache).embed_query("gamma")
    arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
    profile = TitanTextEmbeddings(settings, client=client, model_id=arn, policy=FAST)
    CachedEmbeddings(profile, cache).embed_query("gamma")
    assert len(emu.requests) == 2


# -- async -------------------------------------------------------------------------------------------------------
def test_async_embeddings_and_captions_respect_the_limit(emu: BedrockEmulator, settings: Settings,
                                                         client: Any) -> None:
    emu.set_latency(0.05)
    limiter = AdaptiveLimiter(4)
    emb = TitanTextEmbeddings(settings, client=client, policy=FAST, limiter=limiter)
    captioner = _captioner(settings, client, limiter=limiter)

    async def run() -> tuple[list[list[float]], list[Element], list[float]]:
        return await asyncio.gather(
            emb.aembed_documents([f"text {i}" for i in range(20)]),
            captioner.acaption(_images(20)),
            emb.aembed_query("query"),
        )

    vectors, captioned, query = asyncio.run(run())
    assert len(vectors) == 20 and len(query) == 1024 and all("caption" in e.metadata for e in captioned)
    assert 3 <= emu.max_in_flight <= 4  # one limiter shared by both providers


# -- configuration -----------------------------------------------------------------------------------------------
def test_missing_credentials_raise_config_error_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match=r"No AWS credentials found: run `aws configure` or set MMRAG_PROFILE=local"):
        make_bedrock_client(Settings(profile="bedrock", aws_region="us-east-1"))
