"""Ingest with the Bedrock profile end to end: real documents, build_providers, the real boto3 client, the
loopback Bedrock emulator. Checks what reaches the models (Claude captions and table summaries, Titan text and
multimodal embeddings), what the report counts, that a re-run costs nothing, and how faults are absorbed."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from mmrag.chains.ingestion import ingest, open_components
from mmrag.config import Settings
from mmrag.providers.bedrock import _prompts
from mmrag.testing import BedrockEmulator, Fault, RecordedRequest

pytestmark = pytest.mark.integration

HTML = "html/octave/Two_002dDimensional-Plots.html"
PDF = "pdf/tabula-data.pdf"
PLOTS = ("plot.png", "hist.png", "errorbar.png", "polar.png")
HTML_TABLES, PDF_TABLES = 3, 4
_FIGURE = re.compile(r"Figure (15\.\d): ([^\n.]+)")


def caption_reply(request: RecordedRequest) -> Any:
    """The fast model's captions: images are described by their figure title, tables get a fixed summary."""
    text = request.last_user_text
    if not _has_image(request):
        return "Summary: the table compares rows of measurements across named columns."
    match = _FIGURE.search(text)
    name = match.group(2).strip() if match else "an unnamed figure"
    return f"Octave chart, {name.lower()}: a line drawing on white axes with tick labels."


def _has_image(request: RecordedRequest) -> bool:
    return any("image" in b for m in request.body.get("messages", []) for b in m.get("content", []))


@pytest.fixture
def emu(emu: BedrockEmulator) -> BedrockEmulator:
    """The conftest's emulator, captioning every image."""
    emu.script_chat(caption_reply)
    return emu


@pytest.fixture
def settings(emu: BedrockEmulator, tmp_path: Path) -> Settings:
    # Smaller vectors than the defaults keep the emulator quick; the bodies must still carry them.
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", home=tmp_path / "home",
                    text_embedding_dims=256, image_embedding_dims=384)


def _by(emu: BedrockEmulator, operation: str, model: str, start: int = 0) -> list[RecordedRequest]:
    return [r for r in emu.requests[start:] if r.operation == operation and r.model_id == model]


def _image_bytes(request: RecordedRequest) -> list[bytes]:
    return [base64.b64decode(b["image"]["source"]["bytes"])
            for m in request.body["messages"] for b in m["content"] if "image" in b]


