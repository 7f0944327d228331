"""How a failed Bedrock call is read: its AWS error code, whether to retry it, and the mmrag error to raise.

Used by the retry layer (:mod:`mmrag.providers._concurrency`) and by callers that need to tell a throttle from a
fatal error themselves.
"""

from __future__ import annotations

from typing import Literal

from mmrag.errors import AccessDeniedError, ConfigError, ProviderError

__all__ = [
    "BOUNDED_RETRIES", "ErrorClass", "backoff_floor", "classify_error", "error_code", "is_client_timeout",
    "retry_limit", "to_mmrag_error",
]

ErrorClass = Literal["throttle", "transient", "fatal"]
"""``throttle``: retry and lower the concurrency; ``transient``: retry; ``fatal``: raise at once."""

_THROTTLE_CODES = frozenset(
    {"throttlingexception", "toomanyrequestsexception", "modelnotreadyexception", "servicequotaexceededexception"}
)
# Retried with a long backoff: the account quota (tokens or requests per minute) refills over a minute.
_QUOTA_CODES = frozenset({"servicequotaexceededexception"})
_QUOTA_MIN_DELAY = 5.0
# Retried at most this many times whatever max_retries says: a model error (424) or an unreachable endpoint is
# rarely fixed by waiting, but sometimes is.
_BOUNDED_CODES = frozenset({"modelerrorexception"})
BOUNDED_RETRIES = 2
_TRANSIENT_CODES = frozenset(
    {
        "serviceunavailableexception",
        "internalserverexception",
        "modeltimeoutexception",
        "modelstreamerrorexception",
        "requesttimeout",
        "requesttimeoutexception",
    }
)
_NO_CREDENTIALS = "No AWS credentials found: run `aws configure` or set MMRAG_PROFILE=local"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``EventStreamError`` included), else ``""``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "")
    return ""


def _error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = (response.get("Error") or {}).get("Message")
        if message:
            return str(message)
    return str(exc)


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return int(status) if isinstance(status, int) else None
    return None


def classify_error(exc: BaseException) -> ErrorClass:
    """Whether a failed Bedrock call should be retried, and whether it signals throttling.

    Codes are compared case-insensitively because ConverseStream reports mid-stream exceptions by their union
    member name (``throttlingException``, ``serviceUnavailableException``, ``modelStreamErrorException``...).
    """
    code = error_code(exc).lower()
    if code:
        if code in _THROTTLE_CODES:
            return "throttle"
        if code in _TRANSIENT_CODES:
            return "transient"
        if code in _BOUNDED_CODES:
            return "transient"
        status = _http_status(exc)
        if status == 429:
            return "throttle"
        return "transient" if status is not None and status >= 500 else "fatal"
    try:
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )
    except ImportError:  # pragma: no cover - botocore is present whenever a botocore error exists
        return "fatal"
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | ConnectionClosedError | EndpointConnectionError):
        return "transient"
    return "fatal"


def is_client_timeout(exc: BaseException) -> bool:
    """Whether the client gave up waiting (read timeout) while the service may still be working on the request."""
    return type(exc).__name__ in ("ReadTimeoutError", "ReadTimeout")


def retry_limit(exc: BaseException, retries: int) -> int:
    """Retries allowed for this error: bounded for model errors and unreachable endpoints."""
    bounded = error_code(exc).lower() in _BOUNDED_CODES or type(exc).__name__ == "EndpointConnectionError"
    return min(retries, BOUNDED_RETRIES) if bounded else retries


def backoff_floor(exc: BaseException, attempt: int) -> float:
    """The least wait before retry ``attempt`` of this error: a quota error waits longer than a throttle (0: none)."""
    if error_code(exc).lower() in _QUOTA_CODES:
        return min(60.0, _QUOTA_MIN_DELAY * 2.0**attempt)
    return 0.0


def to_mmrag_error(exc: BaseException, model_id: str, *, retryable: bool = False) -> BaseException:
    """The mmrag error to raise for a failed call: ConfigError for missing credentials/region, else ProviderError.

    Exceptions that are neither AWS service errors nor botocore errors (bugs) are returned unchanged.
    """
    try:
        from botocore.exceptions import BotoCoreError, NoCredentialsError, NoRegionError
    except ImportError:  # pragma: no cover
        return exc
    if isinstance(exc, NoCredentialsError):
        return ConfigError(_NO_CREDENTIALS)
    if isinstance(exc, NoRegionError):
        return ConfigError("No AWS region configured: set MMRAG_AWS_REGION or AWS_REGION, or run `aws configure`")
    code = error_code(exc)
    if code == "AccessDeniedException":
        return AccessDeniedError(
            f"Bedrock denied access to {model_id}: {_error_message(exc)}. Model access is on by default, but IAM "
            "must allow bedrock:InvokeModel / bedrock:InvokeModelWithResponseStream on the inference profile AND "
            "its foundation model in every destination Region (global.: also arn:aws:bedrock:::foundation-model/"
            "<id>), and the first call to a third-party model (Anthropic, Cohere) needs aws-marketplace:Subscribe "
            "and aws-marketplace:ViewSubscriptions (or one call by an administrator); Anthropic models also need the "
            "one-time use-case form. `mmrag models --iam` prints the policy; or choose another model "
            "(MMRAG_FAST_MODEL, MMRAG_STRONG_MODEL, MMRAG_*_EMBEDDING_MODEL)"
        )
    if code == "ValidationException" and "on-demand throughput" in _error_message(exc):
        return ProviderError(
            f"Bedrock call to {model_id} failed: {_error_message(exc)} This model cannot be invoked by its base id: "
            f"use its inference profile (us./eu./jp./au./apac./global. + the id), or give the base id in mmrag's "
            "settings and mmrag picks the profile for your Region",
            is_retryable=False,
        )
    if code or isinstance(exc, BotoCoreError):
        what = f"{code}: " if code else ""
        suffix = " (gave up after retries)" if retryable else ""
        return ProviderError(f"Bedrock call to {model_id} failed: {what}{_error_message(exc)}{suffix}",
                             is_retryable=retryable)
    return exc
