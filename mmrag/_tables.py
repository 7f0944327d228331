"""Markdown tables inside answer text, split out so that every surface can draw them as tables.

An extractive answer quotes a table's rows as Markdown (``| Mazda RX4 | 21.0 | 6 |``), often after a sentence
and before its citation marker. :func:`segments` cuts a text into runs of plain text and tables; the HTML answer
box, the notebook display and the terminal (rich tables) each draw the tables their way, and print the rest as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mmrag.elements import TABLE_RULE

__all__ = ["Table", "is_table_row", "segments"]

_TABLE_ROW = re.compile(r"[ \t]*\|.*\|[ \t]*")


@dataclass(frozen=True)
class Table:
    """A Markdown table: its header row (empty when it had no ``|---|`` rule under a first row) and body rows."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def is_table_row(line: str) -> bool:
    """True for a line of a Markdown table (``| a | b |``, the rule under the header included)."""
    return bool(_TABLE_ROW.fullmatch(line))


def _cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in line.strip().strip("|").split("|"))


def _table(lines: list[str]) -> Table:
    rules = [i for i, line in enumerate(lines) if TABLE_RULE.fullmatch(line)]
    if rules and rules[0] == 1:
        return Table(_cells(lines[0]), tuple(_cells(line) for line in lines[2:] if not TABLE_RULE.fullmatch(line)))
    return Table((), tuple(_cells(line) for line in lines if not TABLE_RULE.fullmatch(line)))


def segments(text: str) -> list[str | Table]:
    """``text`` as plain-text runs and tables, in order; joining the text runs and the tables' lines back gives the
    text. Two or more consecutive table lines make a table; a lone ``|`` line stays text."""
    out: list[str | Table] = []
    lines = text.split("\n")
    plain: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and is_table_row(lines[j]):
            j += 1
        if j - i >= 2 and any(not TABLE_RULE.fullmatch(line) for line in lines[i:j]):
            if plain:
                out.append("\n".join(plain) + "\n")
                plain = []
            out.append(_table(lines[i:j]))
            i = j
            continue
        plain.append(lines[i])
        i += 1
    if plain:
        out.append("\n".join(plain))
    return [s for s in out if not (isinstance(s, str) and not s)]
