"""Shared pieces of the emulator: service errors, documented limits, model-id resolution, token counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ApiError", "Limits", "ModelInfo", "approx_tokens", "resolve_model"]

Family = Literal["titan-text-v2", "titan-text-v1", "titan-mm", "nova-mme", "cohere-embed-v4", "claude", "chat", "other"]

_PROVIDERS = frozenset(
    {
        "amazon",
        "anthropic",
        "cohere",
        "meta",
        "mistral",
        "ai21",
        "stability",
        "deepseek",
        "writer",
        "openai",
        "qwen",
        "twelvelabs",
        "luma",
        "google",
        "minimax",
        "moonshot",
    }
)
_CHAT_PREFIXES = (
    "amazon.nova-",
    "amazon.titan-text-",
    "meta.llama",
    "mistral.",
    "ai21.jamba",
    "cohere.command",
    "deepseek.",
    "openai.gpt-oss",
    "qwen.",
    "writer.palmyra",
)


class ApiError(Exception):
    """A modelled Bedrock error: HTTP status, error code (``x-amzn-ErrorType``) and message.

    Args:
        status: HTTP status code.
        code: the botocore error shape name, e.g. ``ThrottlingException``.
        message: the ``message`` field of the JSON body.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")

    @classmethod
    def validation(cls, message: str) -> ApiError:
        """A 400 ValidationException."""
        return cls(400, "ValidationException", message)

    @classmethod
    def malformed(cls, detail: str) -> ApiError:
        """A 400 ValidationException worded like InvokeModel's JSON-schema errors."""
        return cls.validation(f"Malformed input request: {detail}, please reformat your input and try again.")


@dataclass(frozen=True)
class Limits:
    """Documented Bedrock limits that the emulator enforces; override one to match a quota change.

    Attributes:
        titan_text_max_chars: Titan Text Embeddings V2 input characters (user guide: "8,192 tokens or 50,000
            characters").
        titan_text_max_tokens: Titan Text Embeddings V2 input tokens (same page).
        mm_text_max_tokens: Titan Multimodal Embeddings G1 input text tokens (user guide: "Max input text
            tokens – 256").
        mm_image_max_bytes: Titan Multimodal Embeddings G1 image size, decoded ("Max input image size – 25 MB").
        mm_image_max_side: Titan Multimodal Embeddings G1 image resolution ("2048 x 2048 pixels").
        chat_image_max_bytes: per image in Converse / Claude Messages (API reference ``Message``: "3.75 MB").
        chat_image_max_side: image width and height (same reference: "8000 px").
        chat_max_images: images per request (same reference: "up to 20 images").
    """

    titan_text_max_chars: int = 50_000
    titan_text_max_tokens: int = 8_192
    mm_text_max_tokens: int = 256
    mm_image_max_bytes: int = 25 * 1024 * 1024
    mm_image_max_side: int = 2048
    chat_image_max_bytes: int = 3_932_160  # 3.75 MiB
    chat_image_max_side: int = 8000
    chat_max_images: int = 20


@dataclass(frozen=True)
class ModelInfo:
    """A resolved model id: the base model id (no ARN, no cross-region prefix) and its emulated family."""

    base_id: str
    family: Family


def approx_tokens(text: str) -> int:
    """The token count limits are enforced with: the providers' conservative count (see
    :func:`mmrag.providers.bedrock.catalog.approx_tokens`), so the emulator never undercounts prose."""
    from mmrag.providers.bedrock.catalog import approx_tokens as count

    return count(text)


def resolve_model(model_id: str, region: str | None = None) -> ModelInfo:
    """Resolve a model id, ARN or inference-profile id to the base model and its family, as Bedrock would.

    With the facts of :mod:`mmrag.providers.bedrock.catalog`: a retired id is a ResourceNotFoundException; a base
    id of a model that needs an inference profile, a geo profile called from outside its geography, a profile
    that does not exist for the model, and an in-Region model called in a Region that does not offer it are
    ValidationExceptions, worded as the service words them. ``region`` is the SigV4 signing Region (None: not
    checked).

    Raises:
        ApiError: what the real service answers.
    """
    from mmrag.providers.bedrock.catalog import facts_for, geo_of, split_model_id

    prefix, base = split_model_id(model_id)
    if base.split(".", 1)[0] not in _PROVIDERS or "." not in base:
        raise ApiError.validation("The provided model identifier is invalid.")
    facts = facts_for(model_id)
    if facts is not None:
        if facts.lifecycle == "retired":
            raise ApiError(404, "ResourceNotFoundException",
                           "This model version has reached the end of its life. Please refer to the AWS "
                           "documentation for more details.")
        if prefix is None and not facts.regions and not model_id.startswith("arn:"):
            raise ApiError.validation(
                f"Invocation of model ID {base} with on-demand throughput isn\u2019t supported. Retry your request "
                "with the ID or ARN of an inference profile that contains this model."
            )
        if prefix is not None and (prefix not in facts.profiles or (region is not None and not geo_of(prefix, region))):
            raise ApiError.validation("The provided model identifier is invalid.")
        if prefix is None and facts.regions and region is not None and region not in facts.regions:
            raise ApiError.validation("The provided model identifier is invalid.")
    family: Family = "other"
    if base.startswith("amazon.titan-embed-text-v2"):
        family = "titan-text-v2"
    elif base.startswith("amazon.titan-embed-text-v1"):
        family = "titan-text-v1"
    elif base.startswith("amazon.titan-embed-image-v1"):
        family = "titan-mm"
    elif base.startswith("amazon.nova-2-multimodal-embeddings"):
        family = "nova-mme"
    elif base.startswith("cohere.embed-v4"):
        family = "cohere-embed-v4"
    elif base.startswith("anthropic.claude"):
        family = "claude"
    elif base.startswith(_CHAT_PREFIXES):
        family = "chat"
    return ModelInfo(base_id=base, family=family)
