"""Claude on Bedrock: chat models for the chains, the image/table captioner, and image preparation.

Images are prepared from their bytes, never from a file extension or declared MIME type (a JPEG declared as PNG
is rejected by the service): the format is sniffed from magic bytes, images are downscaled so the long edge is at
most 1568 px (larger ones are downscaled by the service anyway, after costing upload time and tokens) and
re-encoded until they fit 3.75 MB. One message holds at most 20 images.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.errors import ConfigError, MissingDependencyError, ProviderError
from mmrag.providers._concurrency import (
    AdaptiveLimiter,
    CallStats,
    RetryPolicy,
    abounded_map,
    bounded_map,
    call_with_retry,
    classify_error,
    to_mmrag_error,
)
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY
from mmrag.providers.bedrock import _prompts

if TYPE_CHECKING:
    from langchain_aws import ChatBedrockConverse
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessageChunk
    from PIL.Image import Image

__all__ = [
    "CLAUDE_IMAGE_MAX_BYTES",
    "CLAUDE_IMAGE_MAX_SIDE",
    "CLAUDE_MAX_IMAGES",
    "BedrockCaptioner",
    "fit_image",
    "make_chat_model",
    "prepare_images_for_claude",
    "sniff_image_format",
    "stream_with_retry",
]

logger = logging.getLogger(__name__)

CLAUDE_IMAGE_MAX_SIDE = 1568
CLAUDE_IMAGE_MAX_BYTES = 3_750_000  # "3.75 MB" per image; decimal, the stricter reading
CLAUDE_MAX_IMAGES = 20
_CLAUDE_FORMATS = ("png", "jpeg", "gif", "webp")
_DEFAULT_FAST_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


# -- images ----------------------------------------------------------------------------------------------------
def sniff_image_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``gif`` or ``webp`` from the magic bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _encode(img: Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _flatten(img: Image) -> Image:
    """RGB for JPEG: transparency is composited on white rather than turning black."""
    from PIL import Image as PILImage

    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def fit_image(data: bytes, *, formats: Sequence[str], max_side: int, max_bytes: int) -> tuple[bytes, str]:
    """Bytes and format of ``data`` made to fit a model's image limits, untouched when they already do.

    Images in another format are converted (PNG, or JPEG for photos that are too big as PNG); images with a
    side over ``max_side`` are downscaled keeping the aspect ratio; images over ``max_bytes`` are re-encoded as
    JPEG with decreasing quality, then further downscaled.

    Raises:
        ValueError: the bytes are not an image Pillow can read.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    fmt = sniff_image_format(data)
    try:
        img: Image = PILImage.open(io.BytesIO(data))
        width, height = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc
    if fmt is not None and fmt in formats and max(width, height) <= max_side and len(data) <= max_bytes:
        return data, fmt
    img.load()
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        img = img.resize((max(1, round(width * scale)), max(1, round(height * scale))), PILImage.Resampling.LANCZOS)
    # Keep PNG (lossless: charts, text) when allowed and small enough; otherwise JPEG.
    if "png" in formats and fmt != "jpeg":
        png = img if img.mode in ("RGB", "RGBA", "L", "LA", "P") else img.convert("RGBA")
        out = _encode(png, "png")
        if len(out) <= max_bytes:
            return out, "png"
    rgb = _flatten(img)
    while True:
        for quality in (90, 80, 70, 60, 50, 40):
            out = _encode(rgb, "jpeg", quality)
            if len(out) <= max_bytes:
                return out, "jpeg"
        if max(rgb.size) <= 64:
            raise ValueError("image cannot be made small enough")
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), PILImage.Resampling.LANCZOS)


def prepare_images_for_claude(images: Sequence[bytes]) -> list[dict[str, Any]]:
    """Converse ``image`` content blocks for Claude, each fitted to Claude's limits.

    Raises:
        ValueError: more than 20 images (one message's limit), or bytes that are not an image.
    """
    if len(images) > CLAUDE_MAX_IMAGES:
        raise ValueError(f"Claude accepts at most {CLAUDE_MAX_IMAGES} images per message, got {len(images)}")
    blocks = []
    for data in images:
        fitted, fmt = fit_image(
            data, formats=_CLAUDE_FORMATS, max_side=CLAUDE_IMAGE_MAX_SIDE, max_bytes=CLAUDE_IMAGE_MAX_BYTES
        )
        blocks.append({"image": {"format": fmt, "source": {"bytes": fitted}}})
    return blocks


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


