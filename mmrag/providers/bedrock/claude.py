"""Claude on Bedrock: chat models for the chains (the image/table captioner is in :mod:`.captioner`).

Image preparation lives in :mod:`mmrag.providers.bedrock.images` (re-exported here). Model ids are resolved for the
Region and requests shaped per model (``temperature``, ``maxTokens``) from :mod:`mmrag.providers.bedrock.catalog`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from mmrag.config import Settings
from mmrag.errors import ConfigError, MissingDependencyError, ProviderError
from mmrag.providers._concurrency import (
    AdaptiveLimiter,
    CallStats,
    RetryPolicy,
    classify_error,
    is_client_timeout,
    to_mmrag_error,
)
from mmrag.providers.bedrock.catalog import facts_for, resolve
from mmrag.providers.bedrock.images import (
    CLAUDE_IMAGE_MAX_BYTES,
    CLAUDE_IMAGE_MAX_SIDE,
    CLAUDE_MAX_IMAGES,
    fit_image,
    prepare_images_for_claude,
    sniff_image_format,
)

if TYPE_CHECKING:
    from langchain_aws import ChatBedrockConverse
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessageChunk

__all__ = [
    "BLOCKED_KEY",
    "BLOCKED_STOPS",
    "CLAUDE_IMAGE_MAX_BYTES",
    "CLAUDE_IMAGE_MAX_SIDE",
    "CLAUDE_MAX_IMAGES",
    "fit_image",
    "accepts_temperature",
    "make_chat_model",
    "prepare_images_for_claude",
    "role_model_id",
    "sniff_image_format",
    "stream_with_retry",
    "token_budget",
]

logger = logging.getLogger(__name__)

_DEFAULT_FAST_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"  # used only without settings (tests)

# Converse ``stopReason`` values that mean the text is not the model's answer (Bedrock API reference, Converse,
# "stopReason": end_turn | tool_use | max_tokens | stop_sequence | guardrail_intervened | content_filtered |
# model_context_window_exceeded ...).
BLOCKED_STOPS = frozenset({"guardrail_intervened", "content_filtered"})
BLOCKED_KEY = "caption_blocked"
"""Element metadata naming the stop reason of a caption that Bedrock filtered (a final outcome)."""


# -- chat models -----------------------------------------------------------------------------------------------
class _LazyClient:
    """Creates a boto3 client on first attribute access.

    ChatBedrockConverse builds a control-plane ``bedrock`` client it only uses for application inference profiles;
    this keeps that from costing a client build (and a credential lookup) otherwise.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            from mmrag.providers.bedrock.client import make_bedrock_client

            self._client = make_bedrock_client(self._settings, service="bedrock", botocore_retries=True)
        return getattr(self._client, name)


def role_model_id(settings: Settings, role: Literal["fast", "strong"], client: Any = None) -> str:
    """The id a role calls: ``MMRAG_FAST_MODEL``/``MMRAG_STRONG_MODEL`` resolved for the client's Region.

    A base id of a model that needs an inference profile becomes the profile of the Region (see
    :func:`mmrag.providers.bedrock.catalog.resolve`); profile ids and ARNs are kept.

    Raises:
        ConfigError: a retired model, or a geo profile the Region cannot call.
    """
    from mmrag.providers.bedrock.client import bedrock_region

    model = settings.fast_model if role == "fast" else settings.strong_model
    region = getattr(getattr(client, "meta", None), "region_name", None) or bedrock_region(settings)
    return resolve(model, str(region), scope=settings.bedrock_inference_scope).model_id


def token_budget(model_id: str, tokens: int) -> int:
    """``maxTokens`` for a model: ``tokens`` scaled by its token factor (adaptive thinking, newer tokenizer),
    never above the model's maximum output."""
    facts = facts_for(model_id)
    if facts is None:
        return tokens
    scaled = math.ceil(tokens * facts.token_factor)
    return min(scaled, facts.max_output_tokens) if facts.max_output_tokens else scaled


def accepts_temperature(model_id: str) -> bool:
    """Whether ``temperature`` may be sent: only to models known to accept it (Sonnet 5.x, Haiku 5.5 and Opus
    4.7+ reject it)."""
    facts = facts_for(model_id)
    return facts is not None and facts.temperature


