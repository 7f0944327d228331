"""Evidence pieces for extractive answers: stopwords, light stemming, sentence and table pieces.

Split from :mod:`mmrag.providers.offline`, which picks among these pieces.

Headings are context, not evidence: a line that is the element's own heading, section breadcrumb or page title
(HTML metadata), a breadcrumb (``A > B > C``), or a short title-like line standing on its own before a new
sentence (``3.1. Qualitative palettes``, ``zlib Usage Example``) is never offered as a piece. Figure and table
captions (``Figure 2: SSL Protocol Stack``) are kept: they answer "what does Figure 2 show?".
"""

from __future__ import annotations

import re

from mmrag.elements import TABLE_RULE, Element
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
        word = word[:-1]  # and on: "values" → "valu", as "value" ("expenditures" meets "expenditure")
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("e") else word  # "make", "making" → "mak"


_COMPOUND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


def _terms(text: str) -> set[str]:
    """Content words of ``text``: lower-cased, stopwords and single letters dropped, lightly stemmed; hyphenated
    compounds (``p-value``, ``sum-of-squares``) also count as one word of their own."""
    lower = text.lower()
    words = {_stem(t) for t in _TOKEN.findall(lower) if t not in _STOPWORDS and (len(t) > 1 or t.isdigit())}
    return words | set(_COMPOUND.findall(lower))


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


