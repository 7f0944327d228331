"""Cohere Embed v4 on Bedrock as mmrag's image space: images with their caption, and text queries, in one space.

Request bodies ([cohere-v4] in :mod:`mmrag.providers.bedrock.catalog`), synchronous InvokeModel:

- an image to index, with its caption as interleaved text (one vector for both, as Titan Multimodal G1 gives)::

    {"input_type": "search_document", "embedding_types": ["float"], "output_dimension": 1024,
     "inputs": [{"content": [{"type": "text", "text": "<caption>"},
                             {"type": "image_url", "image_url": "data:image/png;base64,<...>"}]}]}

- text queries, up to 96 per request: ``{"input_type": "search_query", "texts": [...], "truncate": "RIGHT", ...}``;
- images used as queries (image→image search): ``{"input_type": "search_query", "images": ["data:..."], ...}``.

Purposes are asymmetric as the model asks: ``search_document`` when indexing, ``search_query`` when querying. With
``embedding_types`` given, the response carries the vectors by type: ``embeddings.float[i]`` for input ``i`` (the
shape of Cohere's v2 embed API, ``response_type: "embeddings_by_type"``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

from mmrag.config import Settings
from mmrag.errors import ConfigError, ProviderError
from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy, bounded_map
from mmrag.providers.bedrock._image_space import InvokeModelEmbedder
from mmrag.providers.bedrock.catalog import truncate_to_tokens
from mmrag.providers.bedrock.images import fit_image

__all__ = ["COHERE_EMBED_V4", "CohereEmbedV4Embedder"]

COHERE_EMBED_V4 = "cohere.embed-v4:0"
DIMENSIONS = (1536, 1024, 512, 256)  # [cohere-v4] output_dimension
MAX_PER_CALL = 96  # [cohere-v4] "up to 96" texts or images per call
_IMAGE_MAX_SIDE = 1568  # the service downsamples above 2,458,624 px (~1568 x 1568): no point sending more
_IMAGE_MAX_BYTES = 5_000_000  # Cohere's documented image limit (Embed v3 page: 5 MB); stricter reading kept
InputType = Literal["search_document", "search_query"]


def _data_uri(image: bytes) -> str:
    fitted, fmt = fit_image(image, formats=("png", "jpeg"), max_side=_IMAGE_MAX_SIDE, max_bytes=_IMAGE_MAX_BYTES)
    return f"data:image/{fmt};base64,{base64.b64encode(fitted).decode('ascii')}"


class CohereEmbedV4Embedder(InvokeModelEmbedder):
    """Cohere Embed v4 as an :class:`~mmrag.providers.base.ImageEmbedder` (text queries supported).

    Args:
        settings: where unset arguments come from (dims, caption budget, concurrency, retries).
        client: a ``bedrock-runtime`` client in a Region that can call ``model_id``.
        model_id: the id to call (default :data:`COHERE_EMBED_V4`; mmrag's factory passes the inference profile
            resolved for the Region, e.g. ``us.cohere.embed-v4:0``).
        dimensions: 1536, 1024, 512 or 256.
        caption_max_tokens: captions are cut to this many (estimated) tokens.
        limiter: concurrency gate, possibly shared.
        policy: retry/backoff settings.

    Raises:
        ConfigError: ``dimensions`` is not one the model offers.
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
        super().__init__(settings, client=client, model_id=model_id or COHERE_EMBED_V4, dimensions=dimensions,
                         limiter=limiter, policy=policy)
        if self.dimensions not in DIMENSIONS:
            raise ConfigError(f"Cohere Embed v4 offers {', '.join(map(str, DIMENSIONS))} dimensions, not "
                              f"{self.dimensions}: set MMRAG_IMAGE_EMBEDDING_DIMS={DIMENSIONS[0]} (or another of them)")
        self.caption_max_tokens = caption_max_tokens or (settings.image_caption_max_tokens if settings else 128)

    @property
    def cache_key(self) -> str:
        """What changes the output: model, dimensions, caption budget."""
        return f"{self.model_id}|dims={self.dimensions}|caption_tokens={self.caption_max_tokens}"

    def _common(self, input_type: InputType) -> dict[str, Any]:
        return {"input_type": input_type, "embedding_types": ["float"], "output_dimension": self.dimensions}

    def image_body(self, image: bytes, caption: str | None = None) -> dict[str, Any]:
        """The InvokeModel body indexing one image, with its caption as interleaved text when it has one."""
        content: list[dict[str, Any]] = []
        if caption and caption.strip():
            content.append({"type": "text", "text": truncate_to_tokens(caption.strip(), self.caption_max_tokens)})
        content.append({"type": "image_url", "image_url": _data_uri(image)})
        return {**self._common("search_document"), "inputs": [{"content": content}]}

    def texts_body(self, texts: Sequence[str]) -> dict[str, Any]:
        """The InvokeModel body for up to 96 text queries."""
        return {**self._common("search_query"), "texts": list(texts), "truncate": "RIGHT"}

    def image_query_body(self, image: bytes) -> dict[str, Any]:
        """The InvokeModel body for one image used as a query."""
        return {**self._common("search_query"), "images": [_data_uri(image)]}

    def _vectors(self, body: dict[str, Any], expected: int) -> list[list[float]]:
        def parse(payload: dict[str, Any]) -> list[list[float]]:
            embeddings = payload.get("embeddings")
            vectors = embeddings.get("float") if isinstance(embeddings, dict) else embeddings
            if not isinstance(vectors, list) or len(vectors) != expected:
                raise ProviderError(f"{self.model_id} returned an unexpected response: no embeddings.float with "
                                    f"{expected} vectors (keys: {sorted(payload)})")
            return [[float(v) for v in vector] for vector in vectors]

        return self._invoke(body, parse)

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """Index vectors (``search_document``), one request per image, each jointly with ``captions[i]``.

        Raises:
            ValueError: ``captions`` has a different length, or an image cannot be read.
            ProviderError: a request failed (after retries for retryable errors).
        """
        pairs = list(zip(images, self._captions(images, captions), strict=True))
        return bounded_map(lambda pair: self._vectors(self.image_body(*pair), 1)[0], pairs, limiter=self.limiter)

    def embed_image_queries(self, images: Sequence[bytes]) -> list[list[float]]:
        """Query vectors for images used as queries (image→image search, ``search_query``)."""
        return bounded_map(lambda image: self._vectors(self.image_query_body(image), 1)[0], list(images),
                           limiter=self.limiter)

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Text queries for images (``search_query``), 96 per request; empty texts get a zero vector unsent."""
        out: list[list[float]] = [[0.0] * self.dimensions for _ in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        batches = [todo[i : i + MAX_PER_CALL] for i in range(0, len(todo), MAX_PER_CALL)]
        results = bounded_map(lambda batch: self._vectors(self.texts_body([texts[i] for i in batch]), len(batch)),
                              batches, limiter=self.limiter)
        for batch, vectors in zip(batches, results, strict=True):
            for i, vector in zip(batch, vectors, strict=True):
                out[i] = vector
        return out