def test_first_ingest_calls_every_model_once_per_element_and_a_rerun_calls_none(
    emu: BedrockEmulator, settings: Settings, data_dir: Path
) -> None:
    sources = [data_dir / HTML, data_dir / PDF]
    report = ingest(sources, settings)
    assert report.ok, report.to_dict()
    assert [s.status for s in report.sources] == ["new", "new"]
    html, pdf = report.sources
    assert html.elements["image"] == len(PLOTS) and html.elements["table"] == HTML_TABLES
    assert pdf.elements == {"table": PDF_TABLES}
    assert report.caption_failures == 0

    # Claude (fast model): one Converse per image, with that image and its context, and one per table.
    converse = _by(emu, "Converse", "us." + settings.fast_model)
    assert {r.operation for r in emu.requests} == {"Converse", "InvokeModel"}  # nothing else, no streams
    captions = [r for r in converse if _has_image(r)]
    summaries = [r for r in converse if not _has_image(r)]
    assert len(captions) == len(PLOTS) and len(summaries) == HTML_TABLES + PDF_TABLES
    plots = {(data_dir / HTML).parent.joinpath(p).read_bytes() for p in PLOTS}
    assert {b for r in captions for b in _image_bytes(r)} == plots  # small PNGs go as they are
    for r in converse:
        assert r.status == 200
        assert r.body["inferenceConfig"] == {"maxTokens": settings.fast_max_tokens, "temperature": 0.0}
        assert r.body["system"][0]["text"].startswith(_prompts.CAPTION_SYSTEM)
    for r in captions:
        assert len(_image_bytes(r)) == 1 and "Describe this image" in r.last_user_text
    figures = sorted(m.group(1) for r in captions if (m := _FIGURE.search(r.last_user_text)))
    assert figures == ["15.1", "15.2", "15.3", "15.4"]  # each image with its own figure title as context
    assert any("| Mazda RX4 | 21.0 | 6 | 160.0 | 110 |" in r.last_user_text for r in summaries)

    # Titan Text v2: one request per distinct text, with the configured dimensions, normalised.
    titan_text = _by(emu, "InvokeModel", settings.text_embedding_model)
    assert all(set(r.body) == {"inputText", "dimensions", "normalize"} for r in titan_text)
    assert all(r.body["dimensions"] == 256 and r.body["normalize"] is True for r in titan_text)
    # open_components probes the dimensions of the (cache-wrapped) text model once: not an ingest call.
    indexed = [r for r in titan_text if r.body["inputText"] != "dimension probe"]
    assert len(titan_text) - len(indexed) <= 1
    # The text space indexes a caption after its document's label (chains._enrich.indexed_text).
    embedded_captions = [r for r in indexed if r.body["inputText"].split("\n\n", 1)[-1].startswith("Octave chart, ")]
    assert len(embedded_captions) == len(PLOTS)  # captions are searchable text too

    # Titan Multimodal: one request per image, the image with its caption (and context) as inputText.
    titan_mm = _by(emu, "InvokeModel", settings.image_embedding_model)
    assert len(titan_mm) == len(PLOTS)
    assert {base64.b64decode(r.body["inputImage"]) for r in titan_mm} == plots
    for r in titan_mm:
        assert r.body["embeddingConfig"] == {"outputEmbeddingLength": 384}
        assert r.body["inputText"].startswith("Octave chart, ") and "Figure 15." in r.body["inputText"]

    calls = report.model_calls["by_role"]
    assert calls == {
        "captions": {"new": len(PLOTS) + HTML_TABLES + PDF_TABLES, "cached": 0},
        "image embeddings": {"new": len(PLOTS), "cached": 0},
        "text embeddings": {"new": len(indexed), "cached": 0},
    }
    assert report.model_calls["new"] == len(converse) + len(titan_mm) + len(indexed)
    from mmrag.providers.bedrock.prices import estimate_ingest_cost

    ids = {"captions": f"us.{settings.fast_model}", "text embeddings": settings.text_embedding_model,
           "image embeddings": settings.image_embedding_model}
    expected = estimate_ingest_cost(ids, {role: n["new"] for role, n in calls.items()})
    assert report.estimated_cost_usd == pytest.approx(expected) and report.estimated_cost_usd > 0

    providers, collection = open_components(settings)
    assert collection.image.count() == len(PLOTS)
    assert collection.text.count() == sum(report.elements.values())

    before = len(emu.requests)
    again = ingest(sources, settings)
    assert len(emu.requests) == before  # not even the dimension probe: everything comes from the cache
    assert again.ok and [s.status for s in again.sources] == ["unchanged", "unchanged"]
    assert [s.elements for s in again.sources] == [html.elements, pdf.elements]
    assert again.model_calls == {"new": 0, "cached": 0, "by_role": {}}
    assert again.estimated_cost_usd == 0


def test_forced_reingest_is_answered_by_the_cache(emu: BedrockEmulator, settings: Settings, data_dir: Path) -> None:
    first = ingest([data_dir / HTML], settings)
    assert first.ok
    before = len(emu.requests)
    forced = ingest([data_dir / HTML], settings, force=True)
    assert len(emu.requests) == before
    assert forced.sources[0].status == "updated"
    by_role = forced.model_calls["by_role"]
    assert {role: n["new"] for role, n in by_role.items()} == {"captions": 0, "image embeddings": 0,
                                                                "text embeddings": 0}
    assert by_role["captions"]["cached"] == len(PLOTS) + HTML_TABLES
    assert by_role["image embeddings"]["cached"] == len(PLOTS)
    assert forced.estimated_cost_usd == 0


