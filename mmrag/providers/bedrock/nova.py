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

Page renders (PDF pages, scanned pages) are read as documents: ingest passes each image's element kind
(:meth:`NovaMultimodalEmbedder.embed_images_by_kind`) and a ``page`` gets ``detailLevel: DOCUMENT_IMAGE``, any other
image the embedder's ``detail_level`` (``STANDARD_IMAGE`` by default). The field and its two values are in the
documented request schema, https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html
(``singleEmbeddingParams.image.detailLevel: "STANDARD_IMAGE" | "DOCUMENT_IMAGE"``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

from mmrag.config import Settings
from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy, bounded_map
from mmrag.providers.bedrock._image_space import InvokeModelEmbedder
from mmrag.providers.bedrock.catalog import truncate_to_tokens
from mmrag.providers.bedrock.images import fit_image

__all__ = ["DOCUMENT_KINDS", "NOVA_MME_MODEL", "NovaMultimodalEmbedder"]

NOVA_MME_MODEL = "amazon.nova-2-multimodal-embeddings-v1:0"
_MAX_TEXT_TOKENS = 8_192  # [nova-mme] "maximum context length is 8K tokens"
_IMAGE_MAX_SIDE = 4096  # keep uploads modest; the service downsizes larger images anyway
_IMAGE_MAX_BYTES = 20_000_000
Purpose = Literal["GENERIC_INDEX", "GENERIC_RETRIEVAL", "TEXT_RETRIEVAL", "IMAGE_RETRIEVAL", "DOCUMENT_RETRIEVAL"]
Detail = Literal["STANDARD_IMAGE", "DOCUMENT_IMAGE"]
DOCUMENT_KINDS = frozenset({"page"})
"""Element kinds embedded with ``detailLevel: DOCUMENT_IMAGE``: page renders (text PDFs and scanned pages)."""


class NovaMultimodalEmbedder(InvokeModelEmbedder):
    """Nova Multimodal Embeddings as an :class:`~mmrag.providers.base.ImageEmbedder` (text queries supported).

    Args:
        settings: where unset arguments come from (``image_embedding_dims``, concurrency, retries).
        client: a ``bedrock-runtime`` client in a Region that offers the model.
        model_id: default :data:`NOVA_MME_MODEL`.
        dimensions: 3072, 1024, 384 or 256.
        detail_level: for images that are not page renders: ``STANDARD_IMAGE`` (photos, figures) or
            ``DOCUMENT_IMAGE`` (text-heavy images). Page renders always get ``DOCUMENT_IMAGE``.
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
        detail_level: Detail = "STANDARD_IMAGE",
        limiter: AdaptiveLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(settings, client=client, model_id=model_id or NOVA_MME_MODEL, dimensions=dimensions,
                         limiter=limiter, policy=policy)
        self.detail_level = detail_level

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

    def image_body(self, image: bytes, purpose: Purpose = "GENERIC_INDEX",
                   detail: Detail | None = None) -> dict[str, Any]:
        """The InvokeModel body for one image (fitted to PNG/JPEG and a sane size); ``detail`` overrides the
        embedder's ``detail_level``."""
        fitted, fmt = fit_image(image, formats=("png", "jpeg", "gif", "webp"), max_side=_IMAGE_MAX_SIDE,
                                max_bytes=_IMAGE_MAX_BYTES)
        source = {"bytes": base64.b64encode(fitted).decode("ascii")}
        level = detail or self.detail_level
        return self._body(purpose, {"image": {"format": fmt, "detailLevel": level, "source": source}})

    def detail_for(self, kind: str) -> Detail:
        """The ``detailLevel`` for an element kind: ``DOCUMENT_IMAGE`` for page renders, else ``detail_level``."""
        return "DOCUMENT_IMAGE" if kind in DOCUMENT_KINDS else self.detail_level

    def text_body(self, text: str, purpose: Purpose = "IMAGE_RETRIEVAL") -> dict[str, Any]:
        """The InvokeModel body for one text (cut to 8K tokens; ``truncationMode`` END as a safety net)."""
        value = truncate_to_tokens(text.strip(), _MAX_TEXT_TOKENS)
        return self._body(purpose, {"text": {"truncationMode": "END", "value": value}})

    def _vector(self, body: dict[str, Any]) -> list[float]:
        return self._invoke(body, _first_vector)

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """Index vectors (``GENERIC_INDEX``), one per image; captions are not part of a Nova image vector.

        Raises:
            ValueError: ``captions`` has a different length, or an image cannot be read.
            ProviderError: a request failed (after retries for retryable errors).
        """
        self._captions(images, captions)  # checked, not sent: a Nova image vector has no caption
        return bounded_map(lambda image: self._vector(self.image_body(image)), list(images), limiter=self.limiter)

    def embed_images_by_kind(self, images: Sequence[bytes], kinds: Sequence[str],
                             captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """Index vectors (``GENERIC_INDEX``) read as their kind asks: ``page`` renders as ``DOCUMENT_IMAGE``, other
        images with ``detail_level`` (:class:`~mmrag.providers.base.KindAwareImageEmbedder`).

        Raises:
            ValueError: ``kinds`` or ``captions`` has a different length, or an image cannot be read.
            ProviderError: a request failed (after retries for retryable errors).
        """
        if len(kinds) != len(images) or (captions is not None and len(captions) != len(images)):
            raise ValueError(f"got {len(images)} images but {len(kinds)} kinds"
                             + ("" if captions is None else f" and {len(captions)} captions"))
        pairs = list(zip(images, [self.detail_for(k) for k in kinds], strict=True))
        return bounded_map(lambda pair: self._vector(self.image_body(pair[0], detail=pair[1])), pairs,
                           limiter=self.limiter)

    def embed_clips(self, clips: Sequence[bytes], durations: Sequence[float]) -> list[list[float]]:
        """Index vectors of short MP4 clips (at most 30 s each, e.g. one shot of a video: picture and sound together,
        ``AUDIO_VIDEO_COMBINED``), one synchronous ``video`` request each
        (:class:`~mmrag.providers.bedrock.nova_media.NovaMediaEmbedder`); ingest gives video keyframes these.

        Raises:
            ValueError: ``durations`` has a different length, or a clip is too long for one request.
            ProviderError: a request failed (after retries for retryable errors).
        """
        from mmrag.providers.bedrock.nova_media import SYNC_MAX_SECONDS, NovaMediaEmbedder

        if len(durations) != len(clips) or any(d > SYNC_MAX_SECONDS for d in durations):
            raise ValueError(f"got {len(clips)} clips and durations {list(durations)} (at most 30 s each)")
        media = NovaMediaEmbedder(client=self.client, model_id=self.model_id, dimensions=self.dimensions,
                                  limiter=self.limiter, policy=self.policy)
        media.stats = self.stats  # one count of this model's calls

        def one(pair: tuple[bytes, float]) -> list[float]:
            return media.embed_media(pair[0], media="video", fmt="mp4", duration=pair[1])[0].vector

        return bounded_map(one, list(zip(clips, durations, strict=True)), limiter=self.limiter)

    def embed_image_queries(self, images: Sequence[bytes]) -> list[list[float]]:
        """Query vectors for images used as queries (image→image search, ``GENERIC_RETRIEVAL``)."""
        return bounded_map(lambda image: self._vector(self.image_body(image, "GENERIC_RETRIEVAL")), list(images),
                           limiter=self.limiter)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Text queries for images (``IMAGE_RETRIEVAL``); empty texts get a zero vector without a request."""

        def one(text: str) -> list[float]:
            if not text.strip():
                return [0.0] * self.dimensions
            return self._vector(self.text_body(text))

        return bounded_map(one, list(texts), limiter=self.limiter)


def _first_vector(payload: dict[str, Any]) -> list[float]:
    """The vector of a ``SINGLE_EMBEDDING`` response: ``embeddings[0].embedding``."""
    return [float(v) for v in payload["embeddings"][0]["embedding"]]
