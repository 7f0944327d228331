"""The one error tree of mmrag.

Every error a user can meet is an :class:`MmragError`; SDK errors are wrapped with ``raise X(msg) from e``::

    MmragError
    ├── ConfigError                  bad or missing settings
    │   └── MissingDependencyError   an optional extra is not installed; the message names it
    ├── ParseError(source)           one source could not be read or parsed; other sources go on
    │   ├── FetchError(source)       a URL could not be fetched (HTTP error, too big, too many redirects)
    │   │   └── UnsafeURLError       refused before any request: scheme or address not allowed
    │   └── SourceNotFoundError      a named file does not exist (also a NotFoundError)
    ├── ProviderError(is_retryable)  a model call failed
    │   └── AccessDeniedError        the provider refused access (model access, IAM): stops an ingest at once
    ├── StoreError                   a vector index or object store failed
    │   └── DiskFullError(path)      no space left where mmrag writes: free some and run again (exit 7)
    └── NotFoundError                a collection, source or file that was asked for does not exist

Messages say what went wrong *and* how to fix it where there is a fix.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ConfigError",
    "DiskFullError",
    "FetchError",
    "MissingDependencyError",
    "MmragError",
    "NotFoundError",
    "ParseError",
    "ProviderError",
    "SourceNotFoundError",
    "StoreError",
    "UnsafeURLError",
]


class MmragError(Exception):
    """Base class of every error raised by mmrag."""


class ConfigError(MmragError):
    """Settings are invalid or incomplete."""


class MissingDependencyError(ConfigError):
    """An optional dependency is missing.

    Args:
        package: the import name that failed.
        extra: the mmrag extra that provides it.
    """

    def __init__(self, package: str, extra: str, feature: str | None = None) -> None:
        self.package = package
        self.extra = extra
        what = f"{feature} needs {package!r}" if feature else f"{package!r} is not installed"
        super().__init__(f"{what}: install with pip install 'mmrag[{extra}]'")


class ParseError(MmragError):
    """A source could not be read or parsed.

    Args:
        source: the path or URL of the source that failed.
        reason: why it failed, in words a user can act on.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class FetchError(ParseError):
    """A URL could not be fetched."""


class UnsafeURLError(FetchError):
    """A URL was refused before any request was made (scheme or address not allowed)."""


class ProviderError(MmragError):
    """A model provider call failed.

    Args:
        message: what failed.
        is_retryable: whether repeating the same call may succeed (throttling, 5xx, timeouts).
    """

    def __init__(self, message: str, *, is_retryable: bool = False) -> None:
        self.is_retryable = is_retryable
        super().__init__(message)


class AccessDeniedError(ProviderError):
    """The provider refused access to a model (not enabled, or not allowed by IAM).

    Every other call to that model would fail the same way, so an ingest stops at once (exit 5) rather than
    trying each remaining source.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, is_retryable=False)


class StoreError(MmragError):
    """A vector index or object store operation failed."""


class DiskFullError(StoreError):
    """No space is left on the file system mmrag writes to. Nothing is damaged: free space and run again.

    Args:
        path: the file or folder being written, when known.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        where = f"writing {path}" if path else "writing"
        super().__init__(f"no space left on the device ({where}): free space on that file system, or set "
                         "MMRAG_HOME to a folder on another one, and run the command again; what was committed "
                         "before is intact")


class NotFoundError(MmragError):
    """Something the user named (a collection, a source, a file) does not exist. Read-only commands raise it
    instead of creating what is missing."""


class SourceNotFoundError(ParseError, NotFoundError):
    """A named file (or a pattern) matches nothing: a :class:`ParseError` where sources are processed one by one
    (ingest: that source fails, the others go on), a :class:`NotFoundError` where it is the one input (exit 3)."""
