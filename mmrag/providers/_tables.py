"""Deterministic table answers: a cell looked up, or rows counted, over a table element's rows (no model).

A table element's text holds its table as Markdown (header, rule, rows; see :data:`mmrag.elements.TABLE_RULE`),
which :func:`table_rows` reads back as a header and rows of cells, as a CSV reader would.

**Lookup** (:func:`lookup`): the question names a row and a column ("What gender is the MBROLA voice de5?").

- Every row is scored by the question's words its cells hold, each word weighted by its rarity among the rows
  (``ln(1 + rows / rows holding it)``), so "de5" (one row) outweighs "German" (eight rows); words of a header are
  not row words. The best row must score above every other row; of tied rows, the one row with a cell the
  question names whole wins ("Mazda RX4" over "Mazda RX4 Wag"); otherwise a tie names no row.
- The column is the header that shares the most words with the question, the row's matching cells left out (in
  "What language does the MBROLA voice hn1 speak?" the "MBROLA Voice" column holds the key ``hn1``, so "Language"
  is the answer); a header of 2-4 letters abbreviating a question word answers it when no header is named
  ("horsepower": ``hp``, see :func:`abbreviates`). A two-column table whose key is in one column answers with the
  other ("What does SIGXCPU indicate?"). No header named and more than two columns: no lookup.

**Count** (:func:`count`): "How many ...?" with one or more filters: a question word that is a whole word of some
cells (not of a header) keeps the rows whose cell in those columns holds it ("How many German MBROLA
voices are female?": Language holds "German" and Gender holds "female"). The answer is the number of rows kept,
and they are listed.

Words are compared lower-cased, with footnote marks (``Arabic[3,7]``) dropped and long words cut to six letters,
so "Brazilian" meets the table's "Brazillian".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mmrag.elements import TABLE_RULE, Element

__all__ = ["TableAnswer", "absent_value", "bridge_query", "count", "lookup", "table_answer", "table_caption",
           "table_leads", "table_rows"]

_WORD = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_FOOTNOTE = re.compile(r"\[\d+(?:,\s*\d+)*\]")
_HOW_MANY = re.compile(r"\bhow\s+many\b|\bnumber\s+of\b|\bcount\b", re.IGNORECASE)
_STOP_WORDS = (
    "a an the of in on at to for from by with about and or is are was were be been do does did have has "
    "had how what which who whom whose when where why can could should would will i you we it its this "
    "that these those there me my your our their many much list listed lists give given use used uses "
    "using say says table tables there mean means value values called"
)
_STOP = frozenset(_STOP_WORDS.split())
FUZZY_LETTERS = 6
"""Words longer than this are compared by their first letters only ("brazilian" ~ "brazillian")."""


@dataclass(frozen=True)
class TableAnswer:
    """A value read from a table: ``value`` (a cell, or a count), the ``rows`` that give it, and how (``how``:
    ``"<column> of <row key>"`` or ``"rows where ..."``)."""

    value: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    how: str
    column: str | None = None

    def render(self, caption: str = "") -> str:
        """The answer's lead and the rows behind it as Markdown (at most 12 rows)."""
        lead = f"{self.value} ({self.how})" if self.column is None else f"{self.column}: {self.value} ({self.how})"
        shown = self.rows[:12]
        table = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header),
                 *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in shown)]
        more = [f"(and {len(self.rows) - len(shown)} more rows)"] if len(self.rows) > len(shown) else []
        return "\n".join([lead, *([caption] if caption else []), *table, *more])


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def table_rows(text: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]] | None:
    """The header and rows of the first Markdown table in ``text`` (rows padded or cut to the header's width),
    or None when there is no table with a header and at least one row."""
    lines = [line for line in text.splitlines() if line.strip().startswith("|")]
    if len(lines) < 2:
        return None
    header = tuple(_cells(lines[0]))
    body = [line for line in lines[1:] if not TABLE_RULE.fullmatch(line)]
    rows = [tuple((_cells(line) + [""] * len(header))[: len(header)]) for line in body]
    return (header, rows) if rows and len(header) >= 2 else None


