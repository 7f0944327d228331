"""Public value types of the emulator: injected faults and recorded requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

__all__ = ["FAULT_ERRORS", "STOP_FAULTS", "Fault", "FaultKind", "RecordedRequest", "matches"]

FaultKind = Literal[
    "throttle",
    "model_not_ready",
    "server_error",
    "unavailable",
    "model_timeout",
    "timeout",
    "stream_throttle",
    "stream_error",
    "access_denied",
    "quota_exceeded",
    "model_error",
    "validation",
    "guardrail_intervened",
    "content_filtered",
    "model_context_window_exceeded",
]

# Faults that are not errors: HTTP 200 and a Converse / ConverseStream answer whose ``stopReason`` is the kind
# (Bedrock API reference, Converse, "stopReason": ... guardrail_intervened | content_filtered |
# model_context_window_exceeded). kind -> the text the answer carries (None: the first half of the reply).
# A guardrail replaces the output with its blocked message; the console's default is the one below (Bedrock user
# guide, "Create your guardrail": "Sorry, the model cannot answer this question.").
STOP_FAULTS: dict[str, str | None] = {
    "guardrail_intervened": "Sorry, the model cannot answer this question.",
    "content_filtered": None,
    "model_context_window_exceeded": None,
}

# kind -> (HTTP status, error code, message); message texts follow what the service sends.
FAULT_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "model_not_ready": (
        429,
        "ModelNotReadyException",
        "Model is not ready to serve inference requests. Wait and try your request again.",
    ),
    "server_error": (
        500,
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    "unavailable": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    "model_timeout": (
        408,
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    # Bedrock Runtime API reference, "Common errors" and InvokeModel "Errors": status, code and message shape.
    "access_denied": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "quota_exceeded": (
        400,
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account. You can view your quotas at "
        "https://docs.aws.amazon.com/servicequotas/latest/userguide/gs-request-quota.html.",
    ),
    "model_error": (424, "ModelErrorException", "The model returned an error while processing the request."),
    # Bedrock Runtime API reference, "Common errors": 400 ValidationException, "The input fails to satisfy the
    # constraints specified by an AWS service" (what a request the model rejects gets; pass ``message=``).
    "validation": (400, "ValidationException", "The input fails to satisfy the constraints specified by an AWS "
                   "service."),
    # Mid-stream exceptions carry the union member name, lower camel case, in ``:exception-type``.
    "stream_throttle": (200, "throttlingException", "Too many tokens, please wait before trying again."),
    "stream_error": (200, "modelStreamErrorException", "The model stream was interrupted. Try your request again."),
}


def matches(pattern: str, *values: str | None) -> bool:
    """Whether an fnmatch pattern matches any of the values (case-sensitive)."""
    return any(v is not None and fnmatchcase(v, pattern) for v in values)


@dataclass(frozen=True)
class Fault:
    """A fault the emulator injects into matching requests.

    Args:
        kind: ``throttle`` (429 ThrottlingException), ``model_not_ready`` (429 ModelNotReadyException),
            ``server_error`` (500 InternalServerException), ``unavailable`` (503 ServiceUnavailableException),
            ``model_timeout`` (408 ModelTimeoutException), ``timeout`` (sleep ``seconds``, then answer normally:
            pair it with a client ``read_timeout`` to see a client-side timeout), ``stream_throttle`` (HTTP 200,
            then a ``throttlingException`` event inside a ConverseStream after ``after_events`` events) or
            ``stream_error`` (the same with ``modelStreamErrorException``), ``access_denied`` (403
            AccessDeniedException: model access not enabled), ``quota_exceeded`` (400
            ServiceQuotaExceededException), ``model_error`` (424 ModelErrorException) or ``validation`` (400
            ValidationException: a request the model rejects; not retried). Stream kinds only match
            ConverseStream. ``guardrail_intervened``, ``content_filtered`` and ``model_context_window_exceeded``
            answer HTTP 200 with that ``stopReason`` (Converse and ConverseStream): the guardrail's blocked message
            (or ``message``), else the first half of the reply.
        times: how many matching requests fail; None for every one.
        model: fnmatch pattern over the model id as sent and the resolved base model id (so ``anthropic.*``
            also matches ``us.anthropic.claude-...``).
        operation: fnmatch pattern over ``InvokeModel``, ``Converse``, ``ConverseStream``.
        seconds: delay for ``timeout``.
        after_events: events sent before a stream fault (2: ``messageStart`` and the first text delta).
        message: override of the error message.
    """

    kind: FaultKind
    times: int | None = 1
    model: str = "*"
    operation: str = "*"
    seconds: float = 0.0
    after_events: int = 2
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_ERRORS and self.kind not in STOP_FAULTS and self.kind != "timeout":
            kinds = sorted([*FAULT_ERRORS, *STOP_FAULTS, "timeout"])
            raise ValueError(f"unknown fault kind {self.kind!r}: use one of {kinds}")
        if self.times is not None and self.times < 1:
            raise ValueError("Fault.times must be >= 1, or None for every matching request")


@dataclass
class RecordedRequest:
    """One request the emulator received.

    Attributes:
        operation: ``InvokeModel``, ``Converse``, ``ConverseStream``, or the unsupported operation's name.
        model_id: the model id as sent (URL-decoded): a base id, an inference-profile id or an ARN.
        base_model_id: the resolved base model id, or None when the id is invalid.
        body: the parsed JSON body (None when it was not JSON; ``raw_body`` keeps the bytes).
        headers: request headers, names lower-cased.
        started: ``time.monotonic()`` when the request arrived.
        ended: ``time.monotonic()`` when the response was fully written, None while in flight.
        status: HTTP status sent (200 for streams, even when a fault ends them).
        error_code: the error code sent, if any (``ThrottlingException``, ``throttlingException``...).
        region: the Region the request was signed for (from the SigV4 ``Authorization`` header), if any.
    """

    operation: str
    model_id: str
    body: Any
    headers: dict[str, str]
    started: float
    raw_body: bytes = field(default=b"", repr=False)
    base_model_id: str | None = None
    ended: float | None = None
    status: int | None = None
    error_code: str | None = None

    @property
    def region(self) -> str | None:
        """The SigV4 signing Region: ``Credential=<key>/<date>/<region>/<service>/aws4_request``."""
        auth = self.headers.get("authorization", "")
        _, _, credential = auth.partition("Credential=")
        parts = credential.split(",", 1)[0].split("/")
        return parts[2] if len(parts) >= 5 else None

    @property
    def duration(self) -> float | None:
        """Seconds from arrival to the last byte written, None while in flight."""
        return None if self.ended is None else self.ended - self.started

    @property
    def last_user_text(self) -> str:
        """Text of the last user message of a Converse or Claude Messages body (empty if none)."""
        body = self.body if isinstance(self.body, dict) else {}
        for message in reversed(body.get("messages") or []):
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            blocks = content if isinstance(content, list) else []
            return "\n".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
        return ""
