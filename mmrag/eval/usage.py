"""Counting the model calls of one evaluated question, and an estimated price for them.

Chat calls (decomposition, synthesis, qa-pairs sub-answers) are counted by a LangChain callback handler passed
in the run's config; their token counts come from the responses' ``usage_metadata``. Query embeddings are
counted by a thin wrapper around the text ``Embeddings``; their tokens are estimated as characters / 4.

Prices are on-demand list prices in US dollars per million tokens (Amazon Bedrock pricing page, us-east-1,
checked 2025-11): an *estimate* for comparing variants, not a bill. Unknown models are counted but priced 0
(and the report says the cost is incomplete). Local models cost nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import Embeddings

__all__ = ["PRICES_PER_MTOK", "CallCounter", "CountingEmbeddings", "Usage", "estimate_cost"]

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    # model id fragment: (input, output) USD per 1M tokens
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-haiku": (0.25, 1.25),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "titan-embed-text-v2": (0.02, 0.0),
    "titan-embed-image-v1": (0.80, 0.0),  # text input; images are priced per image (0.00006 USD)
}


def price_of(model_id: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for a model id (inference-profile prefixes allowed), or None: from the
    one price table (:mod:`mmrag.providers.bedrock.prices`, per model and scope), else the fragments above."""
    from mmrag.providers.bedrock.prices import price_for

    price = price_for(model_id)
    if price is not None:
        return price[0], price[1]
    return next((p for fragment, p in PRICES_PER_MTOK.items() if fragment in model_id), None)


@dataclass(frozen=True)
class Usage:
    """Model calls of one question: calls, tokens in/out, estimated cost (None when a price is unknown)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(self.calls + other.calls, self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens, cost)


def estimate_cost(model_id: str, input_tokens: int, output_tokens: int, *, local: bool = False) -> float | None:
    """Estimated USD for one model's tokens; 0 for local models, None for an unknown remote model."""
    if local:
        return 0.0
    price = price_of(model_id)
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


class CallCounter(BaseCallbackHandler):
    """Counts chat-model calls and their tokens (thread-safe: sub-questions may run in parallel)."""

    def __init__(self, *, local: bool = False) -> None:
        self._lock = threading.Lock()
        self.local = local
        self._usage = Usage()

    def add(self, model_id: str, input_tokens: int, output_tokens: int, calls: int = 1) -> None:
        cost = estimate_cost(model_id, input_tokens, output_tokens, local=self.local)
        with self._lock:
            self._usage = self._usage + Usage(calls, input_tokens, output_tokens, cost)

    @property
    def usage(self) -> Usage:
        with self._lock:
            return self._usage

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        tokens_in = tokens_out = 0
        model_id = ""
        for generations in getattr(response, "generations", []) or []:
            for generation in generations:
                message = getattr(generation, "message", None)
                meta = getattr(message, "usage_metadata", None) or {}
                tokens_in += int(meta.get("input_tokens", 0))
                tokens_out += int(meta.get("output_tokens", 0))
                info = getattr(message, "response_metadata", None) or {}
                model_id = model_id or str(info.get("model_id") or info.get("model_name") or "")
        llm_output = getattr(response, "llm_output", None) or {}
        model_id = model_id or str(llm_output.get("model_id") or llm_output.get("model_name") or "")
        self.add(model_id or "unknown", tokens_in, tokens_out)


class CountingEmbeddings(Embeddings):
    """Wraps the text ``Embeddings`` and counts query embeddings (one call each, tokens ≈ characters / 4)."""

    def __init__(self, inner: Embeddings, counter: CallCounter, model_id: str) -> None:
        self.inner, self.counter, self.model_id = inner, counter, model_id
        self.dimensions = getattr(inner, "dimensions", None)

    def embed_query(self, text: str) -> list[float]:
        self.counter.add(self.model_id, max(1, len(text) // 4), 0)
        return self.inner.embed_query(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.counter.add(self.model_id, sum(max(1, len(t) // 4) for t in texts), 0, calls=len(texts))
        return self.inner.embed_documents(texts)
