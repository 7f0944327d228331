"""Cohere Embed v4 (`cohere.embed-v4:0`) as the image space, selected by MMRAG_IMAGE_MODEL: request bodies field by
field against the documented schema (Bedrock user guide, "Cohere Embed v4"), the profile chosen per Region, the
strict emulator's checks, and ingest + `mmrag search --image` end to end, through real boto3."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from PIL import Image

from mmrag.chains.ingestion import ingest
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.errors import ConfigError
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.bedrock.cohere import CohereEmbedV4Embedder
from mmrag.providers.factory import build_providers
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

COHERE = "cohere.embed-v4:0"
HTML = "html/octave/Two_002dDimensional-Plots.html"


def _settings(emu: BedrockEmulator, region: str = "us-east-1", **kw: Any) -> Settings:
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region=region, cache=False,
                    image_embedding_model=COHERE, **kw)


def _png(color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="PNG")
    return buf.getvalue()


def _uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_bodies_match_the_documented_schema_and_purposes_differ(emu: BedrockEmulator) -> None:
    embedder = build_providers(_settings(emu, image_embedding_dims=256)).image_embedder
    assert isinstance(embedder, CohereEmbedV4Embedder) and embedder.model_id == "us." + COHERE
    [image_vector] = embedder.embed_images([_png()], ["A blue chart"])
    assert emu.requests[-1].body == {
        "input_type": "search_document", "embedding_types": ["float"], "output_dimension": 256,
        "inputs": [{"content": [{"type": "text", "text": "A blue chart"},
                                {"type": "image_url", "image_url": _uri(_png())}]}],
    }
    vectors = embedder.embed_texts(["blue chart", "", "red box"])
    assert emu.requests[-1].body == {"input_type": "search_query", "embedding_types": ["float"],
                                     "output_dimension": 256, "texts": ["blue chart", "red box"], "truncate": "RIGHT"}
    assert vectors[1] == [0.0] * 256 and len(vectors[0]) == len(vectors[2]) == len(image_vector) == 256
    [query] = embedder.embed_image_queries([_png()])
    assert emu.requests[-1].body == {"input_type": "search_query", "embedding_types": ["float"],
                                     "output_dimension": 256, "images": [_uri(_png())]}
    assert len(query) == 256 and all(r.status == 200 and r.model_id == "us." + COHERE for r in emu.requests)
    embedder.embed_images([_png()], [None])  # no caption: the image alone
    assert emu.requests[-1].body["inputs"] == [{"content": [{"type": "image_url", "image_url": _uri(_png())}]}]


def test_text_queries_go_96_per_request(emu: BedrockEmulator) -> None:
    embedder = build_providers(_settings(emu, image_embedding_dims=256)).image_embedder
    vectors = embedder.embed_texts([f"query number {i}" for i in range(100)])
    assert len(vectors) == 100 and sorted(len(r.body["texts"]) for r in emu.requests) == [4, 96]


@pytest.mark.parametrize(("region", "expected"), [("us-east-1", "us."), ("eu-west-1", "eu."),
                                                  ("ap-northeast-1", "global.")])
def test_each_region_calls_a_profile_it_may_call(emu: BedrockEmulator, region: str, expected: str) -> None:
    # Tokyo has no geo profile of Cohere Embed v4: only an explicit global scope reaches it (issue 24, item 6).
    scope = "global" if expected == "global." else "geo"
    if scope == "global":
        with pytest.raises(ConfigError, match="MMRAG_BEDROCK_INFERENCE_SCOPE=global"):
            build_providers(_settings(emu, region))
    embedder = build_providers(_settings(emu, region, bedrock_inference_scope=scope)).image_embedder
    assert isinstance(embedder, CohereEmbedV4Embedder) and embedder.model_id == expected + COHERE
    assert len(embedder.embed_texts(["a query"])[0]) == 1024
    assert emu.requests[-1].status == 200


def test_the_emulator_rejects_what_the_schema_does_not_allow(emu: BedrockEmulator) -> None:
    client = make_bedrock_client(_settings(emu))
    base = {"input_type": "search_query", "embedding_types": ["float"]}
    bad = [
        {**base, "texts": ["a"], "images": [_uri(_png())]},  # texts and images in one call
        {**base, "texts": ["a"], "output_dimension": 384},
        {**base, "texts": ["a"] * 97},
        {"texts": ["a"]},  # input_type is required
        {**base, "images": ["iVBORw0KGgo="]},  # not a data URI
        {**base, "texts": ["a"], "truncate": "END"},  # v4 says NONE | LEFT | RIGHT
    ]
    for body in bad:
        with pytest.raises(ClientError) as caught:
            client.invoke_model(modelId="us." + COHERE, body=json.dumps(body), contentType="application/json")
        assert caught.value.response["Error"]["Code"] == "ValidationException", body


def test_dimensions_the_model_does_not_offer_are_a_config_error(emu: BedrockEmulator) -> None:
    with pytest.raises(ConfigError, match="1536, 1024, 512, 256 dimensions, not 384"):
        build_providers(_settings(emu, image_embedding_dims=384))


@pytest.mark.parametrize("dims", [512, 1536])
def test_cohere_only_sizes_are_settings_only_with_cohere(emu: BedrockEmulator, dims: int) -> None:
    embedder = build_providers(_settings(emu, image_embedding_dims=dims)).image_embedder
    assert embedder.dimensions == dims
    with pytest.raises(ValueError, match=f"image_embedding_dims {dims} needs cohere.embed-v4:0"):
        Settings(image_embedding_dims=dims)


def test_ingest_and_search_by_image_end_to_end(emu: BedrockEmulator, data_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
           "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(tmp_path / ".mmrag"), "MMRAG_IMAGE_MODEL": COHERE,
           "MMRAG_IMAGE_EMBEDDING_DIMS": "256"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emu.script_chat(lambda request: "An Octave chart drawn with lines on white axes.")
    report = ingest([data_dir / HTML], Settings())
    assert report.ok and report.caption_failures == 0, report.to_dict()
    indexed = [r.body for r in emu.requests if r.model_id == "us." + COHERE]
    assert len(indexed) == report.elements["image"] and all(r["input_type"] == "search_document" for r in indexed)
    assert all(r["inputs"][0]["content"][0]["text"].startswith("An Octave chart") for r in indexed)

    emu.reset()
    image = next((data_dir / "html/octave").rglob("*.png"))
    result = CliRunner().invoke(cli, ["search", "--image", str(image), "--json", "-k", "2"], env=env)
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(hits) == 2 and all(h["kind"] == "image" and h["lists"] == ["image"] for h in hits)
    [query] = [r.body for r in emu.requests if r.model_id == "us." + COHERE]
    assert query["input_type"] == "search_query" and "images" in query
