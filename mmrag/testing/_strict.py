"""More of what Bedrock rejects in a chat request, for Converse / ConverseStream and Claude Messages bodies.

Each check cites where the rule (and, where known, the wording) comes from:

- [converse]  Bedrock API reference, Converse, ``ContentBlock`` / ``Message``: a text block must not be blank
  (the service answers "The text field in the ContentBlock object at messages.N.content.M is blank. Add text to
  the text field, and try again."); ``DocumentBlock``: format pdf | csv | doc | docx | xls | xlsx | html | txt | md,
  ``name`` and ``source.bytes`` required.
- [tools]     Anthropic, "Tool use" (Messages API): every ``tool_result`` must answer a ``tool_use`` of the
  previous assistant turn ("unexpected `tool_use_id` found in `tool_result` blocks ... Each `tool_result` block
  must have a corresponding `tool_use` block in the previous message.").
- [thinking]  Anthropic, "Extended thinking": ``budget_tokens`` >= 1024 and below ``max_tokens``; with thinking on,
  ``temperature`` may only be 1 and ``top_k`` is not allowed.
- [prefill]   Anthropic, "Migrating to Claude 4.6" / model overview: Sonnet 4.6, Opus 4.6 and later reject a final
  assistant message ("This model does not support assistant message prefill. The conversation must end with a
  user message.").
- [sampling]  Models that reject ``temperature`` (catalog ``temperature=False``) reject ``top_p`` and ``top_k``
  alike ("`top_k` is deprecated for this model").
- [context]   Bedrock answers "Input is too long for requested model." to a prompt over the context window
  (catalog ``max_input_tokens``).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from mmrag.testing._base import ApiError

if TYPE_CHECKING:
    from mmrag.providers.bedrock.catalog import ModelFacts

__all__ = ["check_chat_body"]

_MODEL_ERRORS = "The model returned the following errors: "
_DOC_FORMATS = ("pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md")
_MAGIC = {"pdf": (b"%PDF-",), "docx": (b"PK\x03\x04",), "xlsx": (b"PK\x03\x04",),
          "doc": (b"\xd0\xcf\x11\xe0",), "xls": (b"\xd0\xcf\x11\xe0",)}


def _blocks(message: dict[str, Any], converse: bool) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"text": content} if converse else {"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _text_of(block: dict[str, Any], converse: bool) -> str | None:
    if converse:
        return block.get("text")
    return block.get("text") if block.get("type") == "text" else None


def _check_document(doc: Any, where: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") not in _DOC_FORMATS:
        raise ApiError.validation(f"1 validation error detected: Value at '{where}.format' failed to satisfy "
                                  f"constraint: Member must satisfy enum value set: [{', '.join(_DOC_FORMATS)}]")
    if not doc.get("name"):
        raise ApiError.validation(f"{where}.name: a document needs a name.")
    raw = (doc.get("source") or {}).get("bytes")
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError):
        data = b""
    magic = _MAGIC.get(doc["format"])
    if not data or (magic is not None and not data.startswith(magic)):
        raise ApiError.validation(f"{_MODEL_ERRORS}Unable to process the document at {where}: the bytes are not a "
                                  f"valid {doc['format']} file.")


def _tool_ids(block: dict[str, Any], converse: bool, kind: str) -> str | None:
    if converse:
        inner = block.get("toolUse" if kind == "use" else "toolResult")
        return str(inner.get("toolUseId")) if isinstance(inner, dict) else None
    if block.get("type") == ("tool_use" if kind == "use" else "tool_result"):
        return str(block.get("id" if kind == "use" else "tool_use_id"))
    return None


def check_chat_body(body: dict[str, Any], facts: ModelFacts | None, *, converse: bool, max_tokens: int | None,
                    input_tokens: int) -> None:
    """Reject what the service rejects beyond roles, images and parameters (checked in ``_chat``).

    Raises:
        ApiError: a ValidationException, worded as the service where the wording is known.
    """
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    system = body.get("system")
    if converse and isinstance(system, list):
        for i, block in enumerate(system):
            if isinstance(block, dict) and "text" in block and not str(block["text"]).strip():
                raise ApiError.validation(f"The text field in the SystemContentBlock object at system.{i} is blank. "
                                          "Add text to the text field, and try again.")
    previous_uses: set[str] = set()
    for i, message in enumerate(messages):
        uses: set[str] = set()
        for j, block in enumerate(_blocks(message, converse)):
            where = f"messages.{i}.content.{j}"
            text = _text_of(block, converse)
            if text is not None and not str(text).strip():  # [converse]
                raise ApiError.validation(f"The text field in the ContentBlock object at {where} is blank. Add text "
                                          "to the text field, and try again.")
            if converse and "document" in block:
                _check_document(block["document"], f"{where}.document")
            elif not converse and block.get("type") == "document":
                source = block.get("source") or {}
                _check_document({"format": "pdf" if source.get("media_type") == "application/pdf" else "txt",
                                 "name": "document", "source": {"bytes": source.get("data")}}, f"{where}.document")
            used = _tool_ids(block, converse, "use")
            if used is not None:
                uses.add(used)
            answered = _tool_ids(block, converse, "result")
            if answered is not None and answered not in previous_uses:  # [tools]
                raise ApiError.validation(
                    f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {answered}. Each "
                    "`tool_result` block must have a corresponding `tool_use` block in the previous message.")
        previous_uses = uses if message.get("role") == "assistant" else set()
    if facts is None:
        return
    if messages and messages[-1].get("role") == "assistant" and not facts.prefill:  # [prefill]
        raise ApiError.validation(f"{_MODEL_ERRORS}This model does not support assistant message prefill. The "
                                  "conversation must end with a user message.")
    extra = (body.get("additionalModelRequestFields") or {}) if converse else body
    config = (body.get("inferenceConfig") or {}) if converse else body
    if not facts.temperature:  # [sampling]
        if "top_k" in extra:
            raise ApiError.validation(f"{_MODEL_ERRORS}`top_k` is deprecated for this model.")
        if ("topP" if converse else "top_p") in config:
            raise ApiError.validation(f"{_MODEL_ERRORS}`top_p` is deprecated for this model.")
    thinking = extra.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":  # [thinking]
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise ApiError.validation(f"{_MODEL_ERRORS}thinking.enabled.budget_tokens: Input should be greater "
                                      "than or equal to 1024")
        if max_tokens is not None and budget >= max_tokens:
            raise ApiError.validation(f"{_MODEL_ERRORS}`max_tokens` must be greater than `thinking.budget_tokens`.")
        temperature = config.get("temperature")
        if temperature is not None and temperature != 1:
            raise ApiError.validation(f"{_MODEL_ERRORS}`temperature` may only be set to 1 when thinking is enabled.")
        if "top_k" in extra:
            raise ApiError.validation(f"{_MODEL_ERRORS}`top_k` may not be set when thinking is enabled.")
    if facts.max_input_tokens is not None and input_tokens > facts.max_input_tokens:  # [context]
        raise ApiError.validation("Input is too long for requested model.")
