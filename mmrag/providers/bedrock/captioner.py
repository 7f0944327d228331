"""The image and table captioner: Claude on Bedrock through the Converse API, one request per element."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.errors import AccessDeniedError, ProviderError
from mmrag.providers._concurrency import (
    AdaptiveLimiter,
    CallStats,
    RetryPolicy,
    abounded_map,
    bounded_map,
    call_with_retry,
)
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY
from mmrag.providers.bedrock import _prompts
from mmrag.providers.bedrock.catalog import facts_for
from mmrag.providers.bedrock.claude import (
    _DEFAULT_FAST_MODEL,
    BLOCKED_KEY,
    BLOCKED_STOPS,
    accepts_temperature,
    role_model_id,
    token_budget,
)
from mmrag.providers.bedrock.images import prepare_images_for_claude

__all__ = ["BedrockCaptioner"]

logger = logging.getLogger(__name__)


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
