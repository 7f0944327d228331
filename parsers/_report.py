"""Per-source warnings: parsers call :func:`warn`; :func:`collect_warnings` gathers them for one source.

A warning is something skipped that the user should know about (an oversized image, a broken link); it is
logged and, inside ``collect_warnings()``, also kept so the CLI and reports can show it next to the source.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["collect_warnings", "warn"]

logger = logging.getLogger("mmrag.parsers")
_sink: ContextVar[list[str] | None] = ContextVar("mmrag_parse_warnings", default=None)


def warn(source: str, message: str) -> None:
    """Record a warning about ``source`` (logged always; collected when a collector is active)."""
    text = f"{source}: {message}"
    logger.warning(text)
    sink = _sink.get()
    if sink is not None:
        sink.append(message)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the messages of :func:`warn` calls made inside the block (in this context/thread)."""
    sink: list[str] = []
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