def test_throttling_mid_ingest_is_retried(emu: BedrockEmulator, settings: Settings, data_dir: Path) -> None:
    emu.add_fault(Fault("throttle", times=3, operation="Converse"))
    emu.add_fault(Fault("throttle", times=2, model=settings.image_embedding_model))
    emu.add_fault(Fault("model_not_ready", times=2, model=settings.text_embedding_model))
    report = ingest([data_dir / HTML], settings)
    assert report.ok and report.caption_failures == 0, report.to_dict()
    assert report.sources[0].elements["image"] == len(PLOTS)

    throttled = [r for r in emu.requests if r.status == 429]
    assert len(throttled) == 3 + 2 + 2
    assert {r.error_code for r in throttled} == {"ThrottlingException", "ModelNotReadyException"}
    ok_converse = [r for r in _by(emu, "Converse", "us." + settings.fast_model) if r.status == 200]
    assert len(ok_converse) == len(PLOTS) + HTML_TABLES  # every element captioned once, after the retries
    assert len([r for r in _by(emu, "InvokeModel", settings.image_embedding_model) if r.status == 200]) == len(PLOTS)
    # The report counts model calls, not attempts.
    assert report.model_calls["by_role"]["captions"]["new"] == len(PLOTS) + HTML_TABLES
    _, collection = open_components(settings)
    assert collection.image.count() == len(PLOTS)


def test_a_caption_that_keeps_failing_does_not_lose_the_source(
    emu: BedrockEmulator, settings: Settings, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def reply(request: RecordedRequest) -> Any:
        if _has_image(request) and "Figure 15.4" in request.last_user_text:
            # A tool the request does not offer: the emulator answers 400 ValidationException, a fatal error.
            return {"tool": "NotOffered", "input": {}}
        return caption_reply(request)

    emu.script_chat(reply)
    with caplog.at_level(logging.WARNING, logger="mmrag.providers.bedrock.claude"):
        report = ingest([data_dir / HTML], settings)
    assert report.ok and report.caption_failures == 1, report.to_dict()
    assert report.sources[0].status == "new" and report.sources[0].elements["image"] == len(PLOTS)
    rejected = [r for r in emu.requests if r.status == 400]
    assert len(rejected) == 1 and rejected[0].error_code == "ValidationException"  # fatal: not retried
    assert any("caption failed" in r.getMessage() and "ValidationException" in r.getMessage()
               for r in caplog.records)

    # The uncaptioned image is still embedded (with its context text) and searchable in both spaces.
    polar = [r for r in _by(emu, "InvokeModel", settings.image_embedding_model)
             if "Figure 15.4" in r.body.get("inputText", "")]
    assert len(polar) == 1 and not polar[0].body["inputText"].startswith("Octave chart")
    providers, collection = open_components(settings)
    assert collection.image.count() == len(PLOTS)
    hits = collection.text.keyword_search("polar plot Figure 15.4", k=10)
    found = [h.element for h in hits if h.element.kind == "image"]
    assert found and found[0].text.startswith("polar") and "caption" not in found[0].metadata

    # The next run retries that caption alone (the others are committed), and then the source is settled.
    emu.script_chat(caption_reply)
    before = len(emu.requests)
    again = ingest([data_dir / HTML], settings)
    assert again.ok and again.caption_failures == 0 and again.sources[0].status == "updated"
    retried = [r for r in emu.requests[before:] if r.operation == "Converse"]
    assert len(retried) == 1 and "Figure 15.4" in retried[0].last_user_text
    assert collection.image.count() == len(PLOTS)
    settled = ingest([data_dir / HTML], settings)
    assert settled.sources[0].status == "unchanged" and settled.model_calls["new"] == 0