_CAPTION = re.compile(r"^(?:figure|fig\.|table|chart|diagram|listing|plate|exhibit)\s*[\dIVXivx]", re.IGNORECASE)
_HEADING_WORD = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.|[\w'’/&()-]+:?)$")
_HEADING_WORDS = 12


def _heading_like(line: str) -> bool:
    """A short, title-like line: no sentence punctuation, no code, at most a dozen words, starting with a capital
    or a section number (``2. Arthritis data``, ``Regular Expressions``, ``zlib Usage Example``)."""
    words = line.split()
    if not 1 <= len(words) <= _HEADING_WORDS or _CAPTION.match(line):
        return False
    if line.rstrip()[-1:] in ".!?;,=" or not all(_HEADING_WORD.match(w) for w in words):
        return False
    alpha = [w for w in words if any(c.isalpha() for c in w)]
    titled = sum(1 for w in alpha if w[:1].isupper()) * 2 >= len(alpha)  # "zlib Usage Example"
    return len(alpha) >= 2 and (words[0][:1].isupper() or words[0][:1].isdigit() or titled)


def _known_headings(el: Element) -> set[str]:
    """The element's own heading, section breadcrumb (and each of its parts) and page title, flattened."""
    out: set[str] = set()
    for key in ("heading", "section", "title", "breadcrumb"):
        value = " ".join(str(el.metadata.get(key) or "").split())
        if value:
            out.add(value.lower())
            out.update(part.strip().lower() for part in re.split(r"\s+[>›»/]\s+", value) if part.strip())
    return out


def _is_heading(line: str, known: set[str]) -> bool:
    flat = " ".join(line.split())
    if not flat:
        return False
    if flat.lower() in known or flat.lower().rstrip(" :") in known:
        return True
    if re.search(r"\s[>›»]\s", flat) and not flat.startswith((">", "R>")):
        return all(_heading_like(part) or part.lower() in known for part in re.split(r"\s+[>›»]\s+", flat) if part)
    return False


def _strip_headings(para: str, known: set[str]) -> str:
    """``para`` without its leading heading lines (a title-like line followed by a capitalised line)."""
    lines = [line for line in para.strip().splitlines() if line.strip()]
    while lines:
        first = lines[0].strip()
        if _is_heading(first, known):
            lines.pop(0)
            continue
        nxt = lines[1].strip() if len(lines) > 1 else ""
        if _heading_like(first) and (not nxt or nxt[:1].isupper() or nxt[:1] in "\"“(>"):
            lines.pop(0)
            continue
        break
    return "\n".join(lines)


def _sentence_pieces(text: str, *, min_words: int, known: set[str] | None = None) -> list[str]:
    out: list[str] = []
    text = _OWN_LINE.sub("\n\n\\1\n\n", text)  # code prompts and bullets end the sentence before them
    text = re.sub(r"(?<=\w)-\n(?=[a-z])", "-", text)  # "intro-\nduces" → "intro-duces"
    for para in re.split(r"\n\s*\n", text):
        if known is not None:
            para = _strip_headings(para, known)
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


def _symbols(queries: tuple[str, ...]) -> set[str]:
    """Stand-alone symbols a question asks about (``what does the ? character do``: ``?``)."""
    return {m for q in queries for m in re.findall(r"(?<=\s)[^\w\s]{1,3}(?=\s)", f" {q} ")}


def _row_score(row: str, query_terms: set[str], symbols: set[str]) -> int:
    cells = {c.strip().strip("\\") for c in row.strip().strip("|").split("|")}
    return len(query_terms & _terms(row)) + (3 if symbols & cells else 0)


def _table_piece(el: Element, query_terms: set[str], symbols: frozenset[str] = frozenset()) -> str | None:
    """The caption line, header and the rows sharing words with the question (best first), as markdown; None if
    there is no markdown table."""
    lines = [line.strip() for line in el.text.splitlines()]
    md = [i for i, line in enumerate(lines) if line.startswith("|")]
    if len(md) < 2:
        return None
    header, body = lines[md[0]], [lines[i] for i in md[1:]]
    separator = body.pop(0) if TABLE_RULE.fullmatch(body[0]) else "|" + "---|" * max(header.count("|") - 1, 1)
    context = [line for line in lines[: md[0]] if line]
    summary = str(el.metadata.get(SUMMARY_KEY) or "").strip().splitlines()
    caption = str(el.metadata.get(CAPTION_KEY) or "") or (context[0] if context else "") or (summary or [""])[0]
    scored = sorted(((_row_score(row, query_terms, set(symbols)), -i) for i, row in enumerate(body)), reverse=True)
    keep = [-i for score, i in scored[:_TABLE_ROWS] if score > 0] or list(range(min(3, len(body))))
    rows = [body[i] for i in keep]
    return "\n".join([caption.strip(), header, separator, *rows] if caption.strip() else [header, separator, *rows])


def _evidence_pieces(el: Element, *queries: str) -> list[str]:
    """What an element offers to quote, in document order (see :func:`extractive_answer`)."""
    known = _known_headings(el)
    if el.kind == "table":
        piece = _table_piece(el, set().union(*(_terms(q) for q in queries)), frozenset(_symbols(queries)))
        if piece is not None:
            return [piece]
        return _sentence_pieces(el.text, min_words=1)
    if el.kind == "text":
        pieces = _sentence_pieces(el.text, min_words=3, known=known)
        return pieces or _sentence_pieces(el.text, min_words=1, known=known)
    out: list[str] = []
    if _labels_only(el):  # a chart's axis labels and legend words are not statements: quote its caption
        return _sentence_pieces(el.text, min_words=1)
    for source in (el.metadata.get(CAPTION_KEY), el.metadata.get("ocr_text"), el.text):
        for piece in _sentence_pieces(str(source or ""), min_words=1):  # OCR lines of a sign are evidence
            if piece not in out:
                out.append(piece)
    return out


def _labels_only(el: Element) -> bool:
    """A vector figure with a caption of its own (``Figure 3: ...``) whose local description is only the words
    drawn in it (text layer or OCR: axis ticks, labels, legend). Those words find the figure, but quoted as
    evidence they crowd out sentences; a vision model's description (bedrock) is kept as evidence."""
    model = str(el.metadata.get("caption_model") or "")
    return el.metadata.get("figure") == "vector" and bool(el.text.strip()) and model.startswith("local:")
