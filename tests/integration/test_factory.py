"""build_providers end to end: the bedrock profile against the emulator, the local profile with the real models."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.parsers import parse_source
from mmrag.providers import CAPTION_KEY, SUMMARY_KEY
from mmrag.providers.factory import build_providers
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration


def _png(seed: int) -> bytes:
    img = Image.new("RGB", (96, 96), ((seed * 53) % 256, (seed * 97) % 256, 120))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockEmulator]:
    with BedrockEmulator() as emu:
        for key, value in emu.environ().items():
            monkeypatch.setenv(key, value)
        yield emu


def test_bedrock_profile_shares_one_limit_and_caches(emulator: BedrockEmulator, tmp_path: Path) -> None:
    settings = Settings(profile="bedrock", home=tmp_path, bedrock_endpoint_url=emulator.url, aws_region="us-east-1",
                        max_concurrency=3)
    emulator.set_latency(0.05)
    providers = build_providers(settings)
    images = [Element(kind="image", source="doc.pdf", page=1, data=_png(i), mime_type="image/png",
                      text=f"Figure {i}: a chart") for i in range(12)]

    captioned = providers.captioner.caption(images)
    assert all(CAPTION_KEY in e.metadata for e in captioned)
    assert [e.id for e in captioned] == [e.id for e in images]

    # Captioning and both embedders run at once, through the one limiter of the profile.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        text = pool.submit(providers.text_embeddings.embed_documents, [f"text {i}" for i in range(12)])
        imgs = pool.submit(providers.image_embedder.embed_images, [e.data or b"" for e in images],
                           [e.metadata[CAPTION_KEY] for e in captioned])
        pool.submit(providers.captioner.caption, [Element(kind="image", source="x", data=_png(100 + i),
                                                          mime_type="image/png") for i in range(12)]).result()
        assert len(text.result()) == 12 and len(imgs.result()) == 12
    assert 2 <= emulator.max_in_flight <= 3

    ops = {r.operation for r in emulator.requests}
    assert ops == {"Converse", "InvokeModel"}
    assert all(r.body["inferenceConfig"]["maxTokens"] == settings.fast_max_tokens
               for r in emulator.requests if r.operation == "Converse")

    before = len(emulator.requests)
    again = build_providers(settings)  # a new process would see the same sqlite cache
    assert [e.metadata[CAPTION_KEY] for e in again.captioner.caption(images)] == \
        [e.metadata[CAPTION_KEY] for e in captioned]
    again.text_embeddings.embed_documents([f"text {i}" for i in range(12)])
    assert len(emulator.requests) == before  # nothing paid twice

    assert providers.fast_chat is not None and providers.strong_chat is not None
    emulator.script_chat(["decomposed"])
    assert providers.fast_chat.invoke("split this question").content == "decomposed"
    assert emulator.requests[-1].model_id == "us." + settings.fast_model


def test_local_profile_end_to_end_on_a_scanned_pdf(data_dir: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    providers = build_providers(settings)
    assert providers.fast_chat is None and providers.strong_chat is None
    elements = parse_source(str(data_dir / "pdf" / "ocrmypdf-c03-29.pdf")).elements
    elements += parse_source(str(data_dir / "pdf" / "tabula-data.pdf")).elements
    described = providers.captioner.caption(elements)
    page = next(e for e in described if e.kind == "page")
    assert "Miss Watson" in page.metadata["ocr_text"]
    table = next(e for e in described if e.kind == "table")
    assert table.metadata[SUMMARY_KEY].startswith("Table (32 rows × 12 columns)")

    query = providers.text_embeddings.embed_query("Which car has the best fuel economy in miles per gallon?")
    docs = providers.text_embeddings.embed_documents(["mpg of cars: Mazda RX4 21.0, Datsun 710 22.8",
                                                      "Huckleberry Finn and the widow Douglas"])
    dot = [sum(a * b for a, b in zip(query, d, strict=True)) for d in docs]
    assert dot[0] > dot[1]
    assert len(providers.image_embedder.embed_images([_png(1)])[0]) == providers.image_embedder.dimensions
