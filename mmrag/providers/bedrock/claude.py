"""Claude on Bedrock: chat models for the chains and the image/table captioner.

Image preparation lives in :mod:`mmrag.providers.bedrock.images` (re-exported here). Model ids are resolved for the
Region and requests shaped per model (``temperature``, ``maxTokens``) from :mod:`mmrag.providers.bedrock.catalog`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.errors import AccessDeniedError, ConfigError, MissingDependencyError, ProviderError
from mmrag.providers._concurrency import (
    AdaptiveLimiter,
    CallStats,
    RetryPolicy,
    abounded_map,
    bounded_map,
    call_with_retry,
    classify_error,
    is_client_timeout,
    to_mmrag_error,
)
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY
from mmrag.providers.bedrock import _prompts
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
    "BedrockCaptioner",
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


# -- captioner -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    element: Element
    # fatal: a non-retryable error; failed: retries ran out; blocked: a content filter or guardrail (final)
    status: Literal["ok", "skipped", "failed", "fatal", "blocked"]
    error: ProviderError | None = None


class BedrockCaptioner:
    """Captions images and page renders, and summarises tables, with Claude through the Converse API.

    Every element is one Converse request (one image each), all run concurrently through the limiter and retried
    by mmrag's retry layer. Document text in the request (the context around an image, the table) is fenced with
    a per-request, unguessable tag and the system prompt says it is data, not instructions. ``temperature`` is
    sent only to models that accept it; ``maxTokens`` is scaled per model (:func:`token_budget`), and a caption
    cut at ``maxTokens`` is retried once with twice the budget. A caption Bedrock filters (``content_filtered``,
    ``guardrail_intervened``) is a final outcome: the element comes back with ``metadata["caption_blocked"]`` set
    to the stop reason, is counted in ``stats.filtered`` and logged, and is not asked again.

    An element that still fails comes back unchanged, is logged and counted in ``stats.failures``; it never sinks
    the batch. But when EVERY element of a call fails with a non-retryable error (a model that rejects the
    request, model access not enabled...), :meth:`caption` raises ``ProviderError``: indexing a whole run
    uncaptioned would silently lose quality. Missing credentials (``ConfigError``) propagate.

    Args:
        settings: where unset arguments come from (``fast_model``, ``fast_max_tokens``, concurrency, retries).
        client: a ``bedrock-runtime`` client (see :func:`mmrag.providers.bedrock.client.make_bedrock_client`).
        model_id: Claude model id or inference profile (default: ``Settings.fast_model`` resolved for the client's
            Region, see :func:`role_model_id`).
        max_tokens: token budget of every request before per-model scaling (default ``Settings.fast_max_tokens``).
        limiter: concurrency gate, possibly shared with other providers.
        policy: retry/backoff settings.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Any,
        model_id: str | None = None,
        max_tokens: int | None = None,
        limiter: AdaptiveLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.model_id = model_id or (role_model_id(settings, "fast", client) if settings else _DEFAULT_FAST_MODEL)
        self.max_tokens = token_budget(self.model_id, max_tokens or (settings.fast_max_tokens if settings else 1024))
        self.limiter = limiter or AdaptiveLimiter(settings.max_concurrency if settings else 16,
                                                  hold_after_timeout=settings.request_timeout if settings else 0.0)
        self.policy = policy or RetryPolicy(max_retries=settings.max_retries if settings else 8)
        self.stats = CallStats()

    @property
    def cache_key(self) -> str:
        """What changes the output: model, token budget and prompt version."""
        return f"{self.model_id}|max_tokens={self.max_tokens}|prompt=v{_prompts.PROMPT_VERSION}"

    def caption(self, elements: Sequence[Element]) -> list[Element]:
        """Captioned copies of ``elements`` in the same order (see :class:`mmrag.providers.base.Captioner`).

        Raises:
            ProviderError: every element that needed a model call failed with a non-retryable error.
        """
        return self._check(bounded_map(self._caption_one, elements, limiter=self.limiter))

    async def acaption(self, elements: Sequence[Element]) -> list[Element]:
        """Async :meth:`caption`; the event loop never blocks."""
        return self._check(await abounded_map(self._caption_one, elements, limiter=self.limiter))

    def _check(self, outcomes: list[_Outcome]) -> list[Element]:
        asked = [o for o in outcomes if o.status != "skipped"]
        fatal = [o.error for o in asked if o.status == "fatal" and o.error is not None]
        if asked and len(fatal) == len(asked):
            # Refused access stops an ingest at once (exit 5): every other caption would be refused too.
            kind = AccessDeniedError if isinstance(fatal[0], AccessDeniedError) else ProviderError
            raise kind(
                f"every caption request to {self.model_id} failed ({len(fatal)} of {len(fatal)}): nothing was "
                f"captioned, so the run stops instead of indexing uncaptioned images. First error: {fatal[0]}",
            ) from fatal[0]
        return [o.element for o in outcomes]

    def request_for(self, element: Element, *, fence: str | None = None) -> dict[str, Any] | None:
        """The Converse request for one element, or None when the element needs no caption."""
        fence = fence or _prompts.new_fence()
        if element.kind == "table":
            if not element.text.strip():
                return None
            table = _prompts.fenced(element.text[:20_000], fence)
            content: list[dict[str, Any]] = [{"text": _prompts.TABLE_PROMPT.format(table=table)}]
        elif element.kind in ("image", "page"):
            if element.data is None:
                raise ValueError("the element has no image bytes (data is None)")
            prompt = _prompts.PAGE_PROMPT if element.kind == "page" else _prompts.IMAGE_PROMPT
            text = _prompts.with_context(prompt, element.text, fence)
            content = [*prepare_images_for_claude([element.data]), {"text": text}]
        else:
            return None
        config: dict[str, Any] = {"maxTokens": self.max_tokens}
        if accepts_temperature(self.model_id):
            config["temperature"] = 0.0
        return {
            "modelId": self.model_id,
            "system": [{"text": _prompts.caption_system(fence)}],
            "messages": [{"role": "user", "content": content}],
            "inferenceConfig": config,
        }

    def _converse(self, request: dict[str, Any]) -> tuple[str, str]:
        response = self.client.converse(**request)
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "\n".join(b["text"] for b in blocks if isinstance(b, dict) and "text" in b).strip()
        return text, str(response.get("stopReason") or "")

    def _call(self, request: dict[str, Any]) -> tuple[str, str]:
        return call_with_retry(lambda: self._converse(request), limiter=self.limiter, policy=self.policy,
                               model_id=self.model_id, stats=self.stats)

    def _caption_one(self, element: Element) -> _Outcome:
        try:
            request = self.request_for(element)
        except ValueError as exc:
            self.stats.add(failures=1)
            logger.warning("cannot caption %s element %s from %s: %s", element.kind, element.id, element.source, exc)
            return _Outcome(element, "skipped")
        if request is None:
            return _Outcome(element, "skipped")
        try:
            text, stop = self._call(request)
            if stop in BLOCKED_STOPS:
                return self._blocked(element, stop)
            if stop == "max_tokens":
                # Adaptive thinking or a long description used the budget up: once more with twice as much.
                facts = facts_for(self.model_id)
                bigger = self.max_tokens * 2
                if facts is not None and facts.max_output_tokens:
                    bigger = min(bigger, facts.max_output_tokens)
                logger.debug("%s: caption cut at maxTokens=%d; retrying with %d", self.model_id, self.max_tokens,
                             bigger)
                retry = {**request, "inferenceConfig": {**request["inferenceConfig"], "maxTokens": bigger}}
                longer, stop = self._call(retry)
                if stop in BLOCKED_STOPS:
                    return self._blocked(element, stop)
                text = longer or text
        except ProviderError as exc:
            self.stats.add(failures=1)
            logger.warning("caption failed for %s element %s from %s: %s", element.kind, element.id,
                           element.source, exc)
            return _Outcome(element, "failed" if exc.is_retryable else "fatal", exc)
        if not text:
            self.stats.add(failures=1)
            logger.warning("empty caption for %s element %s from %s", element.kind, element.id, element.source)
            return _Outcome(element, "failed")
        key = SUMMARY_KEY if element.kind == "table" else CAPTION_KEY
        return _Outcome(replace(element, metadata={**element.metadata, key: text, "caption_model": self.model_id}),
                        "ok")

    def _blocked(self, element: Element, stop: str) -> _Outcome:
        """A final outcome: Bedrock answers the same content the same way, so it is reported, never retried."""
        self.stats.add(filtered=1)
        logger.warning("no caption for %s element %s from %s: Bedrock stopped with %s (the content was filtered); "
                       "it is indexed without a caption", element.kind, element.id, element.source, stop)
        return _Outcome(replace(element, metadata={**element.metadata, BLOCKED_KEY: stop,
                                                   "caption_model": self.model_id}), "blocked")
