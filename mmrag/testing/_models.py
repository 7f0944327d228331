"""Fake embedding models: request validation and deterministic vectors for the Titan InvokeModel bodies.

Text vectors are a hashed bag of features: every lower-cased word (weight 1) and the character trigrams of
``<word>`` (weight 0.25) go to one of ``dims`` buckets with a sign, both taken from a BLAKE2b hash, and the sum is
L2-normalised. Texts sharing words are therefore closer than unrelated texts, spelling variants share trigrams,
and the same text always gives the same vector, on every machine and run.
"""

from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache
from typing import Any

from mmrag.testing._base import ApiError, Limits, approx_tokens
from mmrag.testing._images import decode_base64, image_size, image_vector, sniff_format

__all__ = ["check_nova_common", "invoke_nova_mme", "invoke_titan_mm", "invoke_titan_text", "text_vector"]

_WORD = re.compile(r"\w+")
_TRIGRAM_WEIGHT = 0.25
_TEXT_V2_DIMS = (1024, 512, 256)
_MM_DIMS = (1024, 384, 256)


@lru_cache(maxsize=1 << 16)
def _hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")


def _add(vector: list[float], feature: str, weight: float) -> None:
    value = _hash(feature)
    vector[value % len(vector)] += weight if value >> 63 else -weight