def _norm(word: str) -> str:
    word = word.strip("-_.")
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and not any(c.isdigit() for c in word):
        word = word[:-1]
    return word[:FUZZY_LETTERS] if len(word) > FUZZY_LETTERS and not any(c.isdigit() for c in word) else word


def _words(text: str) -> set[str]:
    """Normalised words of ``text``; a hyphenated word counts whole and by its parts."""
    out: set[str] = set()
    for token in _WORD.findall(_FOOTNOTE.sub(" ", text.lower())):
        out.add(_norm(token))
        if "-" in token:
            out.update(_norm(part) for part in token.split("-") if part)
    return {w for w in out if w and w not in _STOP}


def _header_words(header: Sequence[str]) -> set[str]:
    return set().union(*(_words(h) for h in header))


def abbreviates(short: str, word: str) -> bool:
    """Whether a column header ``short`` (2-4 letters) is an abbreviation of the question's ``word``: same first
    letter, its letters in order in the word, which is at least 3 letters longer ("hp" horsepower, "wt" weight,
    "cyl" cylinders, "disp" displacement)."""
    short, word = short.strip().lower(), word.lower()
    if not (2 <= len(short) <= 4 and short.isalpha() and len(word) >= len(short) + 3 and short[0] == word[0]):
        return False
    rest = iter(word[1:])
    return all(letter in rest for letter in short[1:])


