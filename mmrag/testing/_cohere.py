"""The emulator's Cohere Embed v4 (``cohere.embed-v4:0``): request validation and deterministic vectors.

Schema: Bedrock user guide, "Cohere Embed v4" (https://docs.aws.amazon.com/bedrock/latest/userguide/
model-parameters-embed-v4.html)::

    {"input_type": "search_document" | "search_query" | "classification" | "clustering",   (required)
     "texts": [...] | "images": ["data:<mime>;base64,..."] | "inputs": [{"content": [{"type": "text", "text"} |
                                                                  {"type": "image_url", "image_url"}]}],
     "embedding_types": ["float" | "int8" | "uint8" | "binary" | "ubinary"],
     "output_dimension": 256 | 512 | 1024 | 1536, "max_tokens": 128000, "truncate": "NONE" | "LEFT" | "RIGHT"}

One of texts / images / inputs per call ("do not send texts and images in the same call"), at most 96 items. The
response follows Cohere's embed API: with ``embedding_types``, ``{"id", "embeddings": {"float": [[...]]},
"response_type": "embeddings_by_type", "texts"}``; without, ``{"id", "embeddings": [[...]], "response_type":
"embeddings_floats", "texts"}``. Text vectors are :func:`~mmrag.testing._models.text_vector`, images
:func:`~mmrag.testing._images.image_vector`; interleaved content averages its parts and re-normalises.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from mmrag.testing._base import ApiError, approx_tokens
from mmrag.testing._images import decode_base64, image_size, image_vector, sniff_format

__all__ = ["invoke_cohere_embed_v4"]

_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
_DIMS = (256, 512, 1024, 1536)
_TYPES = ("float", "int8", "uint8", "binary", "ubinary")
_MAX_ITEMS = 96
_MAX_TOKENS = 128_000
_MIME = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


def _image_meta(uri: str, where: str) -> dict[str, Any]:
    """The response's ``images`` entry of one input image (Cohere API reference, Embed v2, response ``images``:
    width, height, format, bit_depth, as the model received it)."""
    mime, _, payload = uri[len("data:"):].partition(";base64,")
    width, height = image_size(decode_base64(payload, where), where)
    return {"width": width, "height": height, "format": _MIME[mime], "bit_depth": 8}


def _image(uri: Any, where: str, dims: int) -> list[float]:
    if not isinstance(uri, str) or not uri.startswith("data:") or ";base64," not in uri:
        raise ApiError.malformed(f"{where}: expected a data URI (data:<mime>;base64,...)")
    mime, _, payload = uri[len("data:"):].partition(";base64,")
    if mime not in _MIME:
        raise ApiError.validation(f"{where}: unsupported image type {mime!r}.")
    data = decode_base64(payload, where)
    if sniff_format(data) != _MIME[mime]:
        raise ApiError.validation(f"{where}: the image bytes are not {mime}.")
    return image_vector(data, dims, where)


def _text(text: Any, where: str, dims: int, truncate: str) -> tuple[list[float], int]:
    from mmrag.testing._models import text_vector

    if not isinstance(text, str) or not text:
        raise ApiError.malformed(f"{where}: expected a non-empty String")
    tokens = approx_tokens(text)
    if tokens > _MAX_TOKENS and truncate == "NONE":
        raise ApiError.validation(f"{where}: input of {tokens} tokens exceeds the maximum of {_MAX_TOKENS} tokens.")
    return text_vector(text, dims), min(tokens, _MAX_TOKENS)


def _mean(vectors: list[list[float]]) -> list[float]:
    joint = [sum(values) / len(vectors) for values in zip(*vectors, strict=True)]
    norm = math.sqrt(sum(v * v for v in joint)) or 1.0
    return [v / norm for v in joint]


def invoke_cohere_embed_v4(body: Any) -> tuple[dict[str, Any], int]:
    """One InvokeModel call of Cohere Embed v4.

    Returns:
        The response body and the input token count.
    """
    if not isinstance(body, dict):
        raise ApiError.malformed("#: expected type: JSONObject")
    allowed = {"input_type", "texts", "images", "inputs", "embedding_types", "output_dimension", "max_tokens",
               "truncate"}
    for key in body:
        if key not in allowed:
            raise ApiError.malformed(f"#: extraneous key [{key}] is not permitted")
    if body.get("input_type") not in _INPUT_TYPES:
        raise ApiError.malformed(f"#/input_type: {body.get('input_type')!r} is not one of {', '.join(_INPUT_TYPES)}")
    dims = body.get("output_dimension", 1536)
    if isinstance(dims, bool) or dims not in _DIMS:
        raise ApiError.malformed(f"#/output_dimension: {dims!r} is not one of 256, 512, 1024, 1536")
    types = body.get("embedding_types")
    if types is not None and (not isinstance(types, list) or not types or any(t not in _TYPES for t in types)):
        raise ApiError.malformed(f"#/embedding_types: {types!r} is not a list of {', '.join(_TYPES)}")
    if types is not None and types != ["float"]:
        raise ApiError.validation("mmrag emulator: only float embeddings are emulated.")
    truncate = body.get("truncate", "NONE")
    if truncate not in ("NONE", "LEFT", "RIGHT"):
        raise ApiError.malformed(f"#/truncate: {truncate!r} is not one of NONE, LEFT, RIGHT")
    given = [k for k in ("texts", "images", "inputs") if k in body]
    if len(given) != 1:
        raise ApiError.validation("Exactly one of texts, images or inputs must be provided.")
    items = body[given[0]]
    if not isinstance(items, list) or not items or len(items) > _MAX_ITEMS:
        raise ApiError.malformed(f"#/{given[0]}: expected 1 to {_MAX_ITEMS} items")
    vectors: list[list[float]] = []
    tokens = 0
    for n, item in enumerate(items):
        where = f"#/{given[0]}/{n}"
        if given[0] == "texts":
            vector, used = _text(item, where, dims, truncate)
            vectors.append(vector)
            tokens += used
        elif given[0] == "images":
            vectors.append(_image(item, where, dims))
        else:
            content = item.get("content") if isinstance(item, dict) and set(item) == {"content"} else None
            if not isinstance(content, list) or not content:
                raise ApiError.malformed(f"{where}: expected {{\"content\": [parts]}}")
            parts: list[list[float]] = []
            for m, part in enumerate(content):
                at = f"{where}/content/{m}"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and set(part) == {"type", "text"}:
                    vector, used = _text(part["text"], at + "/text", dims, truncate)
                    parts.append(vector)
                    tokens += used
                elif kind == "image_url" and set(part) == {"type", "image_url"}:
                    parts.append(_image(part["image_url"], at + "/image_url", dims))
                else:
                    raise ApiError.malformed(f"{at}: expected {{type: text, text}} or {{type: image_url, image_url}}")
            vectors.append(_mean(parts))
    request_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
    texts = [t for t in items if isinstance(t, str)] if given[0] == "texts" else []
    extra: dict[str, Any] = {}
    if given[0] == "images":
        extra["images"] = [_image_meta(item, f"#/images/{n}") for n, item in enumerate(items)]
    if types is None:
        return {"id": request_id, "embeddings": vectors, "response_type": "embeddings_floats", "texts": texts,
                **extra}, tokens
    return {"id": request_id, "embeddings": {"float": vectors}, "response_type": "embeddings_by_type",
            "texts": texts, **extra}, tokens
