"""Whether the retrieved evidence supports an answer at all: the offline abstention rule (no model).

An extractive answer always finds *some* passage to quote; quoting the nearest passages as if they answered is
worse than saying the sources do not. :func:`unsupported` returns why the evidence does not support an answer,
or None when it may. The checks read the question without the context it is asked in (:func:`focus`: "On the
scanned Huckleberry Finn page, what ...?" asks what, not about the page), over the elements the answer reads
(text, caption, OCR text, table, title, source path):

1. **Names**: the words a question names things with, written as a user writes names (a capital inside the
   sentence: "Tagalog", "Fetch"; a digit: "lt1", "700"; code: "--quiet", "fork()") must all occur in one element.
   "Which MBROLA voice speaks Finnish?" finds the MBROLA voice table and the languages table that lists Finnish, but
   no element holds both names: the sources do not say. A question that links two facts ("whose", "and", "of the
   language of ...", see ``_LINKS``) only needs each name in some element. Words compare by their first
   :data:`FUZZY_LETTERS` letters ("Brazilian" meets "Brazillian"); a name that is a stop word ("The", "I") is
   not one.
2. **What is asked**: the question's head word, its first content word after the question word ("Who is the
   *maintainer* of ...", "What is the *maximum* number of ..."; quantity words such as "many" or "distinct" are
   skipped), must occur in some element: evidence that never mentions what is asked about cannot answer it. A
   common word must occur as such (its stem: "maintainers" is "maintainer", "maintained" is not); a name (a
   capital, a digit) by its first letters, as names are matched.
3. **A value asked for**: a table among the elements that the question asks by column and value ("the family
   code xyz") but that has no such row cannot answer; a "how many / how much" question needs a sentence (or table
   or table) that holds a number and two of its content words (a section number such as "3 Memory Usage" is no
   number here).
4. **Coverage**: the best element must hold at least :data:`MIN_COVERAGE` of the question's content words,
   each weighted by its rarity among the elements (``1 + ln(N / df)``; a word in none weighs ``2 + ln(N)``);
   not asked of a question that links facts, whose words are spread over several passages.

Both thresholds were set on the ``dev`` split of ``tests/data_heldout`` only (see bench/eval_heldout.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from mmrag.elements import Element
from mmrag.providers._evidence import _STOPWORDS, _terms

__all__ = ["ABSTAIN_PREFIX", "FUZZY_LETTERS", "MIN_COVERAGE", "focus", "head_word", "identifiers", "names",
           "unsupported"]

ABSTAIN_PREFIX = "The sources do not say"
"""How an answer that abstains begins, offline and (by the synthesis prompt) on Bedrock."""
MIN_COVERAGE = 0.3
"""The least share of the question's (rarity-weighted) content words the best element must hold."""
FUZZY_LETTERS = 6
_NAME = re.compile(r"(?<![\w-])(?:-{1,2}[a-z][\w-]*|[\w.]*\d[\w.]*|[\w.-]*[a-z][A-Z][\w.-]*|[A-Z][\w.-]*|\w+\(\))")
_WORD = re.compile(r"[a-z0-9]+")
_LINKS = re.compile(r"\b(?:whose|and|both|also|then)\b|\bof\s+the\s+\w+(?:\s+\w+)?\s+(?:of|whose|that|which|spoken)\b|"
                    r"[;:]", re.IGNORECASE)
"""A question that links facts (a bridge, two parts): its names may sit in different passages."""
_QUESTION_WORDS_WORDS = (
    "what which who whom whose when where why how is are does do did can could in and or according"
)
_QUESTION_WORDS = frozenset(_QUESTION_WORDS_WORDS.split())


def _element_text(el: Element) -> str:
    """What an element says and where it is: text, caption, OCR text, summary, title, section and source path
    (a question may name the document or the software it documents)."""
    extra = [str(el.metadata.get(key) or "") for key in ("caption", "ocr_text", "summary", "title", "section")]
    extra.append(re.sub(r"[/_.-]+", " ", el.source))
    return re.sub(r"(?<=\w)-\n(?=[a-z])", "", "\n".join([el.text, *extra]))  # "expen-\nditures" is one word


def _key(word: str) -> str:
    word = word.lower().strip(".-()")
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and not any(c.isdigit() for c in word):
        word = word[:-1]  # "APIs" names the "API" column
    return word[:FUZZY_LETTERS] if len(word) > FUZZY_LETTERS and not any(c.isdigit() for c in word) else word


