"""Encoder for the AWS event-stream framing (``application/vnd.amazon.eventstream``).

Each message is::

    prelude  total length (uint32 BE) | headers length (uint32 BE) | CRC32 of those 8 bytes (uint32 BE)
    headers  repeated: name length (uint8) | name | value type (uint8) | value
    payload  raw bytes (JSON here)
    trailer  CRC32 of everything before it (uint32 BE)

Only header value type 7 (string, uint16 BE length) is needed by Bedrock, so only that one is written.
botocore's ``EventStreamBuffer`` is the reference decoder; the tests decode what this module writes with it.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

__all__ = ["encode_event", "encode_exception", "encode_message"]

_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def _encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        if len(raw_name) > 255 or len(raw_value) > 65535:
            raise ValueError(f"event-stream header too long: {name!r}")
        out += bytes([len(raw_name)]) + raw_name + bytes([_STRING]) + struct.pack(">H", len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """Frame one event-stream message.

    Args:
        headers: string-valued headers, e.g. ``{":event-type": "messageStart", ...}``.
        payload: message body.

    Returns:
        The framed bytes, CRCs included.
    """
    raw_headers = _encode_headers(headers)
    total = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + _CRC.pack(zlib.crc32(prelude)) + raw_headers + payload
    return head + _CRC.pack(zlib.crc32(head))


def encode_event(event_type: str, body: dict[str, Any]) -> bytes:
    """Frame a normal event (``:message-type`` ``event``) with a JSON payload."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(body).encode())


def encode_exception(exception_type: str, message: str) -> bytes:
    """Frame a modelled exception (``:message-type`` ``exception``), as Bedrock sends mid-stream.

    Args:
        exception_type: the member name in the stream's union, lower camel case (``throttlingException``).
        message: human-readable text, sent as ``{"message": ...}``.
    """
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())
