"""Recursive, structure-aware text chunking that keeps character offsets.

Text is cut at the coarsest boundary that makes pieces fit (blank line, line, sentence, word, character),
then pieces are packed into chunks of at most ``chunk_size`` characters, each new chunk starting with up to
``chunk_overlap`` characters of whole pieces from the end of the previous one. Offsets let callers map a
chunk back to where it came from (PDF blocks and their bounding boxes, HTML sections).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["DEFAULT_SEPARATORS", "split_spans", "split_text", "tail_text"]

DEFAULT_SEPARATORS: tuple[str, ...] = ("\n\n", "\n", r"(?<=[.!?;:])\s+", " ", "")
"""Blank line, line break, sentence end (regex), space, and finally any character."""


def _cut(text: str, start: int, end: int, size: int, separators: Sequence[str]) -> list[tuple[int, int]]:
    """Split text[start:end] into spans of at most ``size`` characters at the coarsest separator that helps."""
    if end - start <= size:
        return [(start, end)]
    for i, sep in enumerate(separators):
        if sep == "":
            return [(s, min(s + size, end)) for s in range(start, end, size)]
        pattern = re.compile(sep if sep.startswith("(?") else re.escape(sep))
        cuts = [m.end() for m in pattern.finditer(text, start, end) if start < m.end() < end]
        if not cuts:
            continue
        spans: list[tuple[int, int]] = []
        prev = start
        for c in [*cuts, end]:
            if c > prev:
                spans.extend(_cut(text, prev, c, size, separators[i + 1 :]))
            prev = c
        return spans
    return [(start, end)]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_spans(
    text: str, chunk_size: int = 1000, chunk_overlap: int = 200, separators: Sequence[str] = DEFAULT_SEPARATORS
) -> list[tuple[int, int]]:
    """Chunk boundaries as ``(start, end)`` offsets into ``text``; whitespace-only chunks are dropped.

    Args:
        text: the text to split.
        chunk_size: largest chunk in characters.
        chunk_overlap: at most this many characters of the previous chunk start the next one.
        separators: boundaries to prefer, coarsest first; entries starting with ``(?`` are regexes.
    """
    if chunk_size < 1 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size, got {chunk_size}, {chunk_overlap}")
    pieces = _cut(text, 0, len(text), chunk_size, separators)
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1][1] - pieces[i][0] <= chunk_size:
            j += 1
        span = _trim(text, pieces[i][0], pieces[j][1])
        if span[1] > span[0]:
            chunks.append(span)
        if j + 1 >= len(pieces):
            break
        # Step back over whole pieces that fit in the overlap, but always move forward by at least one piece.
        k = j + 1
        while k - 1 > i and pieces[j][1] - pieces[k - 1][0] <= chunk_overlap:
            k -= 1
        i = k
    return chunks


def split_text(
    text: str, chunk_size: int = 1000, chunk_overlap: int = 200, separators: Sequence[str] = DEFAULT_SEPARATORS
) -> list[str]:
    """Chunk ``text``; see :func:`split_spans`."""
    return [text[s:e] for s, e in split_spans(text, chunk_size, chunk_overlap, separators)]


_TAIL_SEPARATORS = ("\n\n", r"(?<=[.!?;:])\s+", "\n")


def tail_text(text: str, limit: int, separators: Sequence[str] = _TAIL_SEPARATORS) -> str:
    """The end of ``text`` in at most ``limit`` characters, starting at a boundary (blank line, sentence, line).

    The longest tail within ``limit`` that starts right after one of ``separators``; the last line or sentence
    cut at a word when even that is longer; "" when ``limit`` < 1 or the text is blank.

    >>> tail_text("First sentence. Second one.", 15)
    'Second one.'
    """
    text = text.rstrip()
    if limit < 1 or not text.strip():
        return ""
    if len(text) <= limit:
        return text.strip()
    window = len(text) - limit
    for sep in separators:
        pattern = re.compile(sep if sep.startswith("(?") else re.escape(sep))
        starts = [m.end() for m in pattern.finditer(text) if m.end() >= window and m.end() < len(text)]
        if starts:
            return text[min(starts):].strip()
    cut = text.find(" ", window - 1)
    return text[cut:].strip() if cut != -1 else text[window:].strip()
