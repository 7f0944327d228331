"""Amazon Titan embeddings on Bedrock: Text Embeddings V2 (text space) and Multimodal Embeddings G1 (image space).

Neither model has a batch InvokeModel API, so every text or image is one request; requests run concurrently
through the shared :class:`~mmrag.providers._concurrency.AdaptiveLimiter` and mmrag's retry layer.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from mmrag.config import Settings
from mmrag.errors import ProviderError
from mmrag.providers._concurrency import (
    AdaptiveLimiter,
    CallStats,
    RetryPolicy,
    abounded_map,
    bounded_map,
    call_with_retry,
)
from mmrag.providers.bedrock._image_space import InvokeModelEmbedder, invoke_json
from mmrag.providers.bedrock.catalog import approx_tokens, facts_for, truncate_to_tokens
from mmrag.providers.bedrock.images import fit_image

logger = logging.getLogger(__name__)

__all__ = ["TitanMultimodalEmbedder", "TitanTextEmbeddings", "approx_tokens", "truncate_to_tokens"]

DEFAULT_TEXT_MODEL = "amazon.titan-embed-text-v2:0"
DEFAULT_IMAGE_MODEL = "amazon.titan-embed-image-v1"
TITAN_MM_MAX_SIDE = 2048
TITAN_MM_MAX_BYTES = 25_000_000  # "25 MB"; decimal, the stricter reading


def _invoke(client: Any, model_id: str, body: dict[str, Any]) -> list[float]:
    return _vector(invoke_json(client, model_id, body))


def _vector(payload: dict[str, Any]) -> list[float]:
    return [float(v) for v in payload["embedding"]]


class TitanTextEmbeddings(Embeddings):
    """Titan Text Embeddings V2 as a LangChain ``Embeddings``.

    Body ``{inputText, dimensions, normalize: true}``, one request per text (no batch API), run concurrently.
    Empty or whitespace-only texts get a zero vector without a request (the model rejects empty input).

    Args:
        settings: where unset arguments come from (model, dims, ``max_concurrency``, ``max_retries``).
        client: a ``bedrock-runtime`` client.
        model_id: default ``Settings.text_embedding_model``.
        dimensions: 256, 512 or 1024 (default ``Settings.text_embedding_dims``).
        normalize: ask the model for unit vectors.
        limiter: concurrency gate, possibly shared.
        policy: retry/backoff settings.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Any,
        model_id: str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        limiter: AdaptiveLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.model_id = model_id or (settings.text_embedding_model if settings else DEFAULT_TEXT_MODEL)
        self.dimensions = dimensions or (settings.text_embedding_dims if settings else 1024)
        self.normalize = normalize
        self.limiter = limiter or AdaptiveLimiter(settings.max_concurrency if settings else 16)
        self.policy = policy or RetryPolicy(max_retries=settings.max_retries if settings else 8)
        self.stats = CallStats()

    @property
    def cache_key(self) -> str:
        """What changes the output: model, dimensions, normalisation."""
        return f"{self.model_id}|dims={self.dimensions}|normalize={self.normalize}"

    def fit(self, text: str) -> str:
        """``text`` cut to the model's input limits: 8,192 tokens (counted conservatively) and 50,000 characters."""
        facts = facts_for(self.model_id)
        max_tokens = (facts.max_input_tokens if facts else None) or 8_192
        max_chars = (facts.max_input_chars if facts else None) or 50_000
        return truncate_to_tokens(text[:max_chars], max_tokens)

    def _embed_one(self, text: str) -> list[float]:
        if not text.strip():
            return [0.0] * self.dimensions
        text = self.fit(text)
        for attempt in range(3):
            body = {"inputText": text, "dimensions": self.dimensions, "normalize": self.normalize}
            try:
                return call_with_retry(
                    lambda body=body: _invoke(self.client, self.model_id, body),  # type: ignore[misc]
                    limiter=self.limiter,
                    policy=self.policy,
                    model_id=self.model_id,
                    stats=self.stats,
                )
            except ProviderError as exc:
                # A tokenizer that counts more than ours: retry with half the text rather than fail the batch.
                too_long = "input tokens" in str(exc) or "maxLength" in str(exc) or "too long" in str(exc).lower()
                if exc.is_retryable or not too_long or attempt == 2:
                    raise
                logger.warning("%s rejected a %d-token text (%s); retrying with half of it", self.model_id,
                               approx_tokens(text), exc)
                text = truncate_to_tokens(text, max(1, approx_tokens(text) // 2))
        raise AssertionError("unreachable")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, requested concurrently."""
        return bounded_map(self._embed_one, texts, limiter=self.limiter)

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query (Titan V2 embeds queries and documents alike)."""
        return self._embed_one(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`."""
        return await abounded_map(self._embed_one, texts, limiter=self.limiter)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`."""
        return (await abounded_map(self._embed_one, [text], limiter=self.limiter))[0]


class TitanMultimodalEmbedder(InvokeModelEmbedder):
    """Titan Multimodal Embeddings G1: images (with their caption) and text queries in one image space.

    For an image with a caption Titan returns ONE vector for both; AWS describes it as combining the image and
    text embeddings (the emulator averages the two unit vectors and re-normalises). Text-only requests place
    queries in the same space, so text→image search works (``supports_text_queries``).

    Captions are cut to ``caption_max_tokens`` estimated tokens (:func:`truncate_to_tokens`, conservative)
    before sending, rather than failing on the model's 256-token limit. Images that are not PNG/JPEG are
    converted, and images over 2048×2048 px or 25 MB are downscaled / re-encoded.

    Args:
        settings: where unset arguments come from (model, dims, caption budget, concurrency, retries).
        client: a ``bedrock-runtime`` client.
        model_id: default ``Settings.image_embedding_model``.
        dimensions: 256, 384 or 1024 (default ``Settings.image_embedding_dims``).
        caption_max_tokens: default ``Settings.image_caption_max_tokens``.
        limiter: concurrency gate, possibly shared.
        policy: retry/backoff settings.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Any,
        model_id: str | None = None,
        dimensions: int | None = None,
        caption_max_tokens: int | None = None,
        limiter: AdaptiveLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(settings, client=client, dimensions=dimensions, limiter=limiter, policy=policy,
                         model_id=model_id or (settings.image_embedding_model if settings else DEFAULT_IMAGE_MODEL))
        self.caption_max_tokens = caption_max_tokens or (settings.image_caption_max_tokens if settings else 128)

    @property
    def cache_key(self) -> str:
        """What changes the output: model, dimensions, caption budget."""
        return f"{self.model_id}|dims={self.dimensions}|caption_tokens={self.caption_max_tokens}"

    def request_body(self, image: bytes | None, text: str | None) -> dict[str, Any]:
        """The InvokeModel body for an image and/or text (text cut, image fitted to the limits)."""
        body: dict[str, Any] = {"embeddingConfig": {"outputEmbeddingLength": self.dimensions}}
        if image is not None:
            fitted, _ = fit_image(image, formats=("png", "jpeg"), max_side=TITAN_MM_MAX_SIDE,
                                  max_bytes=TITAN_MM_MAX_BYTES)
            body["inputImage"] = base64.b64encode(fitted).decode("ascii")
        if text and text.strip():
            body["inputText"] = truncate_to_tokens(text.strip(), self.caption_max_tokens)
        return body

    def _call(self, body: dict[str, Any]) -> list[float]:
        return self._invoke(body, _vector)

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """One vector per image, jointly with ``captions[i]`` when given.

        Raises:
            ValueError: ``captions`` has a different length, or an image cannot be read.
            ProviderError: a request failed (after retries for retryable errors).
        """
        pairs = list(zip(images, self._captions(images, captions), strict=True))
        return bounded_map(lambda pair: self._call(self.request_body(*pair)), pairs, limiter=self.limiter)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Text queries into the image space; empty texts get a zero vector without a request."""

        def one(text: str) -> list[float]:
            if not text.strip():
                return [0.0] * self.dimensions
            return self._call(self.request_body(None, text))

        return bounded_map(one, list(texts), limiter=self.limiter)

    async def aembed_images(
        self, images: Sequence[bytes], captions: Sequence[str | None] | None = None
    ) -> list[list[float]]:
        """Async :meth:`embed_images`."""
        pairs = list(zip(images, self._captions(images, captions), strict=True))
        return await abounded_map(lambda pair: self._call(self.request_body(*pair)), pairs, limiter=self.limiter)
