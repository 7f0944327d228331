"""Every current catalog chat model through every role (captions, decomposition, synthesis stream, eval judge,
eval question drafting) on the strict emulator, through real boto3 and langchain-aws (issue 24, item 5)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mmrag.answers import Answer
from mmrag.chains.decomposition import decompose_chain, decomposition_of
from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.eval.generation import _model_question
from mmrag.eval.judge import Judge
from mmrag.providers._concurrency import RetryPolicy
from mmrag.providers.bedrock.captioner import BedrockCaptioner
from mmrag.providers.bedrock.catalog import MODELS
from mmrag.providers.bedrock.claude import make_chat_model, stream_with_retry
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

CHAT = sorted(m.base_id for m in MODELS.values() if m.kind == "chat" and m.lifecycle != "retired")
ONE_TRY = RetryPolicy(max_retries=0, base_delay=0.0, max_delay=0.0)


def _settings(emu: BedrockEmulator, model: str) -> Settings:
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", cache=False,
                    fast_model=model, strong_model=model, max_retries=0)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("model", CHAT)
def test_every_role_is_accepted(emu: BedrockEmulator, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", raising=False)
    settings = _settings(emu, model)
    client = make_bedrock_client(settings)
    fast = make_chat_model(settings, "fast", client=client)
    strong = make_chat_model(settings, "strong", client=client)

    image = Element("image", "doc.pdf", text="Figure 1", page=1, data=_png(), mime_type="image/png")
    captioned = BedrockCaptioner(settings, client=client, policy=ONE_TRY).caption([image])
    assert captioned[0].metadata.get("caption"), "caption"

    subs = decompose_chain(fast, policy=ONE_TRY).invoke("What was revenue in 2023, and how many staff were there?")
    assert decomposition_of(subs) == "model", decomposition_of(subs)

    chunks = list(stream_with_retry(strong, [("human", "Say hi")], policy=ONE_TRY))
    assert "Emulated reply" in "".join(str(c.content) for c in chunks)

    judgement = Judge(fast).grade("Q?", ["A"], Answer("Q?", "A", "generated"), [])
    assert judgement.error is None, judgement.error

    draft = _model_question(Element("text", "doc.pdf", text="Revenue was 5 million euros in 2023."), fast, None)
    assert draft is not None and draft["question"]
    assert all(r.status == 200 for r in emu.requests), [(r.model_id, r.error_code) for r in emu.requests]
