"""The hits of a :class:`~mmrag.stores.faiss.FaissIndex` search, and its cache of recently returned rows.

FAISS answers with (score, row id) pairs; a hit needs the row's element and indexed text. Reading those is most of
a search's own cost (a SQLite read, JSON, an element rebuild: about 25 us a row), so :class:`HotRows` keeps the
elements of recent hits, and builds hits without the frozen dataclass's constructor where that is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from typing import Any

from mmrag.elements import Element
from mmrag.stores._faiss_db import restore_element
from mmrag.stores.base import ScoredRecord

__all__ = ["HOT_ROWS", "HotRows", "clamp"]

HOT_ROWS = 16_384
"""Elements of recently returned rows kept per index (rows are immutable and row ids never reused: always valid).

A first hit costs a SQLite read, JSON and an element rebuild, about 25 us per row, which is as much as a flat
search of 10k vectors for a whole page of hits; a cached hit costs a dict lookup. At about 1.1 KB per 200-character
chunk (the text is held once), the full cache is about 20 MB, 30-40 MB with 1000-character chunks: next to the
150 MB of float32 vectors of a 100k-row index that needs it most. The oldest quarter is dropped when it is full.
"""

Payloads = Callable[[Sequence[int]], Mapping[int, tuple[dict[str, Any], str]]]
"""Row id → (stored payload, indexed text) of the rows that still exist (``RecordDB.payloads``)."""


def _slot_setters() -> tuple[Callable[[ScoredRecord, Any], None], ...] | None:
    """The setters of ``ScoredRecord``'s three slots, for building hits without the frozen dataclass's ``__init__``.

    That ``__init__`` is a Python function making three ``object.__setattr__`` calls; setting the slots through
    their descriptors does the same with no Python frame (about 0.8 us a hit once FAISS has flushed the CPU
    caches). Only while ``ScoredRecord`` is the plain three-slot record it is today: with anything more (a
    ``__post_init__``, another field) this is None and the constructor is used.
    """
    slots = ScoredRecord.__dict__.get("__slots__")
    if slots != ("element", "score", "text") or hasattr(ScoredRecord, "__post_init__"):
        return None
    return tuple(ScoredRecord.__dict__[name].__set__ for name in slots)


_SETTERS = _slot_setters()


def clamp(score: float) -> float:
    """A cosine similarity in [-1, 1] (float32 rounding can step past 1)."""
    return min(1.0, max(-1.0, score))


class HotRows:
    """Row id → (element, indexed text) of recent hits, and the hits for FAISS's answers. Not thread-safe: the
    index calls it under its lock.

    Args:
        payloads: reads rows from the database (``RecordDB.payloads``).
    """

    __slots__ = ("_payloads", "_rows")

    def __init__(self, payloads: Payloads) -> None:
        self._payloads = payloads
        self._rows: dict[int, tuple[Element, str]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def discard(self, rowids: Sequence[int]) -> None:
        """Forget rows deleted from the database."""
        for r in rowids:
            self._rows.pop(r, None)

    def hits(self, scores: list[float], ids: list[int], scale: float) -> list[ScoredRecord]:
        """The hits for FAISS's (score, row id) pairs, best first; each score times ``scale``."""
        entries = list(map(self._rows.get, ids))
        if not all(entries):  # not `None in`: that compares every tuple with None
            entries = self._fetch(ids, entries)
        # A row deleted since the sync (by another process) is skipped as before, unless it was hot: then
        # it is as stale as if the other process had deleted it just after this search.
        setters = _SETTERS
        if setters is None:
            return [ScoredRecord(e[0], clamp(s * scale), e[1]) for s, e in zip(scores, entries, strict=True) if e]
        set_element, set_score, set_text = setters
        new = object.__new__
        out = []
        for s, e in zip(scores, entries, strict=True):
            if e is not None:
                s *= scale
                hit = new(ScoredRecord)
                set_element(hit, e[0])
                set_score(hit, s if -1.0 <= s <= 1.0 else clamp(s))
                set_text(hit, e[1])
                out.append(hit)
        return out

    def _fetch(self, ids: list[int], entries: list[tuple[Element, str] | None]) -> list[tuple[Element, str] | None]:
        """``entries`` with the rows missing from the cache read from the database (and cached)."""
        hot = self._rows
        missing = [r for r, e in zip(ids, entries, strict=True) if e is None]
        fetched: dict[int, tuple[Element, str]] = {}
        for r, (payload, text) in self._payloads(missing).items():
            element = restore_element(payload)
            fetched[r] = (element, element.text if text == element.text else text)  # one copy of the text kept
        excess = len(hot) + len(fetched) - HOT_ROWS
        if excess > 0:  # the oldest first (dicts keep insertion order); this search's rows are in `entries`
            for r in list(islice(hot, excess + HOT_ROWS // 4)):
                del hot[r]
        hot.update(fetched)
        return [e if e is not None else fetched.get(r) for r, e in zip(ids, entries, strict=True)]
