"""Nova Multimodal Embeddings reads page renders as documents: `detailLevel: DOCUMENT_IMAGE` for pages (PDF page
renders, scanned pages), the default `STANDARD_IMAGE` for other images. Request bodies field by field against the
documented schema (https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html), through real boto3 and
the strict emulator."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from mmrag.chains.ingestion import ingest
from mmrag.config import Settings
from mmrag.providers.base import KindAwareImageEmbedder, embed_images_of_kinds
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.bedrock.nova import NOVA_MME_MODEL, NovaMultimodalEmbedder
from mmrag.providers.bedrock.titan import TitanMultimodalEmbedder
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration


def _settings(emu: BedrockEmulator, tmp_path: Path, **kw: Any) -> Settings:
    options: dict[str, Any] = {"image_embedding_model": NOVA_MME_MODEL, "image_embedding_dims": 384,
                               "text_embedding_dims": 256, **kw}
    return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", home=tmp_path / "home",
                    **options)


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (90, 70), color).save(buf, format="PNG")
    return buf.getvalue()


def _body(data: bytes, detail: str) -> dict[str, Any]:
    return {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": 384,
                                      "image": {"format": "png", "detailLevel": detail,
                                                "source": {"bytes": base64.b64encode(data).decode()}}}}


def test_pages_are_embedded_as_document_images_other_images_as_standard(emu: BedrockEmulator,
                                                                         tmp_path: Path) -> None:
    settings = _settings(emu, tmp_path)
    nova = NovaMultimodalEmbedder(settings, client=make_bedrock_client(settings))
    assert isinstance(nova, KindAwareImageEmbedder)
    photo, page = _png((200, 30, 30)), _png((250, 250, 250))
    vectors = embed_images_of_kinds(nova, [photo, page], ["image", "page"], ["a red photo", None])
    assert len(vectors) == 2 and all(len(v) == 384 for v in vectors)
    bodies = sorted((r.body for r in emu.requests if r.model_id == NOVA_MME_MODEL),
                    key=lambda b: b["singleEmbeddingParams"]["image"]["detailLevel"])
    assert bodies == [_body(page, "DOCUMENT_IMAGE"), _body(photo, "STANDARD_IMAGE")]
    assert all(r.status == 200 for r in emu.requests)
    # The plain protocol method keeps the embedder's own level for every image.
    nova.embed_images([page])
    assert emu.requests[-1].body == _body(page, "STANDARD_IMAGE")
    with pytest.raises(ValueError, match="2 images but 1 kinds"):
        nova.embed_images_by_kind([photo, page], ["image"])


def test_the_emulator_rejects_a_detail_level_outside_the_schema(emu: BedrockEmulator, tmp_path: Path) -> None:
    client = make_bedrock_client(_settings(emu, tmp_path))
    body = _body(_png((1, 2, 3)), "HIGH_DETAIL")
    with pytest.raises(ClientError) as caught:
        client.invoke_model(modelId=NOVA_MME_MODEL, body=json.dumps(body), contentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "detailLevel" in caught.value.response["Error"]["Message"]


def test_embedders_without_kinds_still_work_through_the_same_call(emu: BedrockEmulator, tmp_path: Path) -> None:
    titan_mm = "amazon.titan-embed-image-v1"
    settings = _settings(emu, tmp_path, image_embedding_model=titan_mm)
    titan = TitanMultimodalEmbedder(settings, client=make_bedrock_client(settings), model_id=titan_mm)
    assert not isinstance(titan, KindAwareImageEmbedder)
    vectors = embed_images_of_kinds(titan, [_png((9, 9, 9))], ["page"], ["a page"])
    assert len(vectors) == 1 and emu.requests[-1].body["inputText"] == "a page"


def test_ingest_sends_the_scanned_page_as_a_document_image(emu: BedrockEmulator, tmp_path: Path,
                                                           data_dir: Path) -> None:
    settings = _settings(emu, tmp_path)  # with the model cache (the default): it forwards the kinds
    emu.script_chat(lambda request: "A scanned page of printed text.")
    report = ingest([data_dir / "pdf/ocrmypdf-c03-29.pdf", data_dir / "images/img_029.png"], settings)
    assert report.ok, report.to_dict()
    assert report.elements.get("page") == 1 and report.elements.get("image") == 1
    levels = sorted(r.body["singleEmbeddingParams"]["image"]["detailLevel"]
                    for r in emu.requests if r.model_id == NOVA_MME_MODEL and r.status == 200)
    assert levels == ["DOCUMENT_IMAGE", "STANDARD_IMAGE"]
