"""What the Bedrock image-space embedders (Titan Multimodal G1, Nova Multimodal Embeddings, Cohere Embed v4) share:
their wiring (client, model, dimensions, concurrency gate, retry policy, call statistics) and one JSON InvokeModel
call with retries. Each model keeps its own request bodies and response parsing in its own module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mmrag.config import Settings
from mmrag.providers._concurrency import AdaptiveLimiter, CallStats, RetryPolicy, call_with_retry

__all__ = ["InvokeModelEmbedder", "invoke_json"]

T = TypeVar("T")


def invoke_json(client: Any, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """One InvokeModel call with a JSON body; the JSON response."""
    response = client.invoke_model(modelId=model_id, body=json.dumps(body), contentType="application/json",
                                   accept="application/json")
    payload: dict[str, Any] = json.loads(response["body"].read())
    return payload


class InvokeModelEmbedder:
    """The base of the Bedrock image embedders: ``client``, ``model_id``, ``dimensions``, ``limiter``, ``policy``
    and ``stats``, set from the arguments or from ``settings`` (``image_embedding_dims``, ``max_concurrency``,
    ``max_retries``), and :meth:`_invoke`, one call with retries (throttling, quota and 5xx errors back off;
    validation errors do not retry)."""

    supports_text_queries: bool = True

    def __init__(self, settings: Settings | None, *, client: Any, model_id: str, dimensions: int | None,
                 limiter: AdaptiveLimiter | None, policy: RetryPolicy | None) -> None:
        self.client = client
        self.model_id = model_id
        self.dimensions = dimensions or (settings.image_embedding_dims if settings else 1024)
        self.limiter = limiter or AdaptiveLimiter(settings.max_concurrency if settings else 16)
        self.policy = policy or RetryPolicy(max_retries=settings.max_retries if settings else 8)
        self.stats = CallStats()

    def _invoke(self, body: dict[str, Any], parse: Callable[[dict[str, Any]], T]) -> T:
        """InvokeModel with ``body``, the response read by ``parse`` (a parse error is a failed call, not retried
        unless it is a :class:`~mmrag.errors.ProviderError` that says so)."""
        return call_with_retry(lambda: parse(invoke_json(self.client, self.model_id, body)), limiter=self.limiter,
                               policy=self.policy, model_id=self.model_id, stats=self.stats)

    @staticmethod
    def _captions(images: Sequence[bytes], captions: Sequence[str | None] | None) -> list[str | None]:
        """``captions`` as a list as long as ``images`` (Nones when not given).

        Raises:
            ValueError: ``captions`` has a different length.
        """
        if captions is not None and len(captions) != len(images):
            raise ValueError(f"got {len(images)} images but {len(captions)} captions")
        return list(captions) if captions is not None else [None] * len(images)
