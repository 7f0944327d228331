"""Evidence pieces for extractive answers: stopwords, light stemming, sentence and table pieces.

Split from :mod:`mmrag.providers.offline`, which picks among these pieces.
"""

from __future__ import annotations

import re

from mmrag.elements import Element
from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_ABBREVIATIONS = _wordset("e.g i.e etc vs cf fig figs eq no nos dr mr mrs ms st approx al resp")


_STOPWORDS = _wordset(
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having he her "
    "here hers him his how i if in into is it its itself just me more most my no nor not now of off on once "
    "only or other our out over own same she should so some such than that the their theirs them then there "
    "these they this those through to too under until up very was we were what when where which while who whom "
    "whose why will with would you your yours many much according shown show shows given"
)
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"\u201c'(\[])")
_TABLE_SEPARATOR = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+\s*$")
_OWN_LINE = re.compile(r"^([ \t]*(?:R>|>>>|>|\$|[-*\u2022])[ \t].*)$", re.MULTILINE)
_PIECE_CHARS = 300
_TABLE_ROWS = 5


def _stem(word: str) -> str:
    if any(c.isdigit() for c in word):
        return word.replace(",", "") if word[0].isdigit() else word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("e") else word  # "make", "making" → "mak"


def _terms(text: str) -> set[str]:
    """Content words of ``text``: lower-cased, stopwords and single letters dropped, lightly stemmed."""
    return {_stem(t) for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS and (len(t) > 1 or t.isdigit())}


def _windows(sentence: str) -> list[str]:
    """A long sentence cut at its line breaks (code, lists), else at word boundaries, into short pieces."""
    if len(sentence) <= _PIECE_CHARS:
        return [sentence]
    units = [u for line in sentence.splitlines() for u in (line.split() if len(line) > _PIECE_CHARS else [line])]
    out = [""]
    for unit in units:
        if out[-1] and len(out[-1]) + len(unit) >= _PIECE_CHARS:
            out.append("")
        out[-1] = f"{out[-1]} {unit}".strip()
    return [piece for piece in out if piece]


def _sentence_pieces(text: str, *, min_words: int) -> list[str]:
    out: list[str] = []
    text = _OWN_LINE.sub("\n\n\\1\n\n", text)  # code prompts and bullets end the sentence before them
    text = re.sub(r"(?<=\w)-\n(?=[a-z])", "-", text)  # "intro-\nduces" → "intro-duces"
    for para in re.split(r"\n\s*\n", text):
        sentences: list[str] = []
        for sentence in _SENTENCE_END.split(para.strip()):
            last = sentences[-1].rsplit(None, 1)[-1].lower().rstrip(".") if sentences else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):  # "et al." / "J." ends no sentence
                sentences[-1] += " " + sentence
            else:
                sentences.append(sentence)
        for sentence in sentences:
            for piece in _windows(sentence.strip()):
                flat = " ".join(piece.split())
                if len(flat.split()) >= min_words and flat not in out:
                    out.append(flat)
    return out


def _table_piece(el: Element, query_terms: set[str]) -> str | None:
    """The caption line, header and the rows sharing words with the question, as markdown; None if no table."""
    lines = [line.strip() for line in el.text.splitlines()]
    md = [i for i, line in enumerate(lines) if line.startswith("|")]
    if len(md) < 2:
        return None
    header, body = lines[md[0]], [lines[i] for i in md[1:]]
    separator = body.pop(0) if _TABLE_SEPARATOR.match(body[0]) else "|" + "---|" * max(header.count("|") - 1, 1)
    context = [line for line in lines[: md[0]] if line]
    summary = str(el.metadata.get(SUMMARY_KEY) or "").strip().splitlines()
    caption = str(el.metadata.get(CAPTION_KEY) or "") or (context[0] if context else "") or (summary or [""])[0]
    scored = sorted(((len(query_terms & _terms(row)), -i) for i, row in enumerate(body)), reverse=True)
    keep = sorted(-i for score, i in scored[:_TABLE_ROWS] if score > 0) or list(range(min(3, len(body))))
    rows = [body[i] for i in keep]
    return "\n".join([caption.strip(), header, separator, *rows] if caption.strip() else [header, separator, *rows])


def _evidence_pieces(el: Element, *queries: str) -> list[str]:
    """What an element offers to quote, in document order (see :func:`extractive_answer`)."""
    if el.kind == "table":
        piece = _table_piece(el, set().union(*(_terms(q) for q in queries)))
        if piece is not None:
            return [piece]
        return _sentence_pieces(el.text, min_words=1)
    if el.kind == "text":
        pieces = _sentence_pieces(el.text, min_words=3)
        return pieces or _sentence_pieces(el.text, min_words=1)
    out: list[str] = []
    for source in (el.metadata.get(CAPTION_KEY), el.metadata.get("ocr_text"), el.text):
        for piece in _sentence_pieces(str(source or ""), min_words=1):
            if piece not in out:
                out.append(piece)
    return out