def text_vector(text: str, dims: int, *, normalize: bool = True) -> list[float]:
    """The deterministic hashed bag-of-words vector of ``text`` (see the module docstring)."""
    vector = [0.0] * dims
    words = _WORD.findall(text.lower())
    for word in words:
        _add(vector, "w:" + word, 1.0)
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            _add(vector, "t:" + padded[i : i + 3], _TRIGRAM_WEIGHT)
    if not words:
        _add(vector, "s:" + text, 1.0)  # punctuation-only text still gets a stable, non-zero vector
    if not normalize:
        return vector
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _check_keys(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError.malformed("#: expected type: JSONObject, found: " + type(body).__name__)
    for key in body:
        if key not in allowed:
            raise ApiError.malformed(f"#: extraneous key [{key}] is not permitted")
    return body


def _check_text(body: dict[str, Any], *, max_chars: int | None, max_tokens: int, required: bool) -> str | None:
    if "inputText" not in body:
        if required:
            raise ApiError.malformed("#: required key [inputText] not found")
        return None
    text = body["inputText"]
    if not isinstance(text, str):
        raise ApiError.malformed(f"#/inputText: expected type: String, found: {type(text).__name__}")
    if not text:
        raise ApiError.malformed("#/inputText: expected minLength: 1, actual: 0")
    if max_chars is not None and len(text) > max_chars:
        raise ApiError.malformed(f"#/inputText: expected maxLength: {max_chars}, actual: {len(text)}")
    tokens = approx_tokens(text)
    if tokens > max_tokens:
        raise ApiError.validation(
            f"400 Bad Request: Too many input tokens. Max input tokens: {max_tokens}, "
            f"request input token count: {tokens}"
        )
    return text


def _check_enum(value: Any, allowed: tuple[int, ...], where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise ApiError.malformed(
            f"{where}: {value!r} is not a valid enum value (allowed: " + ", ".join(map(str, allowed)) + ")"
        )
    return value


def invoke_titan_text(body: Any, limits: Limits, *, v2: bool = True) -> tuple[dict[str, Any], int]:
    """Titan Text Embeddings V2 (``amazon.titan-embed-text-v2:0``) or G1 (``amazon.titan-embed-text-v1``).

    V2 body: ``{inputText, dimensions?: 256|512|1024 = 1024, normalize?: bool = true, embeddingTypes?: ["float",
    "binary"]}``; response ``{embedding, inputTextTokenCount, embeddingsByType}``. G1 body: ``{inputText}``;
    response ``{embedding (1536), inputTextTokenCount}``.

    Returns:
        The response body and the input token count.
    """
    allowed = {"inputText", "dimensions", "normalize", "embeddingTypes"} if v2 else {"inputText"}
    body = _check_keys(body, allowed)
    text = _check_text(
        body,
        max_chars=limits.titan_text_max_chars if v2 else None,
        max_tokens=limits.titan_text_max_tokens,
        required=True,
    )
    assert text is not None
    tokens = approx_tokens(text)
    if not v2:
        return {"embedding": text_vector(text, 1536), "inputTextTokenCount": tokens}, tokens
    dims = _check_enum(body.get("dimensions", 1024), _TEXT_V2_DIMS, "#/dimensions")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise ApiError.malformed(f"#/normalize: expected type: Boolean, found: {type(normalize).__name__}")
    types = body.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or any(t not in ("float", "binary") for t in types):
        raise ApiError.malformed(f'#/embeddingTypes: {types!r} is not a non-empty list of "float" and "binary"')
    vector = text_vector(text, dims, normalize=normalize)
    by_type: dict[str, list[Any]] = {}
    if "float" in types:
        by_type["float"] = vector
    if "binary" in types:
        by_type["binary"] = [1 if v > 0 else 0 for v in vector]
    return {"embedding": vector, "inputTextTokenCount": tokens, "embeddingsByType": by_type}, tokens


def invoke_titan_mm(body: Any, limits: Limits) -> tuple[dict[str, Any], int]:
    """Titan Multimodal Embeddings G1 (``amazon.titan-embed-image-v1``).

    Body: ``{inputText?, inputImage? (base64 PNG/JPEG), embeddingConfig?: {outputEmbeddingLength: 256|384|1024}}``,
    at least one of text and image. With both, the documented behaviour is one vector averaging the text and
    image embeddings: the emulator averages the two unit vectors and re-normalises.

    Returns:
        The response body ``{embedding, inputTextTokenCount}`` and the input token count.
    """
    body = _check_keys(body, {"inputText", "inputImage", "embeddingConfig"})
    config = body.get("embeddingConfig", {})
    if not isinstance(config, dict) or set(config) - {"outputEmbeddingLength"}:
        raise ApiError.malformed('#/embeddingConfig: expected {"outputEmbeddingLength": 256 | 384 | 1024}')
    dims = _check_enum(config.get("outputEmbeddingLength", 1024), _MM_DIMS, "#/embeddingConfig/outputEmbeddingLength")
    text = _check_text(body, max_chars=None, max_tokens=limits.mm_text_max_tokens, required=False)
    if text is None and "inputImage" not in body:
        raise ApiError.malformed("#: at least one of [inputText, inputImage] is required")
    vectors = [text_vector(text, dims)] if text is not None else []
    if "inputImage" in body:
        data = decode_base64(body["inputImage"], "#/inputImage")
        if len(data) > limits.mm_image_max_bytes:
            raise ApiError.validation(
                f"Input image size {len(data)} bytes exceeds the maximum of {limits.mm_image_max_bytes} bytes."
            )
        if sniff_format(data) not in ("png", "jpeg"):
            raise ApiError.validation("Unsupported image format: the input image must be a PNG or JPEG image.")
        width, height = image_size(data, "#/inputImage")
        if max(width, height) > limits.mm_image_max_side:
            raise ApiError.validation(
                f"Input image resolution {width}x{height} exceeds the maximum of "
                f"{limits.mm_image_max_side}x{limits.mm_image_max_side} pixels."
            )
        vectors.append(image_vector(data, dims, "#/inputImage"))
    joint = vectors[0] if len(vectors) == 1 else _normalise([(a + b) / 2 for a, b in zip(*vectors, strict=True)])
    tokens = approx_tokens(text) if text is not None else 0
    return {"embedding": joint, "inputTextTokenCount": tokens}, tokens


# Nova Multimodal Embeddings, synchronous InvokeModel ([nova-mme] in mmrag.providers.bedrock.catalog: "Complete
# embeddings request and response schema").
_NOVA_PURPOSES = ("GENERIC_INDEX", "GENERIC_RETRIEVAL", "TEXT_RETRIEVAL", "IMAGE_RETRIEVAL", "VIDEO_RETRIEVAL",
                  "DOCUMENT_RETRIEVAL", "AUDIO_RETRIEVAL", "CLASSIFICATION", "CLUSTERING")
_NOVA_DIMS = (3072, 1024, 384, 256)
_NOVA_MAX_TOKENS = 8_192


def _nova_enum(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ApiError.malformed(f"{where}: {value!r} is not a valid enum value (allowed: {', '.join(allowed)})")
    return str(value)


def check_nova_common(params: Any, where: str) -> int:
    """Check what single and segmented Nova parameters share (keys, ``embeddingPurpose``, ``embeddingDimension``,
    exactly one input); the dimension."""
    _check_keys(params, {"embeddingPurpose", "embeddingDimension", "text", "image", "audio", "video"})
    if "embeddingPurpose" not in params:
        raise ApiError.malformed(f"{where}: required key [embeddingPurpose] not found")
    _nova_enum(params["embeddingPurpose"], _NOVA_PURPOSES, f"{where}/embeddingPurpose")
    dims = _check_enum(params.get("embeddingDimension", 3072), _NOVA_DIMS, f"{where}/embeddingDimension")
    if len([k for k in ("text", "image", "audio", "video") if k in params]) != 1:
        raise ApiError.malformed(f"{where}: exactly one of [text, image, audio, video] is required")
    return dims


def invoke_nova_mme(body: Any, limits: Limits, s3: Any = None) -> tuple[dict[str, Any], int]:
    """Nova Multimodal Embeddings (``amazon.nova-2-multimodal-embeddings-v1:0``), ``SINGLE_EMBEDDING``.

    Body: ``{schemaVersion?: "nova-multimodal-embed-v1", taskType: "SINGLE_EMBEDDING", singleEmbeddingParams:
    {embeddingPurpose, embeddingDimension?: 3072|1024|384|256 = 3072, text?: {truncationMode: START|END|NONE,
    value}, image?: {detailLevel?: STANDARD_IMAGE|DOCUMENT_IMAGE, format: png|jpeg|gif|webp, source: {bytes}},
    audio?: {format, source}, video?: {format, source, embeddingMode}}}`` with exactly one input (audio and video:
    :mod:`mmrag.testing._nova_media`; ``s3`` reads their ``s3Location`` sources). Response: ``{embeddings:
    [{embeddingType, embedding, truncatedCharLength?}]}``.

    Returns:
        The response body and the input token count.
    """
    body = _check_keys(body, {"schemaVersion", "taskType", "singleEmbeddingParams"})
    if body.get("schemaVersion", "nova-multimodal-embed-v1") != "nova-multimodal-embed-v1":
        raise ApiError.malformed(f"#/schemaVersion: {body['schemaVersion']!r} is not a valid enum value")
    if "taskType" not in body:
        raise ApiError.malformed("#: required key [taskType] not found")
    if body["taskType"] != "SINGLE_EMBEDDING":
        raise ApiError.validation("taskType must be SINGLE_EMBEDDING for synchronous InvokeModel; use "
                                  "StartAsyncInvoke for SEGMENTED_EMBEDDING.")
    params = body.get("singleEmbeddingParams")
    if not isinstance(params, dict):
        raise ApiError.malformed("#: required key [singleEmbeddingParams] not found")
    dims = check_nova_common(params, "#/singleEmbeddingParams")
    inputs = [k for k in ("text", "image", "audio", "video") if k in params]
    if inputs[0] in ("audio", "video"):
        from mmrag.testing._nova_media import sync_media_embeddings

        return {"embeddings": sync_media_embeddings(params, inputs[0], dims, s3)}, 0
    item: dict[str, Any] = {}
    tokens = 0
    if inputs[0] == "text":
        text = _check_keys(params["text"], {"truncationMode", "value", "source"})
        mode = _nova_enum(text.get("truncationMode"), ("START", "END", "NONE"),
                          "#/singleEmbeddingParams/text/truncationMode")
        value = text.get("value")
        if not isinstance(value, str) or not value:
            raise ApiError.malformed("#/singleEmbeddingParams/text/value: expected a non-empty String")
        tokens = approx_tokens(value)
        if tokens > _NOVA_MAX_TOKENS:
            if mode == "NONE":
                raise ApiError.validation(f"Input text exceeds the maximum of {_NOVA_MAX_TOKENS} tokens "
                                          f"({tokens} tokens) and truncationMode is NONE.")
            from mmrag.providers.bedrock.catalog import truncate_to_tokens

            kept = truncate_to_tokens(value if mode == "END" else value[::-1], _NOVA_MAX_TOKENS)
            value = kept if mode == "END" else kept[::-1]
            item["truncatedCharLength"] = len(value)
            tokens = _NOVA_MAX_TOKENS
        item.update(embeddingType="TEXT", embedding=text_vector(value, dims))
    else:
        # https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html: "image": {"detailLevel":
        # "STANDARD_IMAGE" | "DOCUMENT_IMAGE", "format": "png" | "jpeg" | "gif" | "webp", "source": SourceObject}.
        image = _check_keys(params["image"], {"detailLevel", "format", "source"})
        _nova_enum(image.get("detailLevel", "STANDARD_IMAGE"), ("STANDARD_IMAGE", "DOCUMENT_IMAGE"),
                   "#/singleEmbeddingParams/image/detailLevel")
        fmt = _nova_enum(image.get("format"), ("png", "jpeg", "gif", "webp"), "#/singleEmbeddingParams/image/format")
        source = image.get("source")
        if not isinstance(source, dict) or set(source) != {"bytes"}:
            raise ApiError.malformed("#/singleEmbeddingParams/image/source: expected {\"bytes\": <base64>} "
                                     "(s3Location is not emulated)")
        data = decode_base64(source["bytes"], "#/singleEmbeddingParams/image/source/bytes")
        if sniff_format(data) != fmt:
            raise ApiError.validation(f"The image format {fmt} does not match the image bytes.")
        item.update(embeddingType="IMAGE", embedding=image_vector(data, dims, "#/singleEmbeddingParams/image"))
    return {"embeddings": [item]}, tokens