def make_chat_model(
    settings: Settings, role: Literal["fast", "strong"], client: Any = None, **kwargs: Any
) -> ChatBedrockConverse:
    """A LangChain ``ChatBedrockConverse`` for a role: ``fast`` (Haiku: captions, decomposition) or ``strong``.

    ``maxTokens`` is always set (``fast_max_tokens`` / ``strong_max_tokens``); the fast model runs at
    temperature 0. Model ids may be base ids, cross-region inference-profile ids (``us.anthropic...``) or ARNs.

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
    model_id = settings.fast_model if role == "fast" else settings.strong_model
    params: dict[str, Any] = {
        "client": client,
        "bedrock_client": _LazyClient(settings),
        "model": model_id,
        "max_tokens": settings.fast_max_tokens if role == "fast" else settings.strong_max_tokens,
        "region_name": settings.aws_region or getattr(getattr(client, "meta", None), "region_name", None),
    }
    if role == "fast":
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
                if limiter is not None:
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
class BedrockCaptioner:
    """Captions images and page renders, and summarises tables, with Claude through the Converse API.

    Every element is one Converse request (one image each), all run concurrently through the limiter and retried
    by mmrag's retry layer. An element that still fails comes back unchanged, is logged and counted in
    ``stats.failures``; it never sinks the batch. Missing credentials (``ConfigError``) do propagate.

    Args:
        settings: where unset arguments come from (``fast_model``, ``fast_max_tokens``, concurrency, retries).
        client: a ``bedrock-runtime`` client (see :func:`mmrag.providers.bedrock.client.make_bedrock_client`).
        model_id: Claude model id or inference profile (default ``Settings.fast_model``).
        max_tokens: ``inferenceConfig.maxTokens`` of every request (default ``Settings.fast_max_tokens``).
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
        self.model_id = model_id or (settings.fast_model if settings else _DEFAULT_FAST_MODEL)
        self.max_tokens = max_tokens or (settings.fast_max_tokens if settings else 1024)
        self.limiter = limiter or AdaptiveLimiter(settings.max_concurrency if settings else 16)
        self.policy = policy or RetryPolicy(max_retries=settings.max_retries if settings else 8)
        self.stats = CallStats()

    @property
    def cache_key(self) -> str:
        """What changes the output: model, token budget and prompt version."""
        return f"{self.model_id}|max_tokens={self.max_tokens}|prompt=v{_prompts.PROMPT_VERSION}"

    def caption(self, elements: Sequence[Element]) -> list[Element]:
        """Captioned copies of ``elements`` in the same order (see :class:`mmrag.providers.base.Captioner`)."""
        return bounded_map(self._caption_one, elements, limiter=self.limiter)

    async def acaption(self, elements: Sequence[Element]) -> list[Element]:
        """Async :meth:`caption`; the event loop never blocks."""
        return await abounded_map(self._caption_one, elements, limiter=self.limiter)

    def request_for(self, element: Element) -> dict[str, Any] | None:
        """The Converse request for one element, or None when the element needs no caption."""
        if element.kind == "table":
            if not element.text.strip():
                return None
            content: list[dict[str, Any]] = [{"text": _prompts.TABLE_PROMPT.format(table=element.text[:20_000])}]
        elif element.kind in ("image", "page"):
            if element.data is None:
                raise ValueError("the element has no image bytes (data is None)")
            prompt = _prompts.PAGE_PROMPT if element.kind == "page" else _prompts.IMAGE_PROMPT
            text = _prompts.with_context(prompt, element.text)
            content = [*prepare_images_for_claude([element.data]), {"text": text}]
        else:
            return None
        return {
            "modelId": self.model_id,
            "system": [{"text": _prompts.CAPTION_SYSTEM}],
            "messages": [{"role": "user", "content": content}],
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": 0.0},
        }

    def _converse(self, request: dict[str, Any]) -> str:
        response = self.client.converse(**request)
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "\n".join(b["text"] for b in blocks if isinstance(b, dict) and "text" in b).strip()
        if response.get("stopReason") == "max_tokens":
            logger.debug("%s: caption cut at maxTokens=%d", self.model_id, self.max_tokens)
        return text

    def _caption_one(self, element: Element) -> Element:
        try:
            request = self.request_for(element)
        except ValueError as exc:
            self.stats.add(failures=1)
            logger.warning("cannot caption %s element %s from %s: %s", element.kind, element.id, element.source, exc)
            return element
        if request is None:
            return element
        try:
            text = call_with_retry(
                lambda: self._converse(request),
                limiter=self.limiter,
                policy=self.policy,
                model_id=self.model_id,
                stats=self.stats,
            )
        except ProviderError as exc:
            self.stats.add(failures=1)
            logger.warning("caption failed for %s element %s from %s: %s", element.kind, element.id,
                           element.source, exc)
            return element
        if not text:
            self.stats.add(failures=1)
            logger.warning("empty caption for %s element %s from %s", element.kind, element.id, element.source)
            return element
        key = SUMMARY_KEY if element.kind == "table" else CAPTION_KEY
        return replace(element, metadata={**element.metadata, key: text, "caption_model": self.model_id})