def make_chat_model(
    settings: Settings, role: Literal["fast", "strong"], client: Any = None, **kwargs: Any
) -> ChatBedrockConverse:
    """A LangChain ``ChatBedrockConverse`` for a role: ``fast`` (Haiku: captions, decomposition) or ``strong``.

    The model id is resolved for the Region (:func:`role_model_id`). ``maxTokens`` is always set
    (``fast_max_tokens`` / ``strong_max_tokens``, scaled by :func:`token_budget`); the fast model runs at
    temperature 0 where the model accepts ``temperature`` (newer models reject it and are sent none).

    Args:
        settings: mmrag settings.
        role: which model.
        client: a ``bedrock-runtime`` client to share. Without one, a client with botocore retries is built,
            since calls made directly on the chat model do not pass through mmrag's retry layer. A shared client
            built by :func:`make_bedrock_client` makes one attempt per call: wrap calls in
            :func:`mmrag.providers._concurrency.call_with_retry` / :func:`stream_with_retry`.
        **kwargs: more ``ChatBedrockConverse`` fields (they win over the defaults).
    """
    try:
        from langchain_aws import ChatBedrockConverse
    except ImportError as exc:
        raise MissingDependencyError("langchain_aws", "aws", feature="the bedrock profile") from exc
    if role not in ("fast", "strong"):
        raise ConfigError(f"role must be 'fast' or 'strong', not {role!r}")
    if client is None:
        from mmrag.providers.bedrock.client import make_bedrock_client

        client = make_bedrock_client(settings, botocore_retries=True)
    model_id = role_model_id(settings, role, client)
    budget = settings.fast_max_tokens if role == "fast" else settings.strong_max_tokens
    params: dict[str, Any] = {
        "client": client,
        "bedrock_client": _LazyClient(settings),
        "model": model_id,
        "max_tokens": token_budget(model_id, budget),
        "region_name": getattr(getattr(client, "meta", None), "region_name", None) or settings.aws_region,
    }
    if role == "fast" and accepts_temperature(model_id):
        params["temperature"] = 0.0
    if model_id.startswith("arn:"):
        params["provider"] = "anthropic"  # ARNs do not name the provider; mmrag's roles are Claude models
    params.update(kwargs)
    return ChatBedrockConverse(**params)


def _has_content(chunk: BaseMessageChunk) -> bool:
    return bool(chunk.content) or bool(getattr(chunk, "tool_call_chunks", None))


def stream_with_retry(
    model: BaseChatModel,
    prompt: Any,
    *,
    limiter: AdaptiveLimiter | None = None,
    policy: RetryPolicy | None = None,
    stats: CallStats | None = None,
    **kwargs: Any,
) -> Iterator[BaseMessageChunk]:
    """``model.stream(prompt)``, restarted from scratch when it fails before the first token.

    Chunks without content (``messageStart``) are held back until the first token arrives, so a retry is
    invisible to the consumer. Once a token has been yielded a restart would repeat text, so a failure after
    that raises ``ProviderError(is_retryable=True)``: the caller decides whether to start over.

    Raises:
        ProviderError: non-retryable error, retries exhausted, or a failure after partial output.
    """
    policy = policy or RetryPolicy()
    model_id = str(getattr(model, "model_id", "chat model"))
    attempt = 0
    while True:
        ticket = limiter.acquire() if limiter is not None else 0
        released = False
        started = False
        held: list[BaseMessageChunk] = []
        try:
            if stats is not None:
                stats.add(calls=1)
            try:
                for chunk in model.stream(prompt, **kwargs):
                    if started:
                        yield chunk
                    elif _has_content(chunk):
                        started = True
                        yield from held
                        held.clear()
                        yield chunk
                    else:
                        held.append(chunk)
                yield from held
            except Exception as exc:
                kind = classify_error(exc)
                if limiter is not None and is_client_timeout(exc):
                    limiter.release_later(ticket, limiter.hold_after_timeout)
                elif limiter is not None:
                    limiter.release(ticket, outcome="throttle" if kind == "throttle" else "error")
                released = True
                if stats is not None and kind == "throttle":
                    stats.add(throttles=1)
                if started:
                    raise ProviderError(
                        f"Bedrock stream from {model_id} failed after partial output: {exc}",
                        is_retryable=kind != "fatal",
                    ) from exc
                if kind == "fatal" or attempt >= policy.max_retries:
                    error = to_mmrag_error(exc, model_id, retryable=kind != "fatal")
                    if error is exc:
                        raise
                    raise error from exc
                if stats is not None:
                    stats.add(retries=1)
                logger.debug("%s: stream failed before the first token (%s); restarting", model_id, exc)
                time.sleep(policy.delay(attempt))
                attempt += 1
                continue
        finally:
            if not released and limiter is not None:
                limiter.release(ticket, outcome="ok")
        return