def names(question: str) -> list[str]:
    """The names a question uses (see the module docstring): capitalised words after the first, words with a
    digit, options and calls; each once, in order."""
    out: list[str] = []
    first = True
    for match in _NAME.finditer(question):
        token = match.group(0).strip(".,;:?!'\"")
        at_start = first and match.start() == len(question) - len(question.lstrip())
        first = False
        lower = token.lower()
        if not token or at_start or lower in _STOPWORDS or lower in _QUESTION_WORDS:
            continue
        if token not in out:
            out.append(token)
    return out


_QUANTITY = re.compile(r"\bhow\s+(?:much|many|long|old|large|big|far|often)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_HEADING_NUMBER = re.compile(r"(?m)^\s*\d+(?:\.\d+)*\.?\s+(?=[A-Z])")
"""A section number at the start of a text passage's line ("3 Memory Usage", "1.2.2 Memory Resources"): no
quantity. Not read off OCR text or captions, where "32 Track Recorder" on a line of its own is one."""
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def _sentences(elements: Sequence[Element], texts: Sequence[str], *, numbered: bool = False) -> list[str]:
    """Sentences and paragraphs of the texts; a table stays whole (its header names what its numbers count).
    ``numbered``: a text passage's section numbers are left out (for the number check)."""
    return [part for el, text in zip(elements, texts, strict=True)
            for part in ([text] if el.kind == "table" else _SENTENCE.split(
                _HEADING_NUMBER.sub(" ", text) if numbered and el.kind == "text" else text)) if part.strip()]


_SKIP_HEAD_WORDS = (
    "many much distinct different unique separate total exactly kind kinds type types sort main first "
    "last heading headings title name names label labels caption value values word words term terms text "
    "line lines figure table page section part example step axis axes legend row rows column columns cell "
    "cells entry entries chart plot graph diagram unit units"
)
_SKIP_HEAD = frozenset(_SKIP_HEAD_WORDS.split())
"""Skipped when looking for the head word: quantity words, and the words for parts of a document ("the heading
of the page", "the label on the axis"), which say where the answer is written rather than what it is about; "unit":
the answer names one ("Kilobytes") without saying the word."""


_HOW_TO = re.compile(r"^\s*how\s+(?:do|does|did|can|could|should|would|to)\s+(?:(?:you|i|we|one|they|it)\s+)?"
                     r"[a-z]+\b", re.IGNORECASE)
""""How do you VERB ...": the verb is how the user asks for a procedure, not a word the answer must repeat."""


def head_word(question: str) -> str | None:
    """The first content word after the question word ("Who is the maintainer of X?": ``maintainer``; after the
    verb of a how-to question: "How do you draw a polar plot?": ``polar``), or None when the question does not
    start with a question word."""
    words: list[str] = [w.strip(".()") for w in re.findall(r"[\w.()-]+", question) if w.strip(".()")]
    if not words or words[0].lower() not in _QUESTION_WORDS:
        return None
    how_to = _HOW_TO.match(question)
    if how_to:  # "How do you draw a polar plot?": what is asked about is the object, not the verb
        words = words[:1] + [w.strip(".()") for w in re.findall(r"[\w.()-]+", question[how_to.end():])
                             if w.strip(".()")]
    for word in words[1:]:
        lower = word.lower()
        if lower in _STOPWORDS or lower in _QUESTION_WORDS or lower in _SKIP_HEAD or not _WORD.search(lower):
            continue
        if len(lower) < 2 or lower.endswith("ed") or "-" in lower.strip("-"):
            continue  # "assigned", "photographed", "non-smokers": not a noun the answer must repeat
        return word
    return None


def _holds(words: set[str], name: str) -> bool:
    parts = [_key(p) for p in _WORD.findall(name.lower()) if p not in _STOPWORDS]
    return bool(parts) and all(p in words for p in parts)


_CONTEXT_START = re.compile(r"^\s*(?:in|on|according\s+to|using|from|for|within|with)\b[^,?]{0,120},\s*",
                            re.IGNORECASE)
_CONTEXT_END = re.compile(r"\s+(?:in|of|from|on|according\s+to)\s+the\s+(?:[\w.-]+\s+){0,4}?(?:vignette|paper|"
                          r"document|manual|guide|card|specification|introduction|photo|picture|scan)\b",
                          re.IGNORECASE)
_IDENTIFIER = re.compile(r"-{1,2}[a-z][\w-]*|(?=[\w.-]*[a-zA-Z])(?=[\w.-]*\d)[\w.-]+|[A-Z0-9_]{4,}|\w*[a-z][A-Z]\w*")


_CONTEXT_TAIL = re.compile(r",?\s+(?:in|with|using|according\s+to)\s+[A-Z][\w.+-]*\s*(?=[?.!]?\s*$)")


def focus(question: str) -> str:
    """The question without the context it is asked in: a leading "In the HCL vignette, ..." / "On the scanned
    page, ..." clause, "... in the vcd vignette" / "of the strucchange introduction" phrases and a last "in
    Octave" name where to look, not what is asked."""
    stripped = _CONTEXT_TAIL.sub("", _CONTEXT_END.sub("", _CONTEXT_START.sub("", question, count=1)), count=1)
    return stripped if stripped.strip() else question


def identifiers(question: str) -> list[str]:
    """The names that look like identifiers (``hn1``, ``v140``, ``SIGXCPU``, ``--with-async``, ``networkInterfaces``)
    and runs of capitalised words ("Brazilian Portuguese"): what keyword search finds exactly; a lone capitalised
    word, a letter and a number are left out (too common to single out a passage)."""
    asked = focus(question)
    found = [name for name in names(asked) if _IDENTIFIER.fullmatch(name)]
    pairs = [m.group(0) for m in re.finditer(r"(?<=\s)[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+", asked)]
    return found + [pair for pair in pairs if pair not in found]


def _holds_head(words: set[str], stems: set[str], head: str) -> bool:
    """Whether an element mentions the head word: a name (a capital, a digit) by its first letters, as names are
    matched; a common word by its stem ("maintainer" is not "maintained": a passage on who maintains what does
    not say who the maintainer is)."""
    if head[:1].isupper() or any(c.isdigit() for c in head):
        return _holds(words, head)
    wanted = _terms(head)
    return bool(wanted) and wanted <= stems


def _abbreviated(head: str, elements: Sequence[Element]) -> bool:
    """Whether a table among ``elements`` has a column abbreviating the head word ("horsepower": ``hp``)."""
    from mmrag.providers._tables import abbreviates, table_rows

    for el in elements:
        parsed = table_rows(el.text) if el.kind == "table" else None
        if parsed is not None and any(abbreviates(h, head) for h in parsed[0]):
            return True
    return False


def unsupported(question: str, elements: Sequence[Element]) -> str | None:
    """Why ``elements`` do not support answering ``question`` (a short reason), or None when they may. The checks
    read the question's :func:`focus`."""
    if not elements:
        return "nothing was retrieved"
    question = focus(question)
    texts = [_element_text(el) for el in elements]
    keyed = [{_key(w) for w in _WORD.findall(text.lower())} for text in texts]
    wanted = [name for name in names(question) if len(name) > 1]
    if wanted and not any(all(_holds(words, name) for name in wanted) for words in keyed):
        missing = [name for name in wanted if not any(_holds(words, name) for words in keyed)]
        if missing:
            return "no passage mentions " + " or ".join(f'"{name}"' for name in missing)
        if not _LINKS.search(question):  # one fact about several names: one passage must hold them all
            return "no passage mentions " + " and ".join(f'"{name}"' for name in wanted) + " together"
    from mmrag.providers._tables import absent_value

    missing_row = absent_value(question, [el for el in elements if el.kind == "table"])
    if missing_row is not None:
        return missing_row
    head = head_word(question)
    terms = _terms(question)
    element_terms = [_terms(text) for text in texts]
    if head is not None and not any(_holds_head(words, stems, head) for words, stems in zip(keyed, element_terms,
                                                                                             strict=True)) \
            and not _abbreviated(head, elements):
        return f'no passage mentions "{head}"'
    if _QUANTITY.search(question) and head is not None and not any(
            _NUMBER.search(text) and len(terms & _terms(text)) >= min(2, len(terms))
            for text in _sentences(elements, texts, numbered=True)):
        return f'no passage gives a number for "{head}"'

    if not terms or _LINKS.search(question):  # a linked question's words are spread over its passages
        return None
    df = {t: sum(1 for words in element_terms if t in words) for t in terms}
    n = len(elements)
    weight = {t: 1.0 + math.log(n / df[t]) if df[t] else 1.0 + math.log(n) + 1.0 for t in terms}
    total = sum(weight.values())
    best = max(sum(weight[t] for t in terms & words) for words in element_terms) / total
    if best < MIN_COVERAGE:
        return f"the closest passage holds {best:.0%} of the question's words"
    return None
