"""Amazon Nova Multimodal Embeddings on Bedrock as mmrag's image space (text, images and page renders, one space).

Request body ([nova-mme] in :mod:`mmrag.providers.bedrock.catalog`), synchronous InvokeModel, one input each::

    {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
     "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": 1024,
                               "image": {"format": "png", "detailLevel": "STANDARD_IMAGE",
                                         "source": {"bytes": "<base64>"}}}}

The vector is ``embeddings[0].embedding`` of the response. Purposes are asymmetric, as the model card asks:
``GENERIC_INDEX`` when indexing, ``*_RETRIEVAL`` when querying (text queries for images: ``IMAGE_RETRIEVAL``;
images as queries: :meth:`NovaMultimodalEmbedder.embed_image_queries`, ``GENERIC_RETRIEVAL``).

Unlike Titan Multimodal G1, one request embeds ONE modality: an image is embedded without its caption (the
caption is indexed in the text space anyway).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Literal

from mmrag.config import Settings
from mmrag.providers._concurrency import AdaptiveLimiter, CallStats, RetryPolicy, bounded_map, call_with_retry
from mmrag.providers.bedrock.catalog import truncate_to_tokens
from mmrag.providers.bedrock.images import fit_image

__all__ = ["NOVA_MME_MODEL", "NovaMultimodalEmbedder"]

NOVA_MME_MODEL = "amazon.nova-2-multimodal-embeddings-v1:0"
_MAX_TEXT_TOKENS = 8_192  # [nova-mme] "maximum context length is 8K tokens"
_IMAGE_MAX_SIDE = 4096  # keep uploads modest; the service downsizes larger images anyway
_IMAGE_MAX_BYTES = 20_000_000
Purpose = Literal["GENERIC_INDEX", "GENERIC_RETRIEVAL", "TEXT_RETRIEVAL", "IMAGE_RETRIEVAL", "DOCUMENT_RETRIEVAL"]


class NovaMultimodalEmbedder:
    """Nova Multimodal Embeddings as an :class:`~mmrag.providers.base.ImageEmbedder` (text queries supported).

    Args:
        settings: where unset arguments come from (``image_embedding_dims``, concurrency, retries).
        client: a ``bedrock-runtime`` client in a Region that offers the model.
        model_id: default :data:`NOVA_MME_MODEL`.
        dimensions: 3072, 1024, 384 or 256.
        detail_level: ``STANDARD_IMAGE`` (photos, figures) or ``DOCUMENT_IMAGE`` (page renders, text-heavy images).
        limiter: concurrency gate, possibly shared.
        policy: retry/backoff settings.
    """

    supports_text_queries: bool = True

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Any,
        model_id: str | None = None,
        dimensions: int | None = None,
        detail_level: Literal["STANDARD_IMAGE", "DOCUMENT_IMAGE"] = "STANDARD_IMAGE",
        limiter: AdaptiveLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.model_id = model_id or NOVA_MME_MODEL
        self.dimensions = dimensions or (settings.image_embedding_dims if settings else 1024)
        self.detail_level = detail_level
        self.limiter = limiter or AdaptiveLimiter(settings.max_concurrency if settings else 16)
        self.policy = policy or RetryPolicy(max_retries=settings.max_retries if settings else 8)
        self.stats = CallStats()

    @property
    def cache_key(self) -> str:
        """What changes the output: model, dimensions, image detail level."""
        return f"{self.model_id}|dims={self.dimensions}|detail={self.detail_level}"

    def _body(self, purpose: Purpose, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "schemaVersion": "nova-multimodal-embed-v1",
            "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": {"embeddingPurpose": purpose, "embeddingDimension": self.dimensions, **item},
        }

    def image_body(self, image: bytes, purpose: Purpose = "GENERIC_INDEX") -> dict[str, Any]:
        """The InvokeModel body for one image (fitted to PNG/JPEG and a sane size)."""
        fitted, fmt = fit_image(image, formats=("png", "jpeg", "gif", "webp"), max_side=_IMAGE_MAX_SIDE,
                                max_bytes=_IMAGE_MAX_BYTES)
        source = {"bytes": base64.b64encode(fitted).decode("ascii")}
        return self._body(purpose, {"image": {"format": fmt, "detailLevel": self.detail_level, "source": source}})

    def text_body(self, text: str, purpose: Purpose = "IMAGE_RETRIEVAL") -> dict[str, Any]:
        """The InvokeModel body for one text (cut to 8K tokens; ``truncationMode`` END as a safety net)."""
        value = truncate_to_tokens(text.strip(), _MAX_TEXT_TOKENS)
        return self._body(purpose, {"text": {"truncationMode": "END", "value": value}})

    def _invoke(self, body: dict[str, Any]) -> list[float]:
        def call() -> list[float]:
            response = self.client.invoke_model(modelId=self.model_id, body=json.dumps(body),
                                                contentType="application/json", accept="application/json")
            payload = json.loads(response["body"].read())
            return [float(v) for v in payload["embeddings"][0]["embedding"]]

        return call_with_retry(call, limiter=self.limiter, policy=self.policy, model_id=self.model_id,
                               stats=self.stats)

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """Index vectors (``GENERIC_INDEX``), one per image; captions are not part of a Nova image vector.

        Raises:
            ValueError: ``captions`` has a different length, or an image cannot be read.
            ProviderError: a request failed (after retries for retryable errors).
        """
        if captions is not None and len(captions) != len(images):
            raise ValueError(f"got {len(images)} images but {len(captions)} captions")
        return bounded_map(lambda image: self._invoke(self.image_body(image)), list(images), limiter=self.limiter)

    def embed_image_queries(self, images: Sequence[bytes]) -> list[list[float]]:
        """Query vectors for images used as queries (image→image search, ``GENERIC_RETRIEVAL``)."""
        return bounded_map(lambda image: self._invoke(self.image_body(image, "GENERIC_RETRIEVAL")), list(images),
                           limiter=self.limiter)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Text queries for images (``IMAGE_RETRIEVAL``); empty texts get a zero vector without a request."""

        def one(text: str) -> list[float]:
            if not text.strip():
                return [0.0] * self.dimensions
            return self._invoke(self.text_body(text))

        return bounded_map(one, list(texts), limiter=self.limiter)
