"""Fake chat models: validation of Converse and Claude Messages bodies, replies, and response/stream shapes."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmrag.testing._base import ApiError, Limits, approx_tokens

if TYPE_CHECKING:
    from mmrag.providers.bedrock.catalog import ModelFacts
from mmrag.testing._eventstream import encode_event
from mmrag.testing._images import decode_base64, image_size, sniff_format
from mmrag.testing._strict import check_chat_body

__all__ = [
    "ChatTurn",
    "Reply",
    "claude_response",
    "converse_response",
    "converse_stream_events",
    "parse_claude",
    "parse_converse",
    "resolve_reply",
    "stopped",
]

Reply = str | dict[str, Any]
_TOKEN = re.compile(r"\w+|[^\w\s]")
_FORMATS = ("png", "jpeg", "gif", "webp")
_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_CLAUDE_KEYS = {
    "anthropic_version",
    "anthropic_beta",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "output_config",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
}


@dataclass
class ChatTurn:
    """What a chat request asks for, independent of the wire format."""

    max_tokens: int | None
    input_tokens: int = 0
    last_user_text: str = ""
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> JSON schema
    forced_tool: str | None = None
    output_schema: dict[str, Any] | None = None  # native structured output (outputConfig json_schema)
    token_factor: float = 1.0  # output tokens per text token (adaptive thinking models spend more)


@dataclass
class _Answer:
    text: str | None
    tool: str | None
    tool_input: Any
    stop_reason: str
    output_tokens: int


_MODEL_ERRORS = "The model returned the following errors: "


def _fail(where: str, problem: str) -> ApiError:
    return ApiError.validation(f"{where}: {problem}")


def _check_image(data: bytes, declared: str, where: str, limits: Limits) -> int:
    """Validate one chat image; return its approximate token cost (Anthropic: width * height / 750)."""
    if len(data) > limits.chat_image_max_bytes:
        raise _fail(where, f"image exceeds {limits.chat_image_max_bytes} bytes maximum ({len(data)} bytes)")
    actual = sniff_format(data)
    if actual is None:
        raise _fail(where, "Could not process image: the bytes are not a PNG, JPEG, GIF or WebP image")
    if actual != declared:
        raise _fail(
            where,
            f"The image was specified using the image/{declared} media type, "
            f"but the image appears to be a image/{actual} image",
        )
    width, height = image_size(data, where)
    if max(width, height) > limits.chat_image_max_side:
        raise _fail(
            where,
            f"image dimensions exceed max allowed size: {limits.chat_image_max_side} pixels (got {width}x{height})",
        )
    return min(1600, max(1, width * height // 750))


def _check_roles(roles: list[str]) -> None:
    if not roles:
        raise ApiError.validation(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    if roles[0] != "user":
        raise ApiError.validation(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    for role in roles:
        if role not in ("user", "assistant"):
            raise ApiError.validation(
                f"Value '{role}' at 'messages.member.role' failed to satisfy constraint: "
                "Member must satisfy enum value set: [user, assistant]"
            )
    if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        raise ApiError.validation(
            "A conversation must alternate between user and assistant roles. Make sure the "
            "conversation alternates between user and assistant roles and try again."
        )


def _check_max_tokens(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, f"must be a positive integer, got {value!r}")
    return value


def _check_unit(config: dict[str, Any], key: str, where: str) -> None:
    value = config.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
        raise _fail(f"{where}.{key}", f"must be between 0 and 1, got {value!r}")


def check_model_params(
    facts: ModelFacts | None,
    *,
    max_tokens: int | None,
    temperature: bool,
    top_p: bool,
    forced_tool: bool,
    structured: bool,
) -> None:
    """Reject what the model rejects (facts from :mod:`mmrag.providers.bedrock.catalog`), worded as the service."""
    if facts is None:
        return
    limit = facts.max_output_tokens
    if limit is not None and max_tokens is not None and max_tokens > limit:
        raise ApiError.validation(
            f"The maximum tokens you requested exceeds the model limit of {limit}. Try again with a maximum tokens "
            f"value that is lower than {limit}."
        )
    # The wording of the next three is what Bedrock returns, as users quote it: the model's own message behind
    # "The model returned the following errors: " (temperature: cline/cline#10572, promptfoo/promptfoo#10307;
    # temperature with top_p: BerriAI/litellm#15070, aws-samples/bedrock-access-gateway#191; forced tool choice
    # while the model thinks: strands-agents/harness-sdk#1495, "manually verified against Bedrock").
    if temperature and not facts.temperature:
        raise ApiError.validation(f"{_MODEL_ERRORS}`temperature` is deprecated for this model.")
    if temperature and top_p and facts.temperature_xor_top_p:
        raise ApiError.validation(
            f"{_MODEL_ERRORS}`temperature` and `top_p` cannot both be specified for this model. Please use only one."
        )
    if forced_tool and not facts.forced_tool_choice:
        raise ApiError.validation(f"{_MODEL_ERRORS}Thinking may not be enabled when tool_choice forces tool use.")
    if structured and not facts.structured_output:
        raise ApiError.validation("This model does not support structured output (outputConfig.textFormat).")


def _output_schema(config: Any, where: str) -> dict[str, Any] | None:
    """The JSON schema of ``outputConfig.textFormat`` / ``output_config.format`` (json_schema), if any."""
    if not config:
        return None
    fmt = config.get("textFormat") or config.get("format") or {}
    if fmt.get("type") != "json_schema":
        raise _fail(f"{where}.textFormat.type", f"must be 'json_schema', got {fmt.get('type')!r}")
    spec = (fmt.get("structure") or {}).get("jsonSchema") or fmt
    schema = spec.get("schema")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise _fail(f"{where}.jsonSchema.schema", f"is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise _fail(f"{where}.jsonSchema.schema", "must be a JSON schema object")
    return schema


def parse_converse(
    body: Any, limits: Limits, *, require_max_tokens: bool, facts: ModelFacts | None = None
) -> ChatTurn:
    """Validate a Converse / ConverseStream body and summarise it.

    Raises:
        ApiError: ValidationException, worded like the service where its wording is known.
    """
    if not isinstance(body, dict):
        raise ApiError.validation("Malformed request body: expected a JSON object.")
    config = body.get("inferenceConfig") or {}
    if "maxTokens" not in config:
        if require_max_tokens:
            raise ApiError.validation(
                "mmrag emulator: inferenceConfig.maxTokens is required: every mmrag call sets it (real Bedrock "
                "defaults to the model maximum). Pass maxTokens, or BedrockEmulator(require_max_tokens=False)."
            )
        max_tokens = None
    else:
        max_tokens = _check_max_tokens(config["maxTokens"], "inferenceConfig.maxTokens")
    _check_unit(config, "temperature", "inferenceConfig")
    _check_unit(config, "topP", "inferenceConfig")
    turn = ChatTurn(max_tokens=max_tokens, token_factor=facts.token_factor if facts else 1.0)
    turn.output_schema = _output_schema(body.get("outputConfig"), "outputConfig")
    texts = [block.get("text", "") for block in body.get("system") or [] if isinstance(block, dict)]
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ApiError.validation("messages: expected a list of messages.")
    roles, images = [], 0
    for i, message in enumerate(messages):
        roles.append(message.get("role"))
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise _fail(f"messages.{i}.content", "must be a non-empty list of content blocks")
        for j, block in enumerate(content):
            if "text" in block:
                texts.append(block["text"])
                if message.get("role") == "user":
                    turn.last_user_text = block["text"]
            elif "image" in block:
                where = f"messages.{i}.content.{j}.image"
                image = block["image"]
                if message.get("role") != "user":
                    raise _fail(where, "images are only allowed in messages whose role is user")
                fmt = image.get("format")
                if fmt not in _FORMATS:
                    raise ApiError.validation(
                        f"1 validation error detected: Value '{fmt}' at '{where}.format' "
                        "failed to satisfy constraint: Member must satisfy enum value set: "
                        "[png, jpeg, gif, webp]"
                    )
                images += 1
                if images > limits.chat_max_images:
                    raise _fail("messages", f"too many images: at most {limits.chat_max_images} images per request")
                data = decode_base64((image.get("source") or {}).get("bytes"), f"{where}.source.bytes")
                turn.input_tokens += _check_image(data, fmt, f"{where}.source.bytes", limits)
    _check_roles(roles)
    turn.input_tokens += sum(approx_tokens(t) for t in texts if isinstance(t, str))
    tool_config = body.get("toolConfig") or {}
    for tool in tool_config.get("tools") or []:
        spec = tool.get("toolSpec")
        if spec:
            turn.tools[spec["name"]] = (spec.get("inputSchema") or {}).get("json") or {}
    choice = tool_config.get("toolChoice") or {}
    if "tool" in choice:
        turn.forced_tool = choice["tool"].get("name")
    elif "any" in choice and turn.tools:
        turn.forced_tool = next(iter(turn.tools))
    if turn.forced_tool is not None and turn.forced_tool not in turn.tools:
        raise _fail("toolConfig.toolChoice.tool.name", f"tool {turn.forced_tool!r} is not in toolConfig.tools")
    check_model_params(facts, max_tokens=max_tokens, temperature="temperature" in config, top_p="topP" in config,
                       forced_tool="tool" in choice or "any" in choice, structured=turn.output_schema is not None)
    check_chat_body(body, facts, converse=True, max_tokens=max_tokens, input_tokens=turn.input_tokens)
    return turn


def parse_claude(body: Any, limits: Limits, facts: ModelFacts | None = None) -> ChatTurn:
    """Validate an Anthropic Claude Messages body sent through InvokeModel and summarise it."""
    if not isinstance(body, dict):
        raise ApiError.malformed("#: expected type: JSONObject")
    for key in body:
        if key not in _CLAUDE_KEYS:
            raise ApiError.malformed(f"#: extraneous key [{key}] is not permitted")
    for key in ("anthropic_version", "max_tokens", "messages"):
        if key not in body:
            raise ApiError.malformed(f"#: required key [{key}] not found")
    if body["anthropic_version"] != _ANTHROPIC_VERSION:
        raise ApiError.validation(
            f"invalid anthropic_version {body['anthropic_version']!r}: use {_ANTHROPIC_VERSION!r}"
        )
    turn = ChatTurn(max_tokens=_check_max_tokens(body["max_tokens"], "max_tokens"),
                    token_factor=facts.token_factor if facts else 1.0)
    turn.output_schema = _output_schema(body.get("output_config"), "output_config")
    _check_unit(body, "temperature", "#")
    _check_unit(body, "top_p", "#")
    system = body.get("system", "")
    texts = [system] if isinstance(system, str) else [b.get("text", "") for b in system if isinstance(b, dict)]
    roles, images = [], 0
    for i, message in enumerate(body["messages"]):
        roles.append(message.get("role"))
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            raise _fail(f"messages.{i}.content", "must be a string or a non-empty list of content blocks")
        for j, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
                if message.get("role") == "user":
                    turn.last_user_text = block.get("text", "")
            elif kind == "image":
                where = f"messages.{i}.content.{j}.image.source.base64"
                if message.get("role") != "user":
                    raise _fail(where, "images are only allowed in user messages")
                source = block.get("source") or {}
                media_type = source.get("media_type")
                if source.get("type") != "base64" or media_type not in [f"image/{f}" for f in _FORMATS]:
                    raise _fail(
                        f"{where}.media_type",
                        "Input should be 'image/jpeg', 'image/png', 'image/gif' "
                        "or 'image/webp' with source type 'base64'",
                    )
                images += 1
                if images > limits.chat_max_images:
                    raise _fail("messages", f"too many images: at most {limits.chat_max_images} images per request")
                data = decode_base64(source.get("data"), f"{where}.data")
                turn.input_tokens += _check_image(data, media_type.split("/", 1)[1], where, limits)
    _check_roles(roles)
    turn.input_tokens += sum(approx_tokens(t) for t in texts if isinstance(t, str))
    for tool in body.get("tools") or []:
        if "name" in tool:
            turn.tools[tool["name"]] = tool.get("input_schema") or {}
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        turn.forced_tool = choice.get("name")
    elif choice.get("type") == "any" and turn.tools:
        turn.forced_tool = next(iter(turn.tools))
    if turn.forced_tool is not None and turn.forced_tool not in turn.tools:
        raise _fail("tool_choice.name", f"tool {turn.forced_tool!r} is not in tools")
    check_model_params(facts, max_tokens=turn.max_tokens, temperature="temperature" in body, top_p="top_p" in body,
                       forced_tool=choice.get("type") in ("any", "tool"), structured=turn.output_schema is not None)
    check_chat_body(body, facts, converse=False, max_tokens=turn.max_tokens, input_tokens=turn.input_tokens)
    return turn


def _fake_from_schema(schema: dict[str, Any], root: dict[str, Any], hint: str, depth: int = 0) -> Any:
    """A minimal value satisfying a JSON schema, for unscripted replies to a forced tool."""
    if depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _fake_from_schema(target, root, hint, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _fake_from_schema(schema[key][0], root, hint, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: _fake_from_schema(props[k], root, hint, depth + 1) for k in required if k in props}
    if kind == "array":
        item = _fake_from_schema(schema.get("items") or {}, root, hint, depth + 1)
        return [item] * int(schema.get("minItems", 0))
    return {"integer": 0, "number": 0.0, "boolean": False, "null": None}.get(kind, hint)


def resolve_reply(reply: Reply | None, turn: ChatTurn) -> _Answer:
    """Turn a scripted reply (or None: the default echo) into the answer the model gives."""
    echo = f"Emulated reply to: {turn.last_user_text[:100]}"
    if reply is None and turn.forced_tool is not None:
        schema = turn.tools[turn.forced_tool]
        reply = {"tool": turn.forced_tool, "input": _fake_from_schema(schema, schema, echo)}
    if reply is None and turn.output_schema is not None:
        reply = json.dumps(_fake_from_schema(turn.output_schema, turn.output_schema, echo))
    if isinstance(reply, dict) and turn.output_schema is not None and reply.get("tool") not in turn.tools:
        reply = json.dumps(reply.get("input", {}))  # a scripted tool call answers a structured-output request as JSON
    if reply is None:
        reply = echo
    if isinstance(reply, dict):
        name = reply.get("tool")
        if name not in turn.tools:
            raise ApiError.validation(
                f"mmrag emulator: the scripted reply calls tool {name!r}, but the request "
                f"offers tools {sorted(turn.tools)}; fix the script or the request."
            )
        tool_input = reply.get("input", {})
        return _Answer(None, name, tool_input, "tool_use", max(1, approx_tokens(json.dumps(tool_input))))
    text, stop = reply, "end_turn"
    tokens = list(_TOKEN.finditer(text))
    # Adaptive-thinking models spend ``token_factor`` output tokens per text token (thinking + tokenizer).
    cost = max(1, int(len(tokens) * turn.token_factor + 0.999)) if tokens else 1
    if turn.max_tokens is not None and cost > turn.max_tokens:
        kept = int(turn.max_tokens / turn.token_factor)
        text, stop = (text[: tokens[kept - 1].end()] if kept > 0 else ""), "max_tokens"
        cost = turn.max_tokens
    return _Answer(text, None, None, stop, cost)


def stopped(answer: _Answer, stop_reason: str, text: str | None) -> _Answer:
    """``answer`` ended by ``stop_reason``: with ``text`` in place of its own, else the first half of its text."""
    from dataclasses import replace

    own = answer.text or ""
    cut = own[: len(own) // 2].rstrip() if text is None else text
    return replace(answer, text=cut, tool=None, tool_input=None, stop_reason=stop_reason,
                   output_tokens=max(1, approx_tokens(cut)))


def _tool_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:22]


def converse_response(answer: _Answer, turn: ChatTurn, latency_ms: int) -> dict[str, Any]:
    """The Converse response body."""
    if answer.tool is not None:
        block: dict[str, Any] = {
            "toolUse": {"toolUseId": _tool_id("tooluse_"), "name": answer.tool, "input": answer.tool_input}
        }
    else:
        block = {"text": answer.text}
    return {
        "output": {"message": {"role": "assistant", "content": [block]}},
        "stopReason": answer.stop_reason,
        "usage": _usage(turn, answer),
        "metrics": {"latencyMs": latency_ms},
    }


def _usage(turn: ChatTurn, answer: _Answer) -> dict[str, int]:
    return {
        "inputTokens": turn.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": turn.input_tokens + answer.output_tokens,
    }


def _text_chunks(text: str, words_per_chunk: int = 2) -> list[str]:
    pieces = re.split(r"(?<=\s)(?=\S)", text)
    return ["".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)] or [""]


def converse_stream_events(answer: _Answer, turn: ChatTurn, latency_ms: int) -> list[bytes]:
    """The ConverseStream events, framed: messageStart, content block events, messageStop, metadata."""
    events = [encode_event("messageStart", {"role": "assistant"})]
    if answer.tool is not None:
        start = {"toolUse": {"toolUseId": _tool_id("tooluse_"), "name": answer.tool}}
        events.append(encode_event("contentBlockStart", {"start": start, "contentBlockIndex": 0}))
        raw = json.dumps(answer.tool_input)
        for i in range(0, len(raw), 16):
            delta = {"toolUse": {"input": raw[i : i + 16]}}
            events.append(encode_event("contentBlockDelta", {"delta": delta, "contentBlockIndex": 0}))
    else:
        for chunk in _text_chunks(answer.text or ""):
            events.append(encode_event("contentBlockDelta", {"delta": {"text": chunk}, "contentBlockIndex": 0}))
    events.append(encode_event("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(encode_event("messageStop", {"stopReason": answer.stop_reason}))
    events.append(encode_event("metadata", {"usage": _usage(turn, answer), "metrics": {"latencyMs": latency_ms}}))
    return events


def claude_response(answer: _Answer, turn: ChatTurn, base_model_id: str) -> dict[str, Any]:
    """The Anthropic Messages response body for InvokeModel."""
    if answer.tool is not None:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": _tool_id("toolu_bdrk_"),
            "name": answer.tool,
            "input": answer.tool_input,
        }
    else:
        block = {"type": "text", "text": answer.text}
    model = re.sub(r"^anthropic\.|-v\d+(:\d+)?$", "", base_model_id)
    return {
        "id": _tool_id("msg_bdrk_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": answer.stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": turn.input_tokens, "output_tokens": answer.output_tokens},
    }
