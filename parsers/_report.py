"""Per-source warnings: parsers call :func:`warn`; :func:`collect_warnings` gathers them for one source.

A warning is something skipped that the user should know about (an oversized image, a broken link); it is
logged and, inside ``collect_warnings()``, also kept so the CLI and reports can show it next to the source.

Warnings are summarised so that a source with thousands of them (a PDF with 9,000 oversized images once the
per-page cap is raised) stays readable: after :data:`MAX_ALIKE` warnings that differ only in their numbers, one
line says how many more like them were skipped, and after :data:`MAX_WARNINGS` warnings in all, one line counts
the rest. Both the collected list and the log are summarised this way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["MAX_ALIKE", "MAX_WARNINGS", "collect_warnings", "warn"]

MAX_ALIKE = 3
"""Warnings of one shape (the same words, other numbers) shown for one source before they are counted instead."""
MAX_WARNINGS = 50
"""Warnings shown for one source in all before the rest are counted instead."""

logger = logging.getLogger("mmrag.parsers")
_NUMBER = re.compile(r"\d[\d,.]*")


@dataclass
class _Sink:
    messages: list[str]
    seen: dict[str, int] = field(default_factory=dict)  # shape -> how many
    summary_at: dict[str, int] = field(default_factory=dict)  # shape -> index of its "... more like" line
    shown: int = 0
    over: int = 0
    over_at: int | None = None

    def add(self, source: str, message: str) -> None:
        shape = _NUMBER.sub("N", message)
        count = self.seen[shape] = self.seen.get(shape, 0) + 1
        if count <= MAX_ALIKE and self.shown < MAX_WARNINGS:
            self.shown += 1
            self.messages.append(message)
            logger.warning("%s: %s", source, message)
            return
        if count > MAX_ALIKE:
            line = f"... and {count - MAX_ALIKE:,} more like: {message}"
            if shape in self.summary_at:
                self.messages[self.summary_at[shape]] = line
                return
            if self.shown < MAX_WARNINGS:
                self.shown += 1
                self.summary_at[shape] = len(self.messages)
                self.messages.append(line)
                logger.warning("%s: %s (further ones are counted, not logged)", source, message)
                return
        self.over += 1
        line = f"... and {self.over:,} more warnings"
        if self.over_at is None:
            self.over_at = len(self.messages)
            self.messages.append(line)
            logger.warning("%s: more than %d warnings: the rest are counted, not logged", source, MAX_WARNINGS)
        else:
            self.messages[self.over_at] = line


_sink: ContextVar[_Sink | None] = ContextVar("mmrag_parse_warnings", default=None)


def warn(source: str, message: str) -> None:
    """Record a warning about ``source`` (logged, summarised past a few alike; collected when a collector is
    active)."""
    sink = _sink.get()
    if sink is None:
        logger.warning("%s: %s", source, message)
        return
    sink.add(source, message)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the messages of :func:`warn` calls made inside the block (in this context/thread), summarised."""
    sink = _Sink([])
    token = _sink.set(sink)
    try:
        yield sink.messages
    finally:
        _sink.reset(token)
