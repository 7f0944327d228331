"""Stop reasons (issue 24, item 7): a cut answer is continued once or marked, a guardrail/filter stop is said so in
the text and in ``to_dict()["stop_reason"]`` (what ``ask --json`` prints), and a filtered caption is final."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from mmrag.answers import Answer, Hit
from mmrag.chains.stages import CONTINUE_PROMPT, synthesize_stage
from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.providers._concurrency import RetryPolicy
from mmrag.providers.bedrock.captioner import BedrockCaptioner
from mmrag.providers.bedrock.claude import BLOCKED_KEY, make_chat_model
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.cache import CachedCaptioner, ModelCache
from mmrag.testing import BedrockEmulator, Fault

pytestmark = pytest.mark.integration

ONE_TRY = RetryPolicy(max_retries=0, base_delay=0.0, max_delay=0.0)
LONG = " ".join(f"word{i}" for i in range(60)) + " [1]."


def _settings(emu: BedrockEmulator, **kw: object) -> Settings:
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", cache=False,
                    max_retries=0, **kw)  # type: ignore[arg-type]


def _state() -> dict[str, object]:
    element = Element("text", "report.pdf", text="Revenue was 5 million euros in 2023.", page=2)
    return {"question": "What was revenue?", "sub_questions": ["What was revenue?"], "hits": [Hit(element, 1.0)]}


def _synthesize(emu: BedrockEmulator, **kw: object) -> Answer:
    settings = _settings(emu, **kw)
    model = make_chat_model(settings, "strong", client=make_bedrock_client(settings))
    answer = synthesize_stage(model).invoke(_state())
    assert isinstance(answer, Answer)
    return answer


def _streams(emu: BedrockEmulator) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if r.operation == "ConverseStream"]


def test_an_answer_cut_at_max_tokens_is_continued_once(emu: BedrockEmulator) -> None:
    emu.script_chat([LONG, "and the rest [1]."])
    answer = _synthesize(emu, strong_max_tokens=20)
    first, second = _streams(emu)
    assert second.last_user_text == CONTINUE_PROMPT
    assert second.body["messages"][-2]["role"] == "assistant"  # the cut text, then a user turn: no prefill
    assert answer.text.endswith("and the rest [1].") and answer.stop_reason == "end_turn"
    assert "incomplete" not in answer.text


def test_an_answer_still_cut_says_so(emu: BedrockEmulator) -> None:
    emu.script_chat([LONG, LONG])
    answer = _synthesize(emu, strong_max_tokens=20)
    assert len(_streams(emu)) == 2
    assert answer.stop_reason == "max_tokens" and "cut at the token limit" in answer.text
    assert answer.to_dict()["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(("kind", "says"), [("guardrail_intervened", "Guardrails blocked this answer"),
                                            ("content_filtered", "content filter stopped this answer"),
                                            ("model_context_window_exceeded", "context window")])
def test_a_filtered_answer_is_not_passed_off_as_the_answer(emu: BedrockEmulator, kind: str, says: str) -> None:
    emu.script_chat(["Revenue was 5 million euros [1]."])
    emu.add_fault(Fault(kind, operation="ConverseStream"))  # type: ignore[arg-type]
    answer = _synthesize(emu)
    assert answer.stop_reason == kind and says in answer.text
    assert answer.to_dict()["stop_reason"] == kind
    if kind == "guardrail_intervened":
        assert answer.text.startswith("Sorry, the model cannot answer this question.") and answer.citations == ()
        assert not answer.answered and answer.to_dict()["answered"] is False


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_filtered_caption_is_a_final_reported_outcome(emu: BedrockEmulator, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(emu)
    inner = BedrockCaptioner(settings, client=make_bedrock_client(settings), policy=RetryPolicy(max_retries=3))
    captioner = CachedCaptioner(inner, ModelCache(tmp_path / "cache.sqlite"))
    emu.add_fault(Fault("content_filtered", times=None, operation="Converse"))
    image = Element("image", "doc.pdf", text="Figure 2", page=1, data=_png(), mime_type="image/png")
    [out] = captioner.caption([image])
    assert out.metadata[BLOCKED_KEY] == "content_filtered" and "caption" not in out.metadata
    assert len(emu.requests) == 1 and inner.stats.filtered == 1 and inner.stats.failures == 0
    assert "content was filtered" in caplog.text
    [again] = captioner.caption([image])  # the next run does not ask again
    assert again.metadata[BLOCKED_KEY] == "content_filtered" and len(emu.requests) == 1
