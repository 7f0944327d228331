"""Nova Multimodal Embeddings selected by settings: ingest, `mmrag search --image` and `mmrag ask` end to end on
the bedrock profile against the strict emulator (real boto3, real langchain-aws)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.chains.ingestion import ingest
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"
HTML = "html/octave/Two_002dDimensional-Plots.html"


def test_nova_image_space_end_to_end(emu: BedrockEmulator, data_dir: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
           "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(tmp_path / ".mmrag"),
           "MMRAG_IMAGE_EMBEDDING_MODEL": NOVA, "MMRAG_IMAGE_EMBEDDING_DIMS": "384"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    report = ingest([data_dir / HTML], Settings())
    assert report.ok and report.caption_failures == 0, report.to_dict()
    nova = [r for r in emu.requests if r.model_id == NOVA]
    assert nova and all(r.status == 200 for r in nova)
    indexed = [r.body["singleEmbeddingParams"] for r in nova]
    assert {p["embeddingPurpose"] for p in indexed} == {"GENERIC_INDEX"}
    assert all(p["embeddingDimension"] == 384 and p["image"]["source"]["bytes"] for p in indexed)
    image = next((data_dir / "html/octave").rglob("*.png"))

    emu.reset()
    result = CliRunner().invoke(cli, ["search", "--image", str(image), "--json", "-k", "3"], env=env)
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert hits and all(h["kind"] in ("image", "page") for h in hits)
    assert [r.body["singleEmbeddingParams"]["embeddingDimension"] for r in emu.requests if r.model_id == NOVA] == [384]

    emu.reset()
    emu.script_chat(["The plot shows a sine wave [1]."], model="*sonnet*")
    result = CliRunner().invoke(cli, ["ask", "What does the polar plot show?", "--json", "-k", "4"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mode"] == "generated" and out["answer"] == "The plot shows a sine wave [1]."
    queries = [r.body["singleEmbeddingParams"] for r in emu.requests if r.model_id == NOVA]
    assert queries and all(q["embeddingPurpose"] == "IMAGE_RETRIEVAL" and "text" in q for q in queries)
