"""The one redaction rule for URLs: what is logged, stored, indexed, cited or rendered never holds a credential.

A URL as given is used only to fetch. Everywhere else it is shown by :func:`redact_url`, which removes

- user info (``https://alice:pw@host/`` → ``https://host/``);
- query parameters whose name says they carry a secret (:func:`is_secret_param`);
- the same parameters in a fragment written as parameters (``#access_token=...&state=1``: OAuth's implicit flow);
  a plain anchor (``#section-2``) stays.

Parameter names (case-insensitive, ``-`` read as ``_``) that count as secrets: those in :data:`SECRET_PARAMS`;
names ending in ``token``, ``secret``, ``password``, ``passwd``, ``signature``, ``credential(s)``, ``_key`` or
``apikey`` (``auth_token``, ``access_key``, ``client_secret``...); and names starting with ``x_amz_``,
``x_goog_`` or ``x_ms_`` (presigned cloud URLs).

:func:`redact_text` applies the rule to free text (log lines, error messages): every URL in it, ``name=value``
pairs of secret names after ``?``, ``&``, ``;`` or ``#`` (an HTTP request line has no scheme), and the values of
``Authorization``, ``Cookie``, ``X-Amz-Security-Token`` and ``X-Api-Key`` headers. :class:`RedactingFormatter` is
the logging formatter of ``mmrag -v``.
"""

from __future__ import annotations

import logging
import re

__all__ = ["SECRET_PARAMS", "RedactingFormatter", "is_secret_param", "redact_text", "redact_url"]

SECRET_PARAMS = frozenset({
    "token", "access_token", "id_token", "refresh_token", "auth", "auth_token", "authorization", "bearer", "key",
    "api_key", "apikey", "access_key", "secret_key", "private_key", "signature", "sig", "password", "passwd", "pwd",
    "pass", "secret", "client_secret", "credential", "credentials", "session", "sessionid", "session_id", "jwt",
    "code", "otp", "ticket",
})
"""Query or fragment parameter names whose values are removed (besides the suffix and prefix rules)."""

_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "signature", "credential", "credentials", "_key",
                    "apikey")
_SECRET_PREFIXES = ("x_amz_", "x_goog_", "x_ms_")
_MASK = "[redacted]"
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+")
_PARAM = re.compile(r"(?P<lead>[?&;#])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&;#\s\"'<>]*)")
_HEADER = re.compile(r"(?i)(?P<name>authorization|proxy-authorization|cookie|set-cookie|x-amz-security-token|"
                     r"x-api-key)(?P<sep>['\"]?\s*[:=]\s*(?:b?['\"])?)(?P<value>[^'\"\r\n]+)")


def is_secret_param(name: str) -> bool:
    """Whether a query or fragment parameter called ``name`` carries a secret (see the module docstring)."""
    key = name.strip().lower().replace("-", "_")
    return key in SECRET_PARAMS or key.endswith(_SECRET_SUFFIXES) or key.startswith(_SECRET_PREFIXES)


def _without_secrets(params: str) -> str:
    from urllib.parse import parse_qsl, urlencode

    pairs = parse_qsl(params, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not is_secret_param(k)]
    return params if len(kept) == len(pairs) else urlencode(kept)


def redact_url(url: str) -> str:
    """``url`` without user info and secret parameters (query and fragment); anything else unchanged."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a malformed port or host: drop anything that looks like user info or a secret value
        return _PARAM.sub(_mask_param, re.sub(r"//[^/?#@]*@", "//", url))
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    fragment = _without_secrets(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, _without_secrets(parts.query), fragment))


def _mask_param(match: re.Match[str]) -> str:
    if not is_secret_param(match["name"]):
        return match[0]
    return f"{match['lead']}{match['name']}={_MASK}"


def redact_text(text: str) -> str:
    """``text`` with every URL redacted (:func:`redact_url`), secret ``name=value`` pairs and auth headers masked."""
    if not text:
        return text
    text = _URL.sub(lambda m: redact_url(m[0]), text)
    text = _PARAM.sub(_mask_param, text)
    return _HEADER.sub(lambda m: f"{m['name']}{m['sep']}{_MASK}", text)


class RedactingFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose output (message, traceback included) goes through :func:`redact_text`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