def lookup(question: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> TableAnswer | None:
    """The cell a question names by row and column (see the module docstring), or None."""
    asked = _words(question)
    row_words = asked - _header_words(header)
    if not row_words or not rows:
        return None
    cells = [[_words(cell) for cell in row] for row in rows]
    df = {w: sum(1 for row in cells if any(w in c for c in row)) for w in row_words}
    weight = {w: math.log(1 + len(rows) / n) for w, n in df.items() if n}
    if not weight:
        return None
    scores = sorted(((sum(weight[w] for w in weight if any(w in c for c in row)), i) for i, row in enumerate(cells)),
                    reverse=True)
    best, index = scores[0]
    if best <= 0:
        return None
    tied = [i for score, i in scores if score >= best]
    if len(tied) > 1:
        # "Mazda RX4" also starts "Mazda RX4 Wag": the one row with a cell the question names whole wins the tie.
        whole = [i for i in tied if any(c and c <= asked and c & row_words for c in cells[i])]
        if len(whole) != 1:
            return None
        index = whole[0]
    row = rows[index]
    keys = {j for j, c in enumerate(cells[index]) if c and c <= asked}  # cells the question names whole
    if not keys:
        return None
    # Most header words asked first; on a tie the header the question names whole ("Language" over "Language
    # Family" when only "language" is asked), then the one it names first (what a question asks for comes before
    # what it asks about: "Which Debian package has the MBROLA voice ...").
    order = [_norm(t) if "-" not in t else t for t in _WORD.findall(question.lower())]  # "espeak-ng" is no "eSpeak"
    named = sorted(((len(_words(h) & asked), len(_words(h) & asked) - len(_words(h)),
                     -min((order.index(w) for w in _words(h) if w in order), default=len(order)), -j)
                    for j, h in enumerate(header) if j not in keys and row[j].strip()), reverse=True)
    short = [j for j, h in enumerate(header) if j not in keys and row[j].strip()
             and any(abbreviates(h, w) for w in _WORD.findall(question.lower()))]
    if named and named[0][0] > 0:
        column = -named[0][3]
    elif len(short) == 1:  # "horsepower" asks for the "hp" column
        column = short[0]
    elif len(header) == 2 and len(keys) == 1 and _names_a_key(question, row[next(iter(keys))]):
        column = 1 - next(iter(keys))
    else:
        return None
    if not row[column].strip():
        return None
    key = "; ".join(_FOOTNOTE.sub("", row[j]).strip() for j in sorted(keys))
    name = header[column] or f"column {column + 1}"
    return TableAnswer(_FOOTNOTE.sub("", row[column]).strip(), tuple(header), (tuple(row),), f"the row of {key}",
                       name)


_DEFINE = re.compile(r"\bwhat\s+(?:does|do|is|are)\b.*\b(?:mean|do|does|indicate|stand\s+for|match)\b",
                     re.IGNORECASE)


def _names_a_key(question: str, key: str) -> bool:
    """Whether the question asks about ``key`` as a name (it is written like code: a digit, a capital inside,
    punctuation) or asks what it means/does: a two-column table then answers with its other column."""
    written = next((w for w in re.findall(r"\S+", question) if _words(w) & _words(key)), "")
    return bool(_DEFINE.search(question)) or bool(re.search(r"\d|[^\w\s?,]|\w[A-Z]", written.strip("?,.")))


def count(question: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> TableAnswer | None:
    """The number of rows a "How many ...?" question's filters keep (see the module docstring), or None."""
    if not _HOW_MANY.search(question) or not rows:
        return None
    asked = _words(question) - _header_words(header)
    cells = [[_words(cell) for cell in row] for row in rows]
    filters: list[tuple[tuple[int, ...], str]] = []
    for word in sorted(asked):
        columns = tuple(sorted({j for row in cells for j, c in enumerate(row) if word in c}))
        if columns and len(columns) < len(header):  # in every column it is no filter ("the", a unit)
            filters.append((columns, word))
    if not filters:
        return None
    kept = [tuple(row) for row, words in zip(rows, cells, strict=True)
            if all(any(word in words[j] for j in columns) for columns, word in filters)]
    if not kept:
        return None
    how = "rows where " + " and ".join(
        f"{' or '.join(header[j] or f'column {j + 1}' for j in columns)} has {word!r}" for columns, word in filters)
    return TableAnswer(str(len(kept)), tuple(header), tuple(kept), how)


def table_answer(question: str, tables: Sequence[Element]) -> tuple[int, TableAnswer] | None:
    """The first table (in the given order) that answers ``question`` by count or lookup: its index and answer."""
    for index, el in enumerate(tables):
        parsed = table_rows(el.text)
        if parsed is None:
            continue
        header, rows = parsed
        found = count(question, header, rows)
        if found is None and not _HOW_MANY.search(question):
            found = lookup(question, header, rows)
        if found is not None:
            return index, found
    return None


_BRIDGE = re.compile(r"\bthe\s+\w+(?:\s+\w+)?\s+(?:of|whose|with|spoken\s+by|used\s+by|that|which)\s|\bwhose\b",
                     re.IGNORECASE)
_LINK_VERBS_WORDS = (
    "belong belongs speak speaks spoken provide provides have has in is are does do name named exist "
    "exists"
)
_LINK_VERBS = frozenset(_LINK_VERBS_WORDS.split())


_CLAUSES = re.compile(r"[;?]\s*|,\s*(?:and|but)\s+|\s+and\s+(?=(?:what|which|who|whom|how|where|when|why)\b)",
                      re.IGNORECASE)
"""Where a question asking several things splits into its clauses."""


def asks_a_bridge(question: str) -> bool:
    """Whether a question is built as a bridge: it names a thing by another fact ("the language *of* the voice
    ic1", "the language *whose* identifier is hu")."""
    return _BRIDGE.search(question) is not None


def table_leads(elements: Sequence[Element], queries: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(query index, element index, text)`` for each query that a table among ``elements`` answers by lookup
    or count: the value, the table's caption, then the rows behind it; each value of a table once."""
    tables = [(rank, el) for rank, el in enumerate(elements) if el.kind == "table"]
    out: list[tuple[int, int, str]] = []
    seen: set[tuple[int, str]] = set()
    used_rows: set[tuple[int, tuple[str, ...]]] = set()
    for number, query in enumerate(queries):
        found = None
        for rank, el in tables:
            one = table_answer(query, [el])
            # A row that answered an earlier part (the first hop) does not answer a later one (the second hop,
            # which names that row's value): the next table that answers it does.
            if one is not None and not (len(one[1].rows) == 1 and (rank, one[1].rows[0]) in used_rows):
                found = (rank, el, one[1])
                break
        if found is None:
            continue
        rank, el, answer = found
        if len(answer.rows) == 1:
            used_rows.add((rank, answer.rows[0]))
        if (rank, answer.value) not in seen:
            seen.add((rank, answer.value))
            out.append((number, rank, answer.render(table_caption(el))))
    return out


def table_caption(el: Element) -> str:
    """The table's caption: its own, else a "Table n" line before it, else its section."""
    from mmrag.providers.base import CAPTION_KEY

    before = [line.strip() for line in el.text.split("\n|", 1)[0].splitlines() if line.strip()]
    caption = str(el.metadata.get(CAPTION_KEY) or "") or next(
        (line for line in before if re.match(r"(?:table|figure|fig\.)\s*\d", line, re.IGNORECASE)), "") or str(
        el.metadata.get("section") or "")
    return " ".join(caption.split())


def bridge_query(question: str, tables: Sequence[Element]) -> tuple[str, TableAnswer] | None:
    """The second hop of a bridge question, from the first hop's table cell: ``(query, first-hop answer)``.

    "Which language family does the language of the MBROLA voice ic1 belong to?": the voice table gives
    Language = Icelandic for ic1, but the question also asks for words that table has no column for ("family");
    the second hop asks ``"Icelandic Language family"``. Only a question built as a bridge asks for one ("the
    language *of* the voice ic1", "the language *whose* identifier is hu", see ``_BRIDGE``). None when no table
    lookup answers the question, or when it leaves no asked word unexplained (the first hop is then the answer).
    """
    if not _BRIDGE.search(question):
        return None
    for el in tables:
        parsed = table_rows(el.text)
        if parsed is None:
            continue
        header, rows = parsed
        found = lookup(question, header, rows)
        if found is None or found.column is None:
            continue
        # Only the clause the lookup answers: "How do you draw a polar plot, and what is the horsepower of the
        # Mazda RX4?" asks two things; the first is no second hop of the second.
        clause = next((part for part in _CLAUSES.split(question) if _BRIDGE.search(part)
                       and (hit := lookup(part, header, rows)) is not None and hit.rows == found.rows), question)
        explained = _header_words(header) | set().union(*(_words(cell) for cell in found.rows[0]))
        leftover = [w for w in re.findall(r"[\w.-]+", clause)
                    if _words(w) - _LINK_VERBS and not _words(w) <= explained and not abbreviates(found.column, w)]
        if not leftover:
            return None
        return f"{found.value} {found.column} {' '.join(leftover)}", found
    return None


_CODE_LIKE = re.compile(r"[a-z]{1,3}|[\w.-]*(?:\d|[._-])[\w.-]*")


def absent_value(question: str, tables: Sequence[Element]) -> str | None:
    """A value the question looks up in a column that no row holds: ``"xyz" in Family Code`` for "Which
    language has the family code xyz?" (the column named in the question, the word right after it, or after
    "is"; a value is a code: three letters at most, or with a digit or punctuation), or None. A table that is
    asked by column and value but has no such row cannot answer."""
    lowered = question.lower()
    for el in tables:
        parsed = table_rows(el.text)
        if parsed is None:
            continue
        header, rows = parsed
        for j, name in enumerate(header):
            name = " ".join(name.lower().split())
            if len(name) < 3:
                continue
            match = re.search(rf"\b{re.escape(name)}\s+(?:is\s+|of\s+|=\s*)?([\w.-]+)", lowered)
            if match is None:
                continue
            value = match.group(1)
            if value in _STOP or not _words(value) or not _CODE_LIKE.fullmatch(value):
                continue  # "the option enable", "the Visual Studio year": words, not a value looked up
            if not any(_words(value) <= _words(row[j]) for row in rows):
                return f'no row of the table has {header[j]} "{value}"'
    return None
