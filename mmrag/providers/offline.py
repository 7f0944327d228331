"""Offline stand-ins for the two chat roles: a rule-based question splitter and an extractive answerer.

Both are pure and deterministic: no model, no network, inputs never changed.

**Decomposition rules** (:func:`decompose_rule_based`). The original question always comes first; parts follow
only when there are at least two of them, so a simple question yields just itself. A wrong split is worse than
none (every part costs a retrieval and can pull in noise), so each rule needs a clear signal:

1. Sentences (``.``, ``?``, ``!``) and semicolons separate clauses. A clause that is a statement rather than a
   question or request ("The iris data appear in both files.") is context: it stays in the original only.
   Leading connectors ("And", "Also,", "As well as") are dropped from a part.
2. Within a clause, ``and``, ``, and``, ``and also``, ``, also`` and ``as well as`` split only when the words
   after them start a new question and both sides have a verb:

   * a question word (what, which, who, whom, whose, when, where, why, how): "What is the rseed value and
     which data set is used...?" → both parts. A context phrase before the first question
     ("Using the maximum test..., which ... and what is its p-value?") is copied to the later parts.
   * an auxiliary (is, are, does, can...): "..., and is the association significant?" → a yes/no question.
   * a repeated preposition ("Which hue is used for SPD and for CDU?"): the second part re-uses the first
     part's words up to that preposition ("Which hue is used for CDU?").
   * a past-tense verb after a ``Who`` question ("Who founded X and led Y?" → "Who led Y?").
   * a request verb after a request ("Explain X and list Y." → "Explain X.", "List Y.").
3. ``Compare`` + "<noun> of/for/in <A>, <B> and <C> [in ...]" → one "What is/are <noun> of <A>
   [in ...]?" per entity (at most 4 words each). Without such a head noun the request stays whole.

Never split: inside quotes, parentheses or brackets; at a plain ``and`` after "between", "both", "either",
"neither" or "among" ("What is the difference between Haiku and Sonnet?"); noun phrases ("Who wrote Pride and
Prejudice?", "What are the mean and variance of X?" stay whole: their halves would be fragments without a verb).
``or`` never splits. Parts are deduplicated (case, spacing and end punctuation ignored) and cut to
``max_sub_questions`` in total, original included.

Known limits: no parser, so ellipsis is not resolved ("How many men and how many guns?" stays whole: its second
half has no verb); pronouns in parts are left as they are ("its p-value"); verb detection is a word list plus
suffixes, so an unusual verb can keep a real two-part question whole (that is the intended failure mode).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from mmrag.answers import Answer, Citation, Hit
from mmrag.providers._evidence import _ABBREVIATIONS, _evidence_pieces, _terms

__all__ = ["EXTRACTIVE_HEADER", "NO_EVIDENCE_TEXT", "decompose_rule_based", "extractive_answer"]

EXTRACTIVE_HEADER = (
    "Extractive answer (no generator configured): the passages below are quoted from the sources; "
    "no model wrote or checked them."
)
NO_EVIDENCE_TEXT = "No evidence found in the index for this question."
SNIPPET_CHARS = 200


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WH = _wordset("what which who whom whose when where why how")
_AUX = _wordset("is are was were do does did can could should would will has have had may might must")
_REQUEST = _wordset("list name give describe explain summarize summarise state identify show find tell compare")
_DISTRIBUTIVE_PREPS = _wordset("for of in on at from to with by about under during")
_IRREGULAR_VERBS = _wordset(
    "wrote made built won said found gave took became led ran began came went got saw knew told held brought "
    "bought sold chose drew grew met paid sent spent kept shows uses"
)
_VERB_OBJECT_CUES = _wordset("a an the this that these those its their his her to no any all more less")
_NO_SPLIT_AFTER = re.compile(r"\b(?:between|both|either|neither|among)\b", re.IGNORECASE)
_END = re.compile(r"[.?!;]+(?=\s|$)")
_COORD = re.compile(r"\s*(?:,\s*and\s+also|,\s*and|\band\s+also|\band|,?\s*\bas\s+well\s+as|,\s*also)\b\s*", re.I)
_CONNECTOR = re.compile(r"^(?:and\s+also|and|also|as\s+well\s+as|plus)\b[\s,]*", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z'/-]*|\d[\d.,]*")
_COMPARE = re.compile(r"^compare\s+", re.IGNORECASE)
_LIST_SEP = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|vs\.?|versus)\s+", re.IGNORECASE)
_LIST_END = re.compile(r"\s(?:in|at|on|from|for|during|within|under|using|across|according\s+to)\s", re.IGNORECASE)
_PAIRS = {"(": ")", "[": "]", "{": "}", "\u201c": "\u201d", "\u2018": "\u2019"}


# -- decomposition ---------------------------------------------------------------------------------------------
def decompose_rule_based(question: str, *, max_sub_questions: int = 4) -> list[str]:
    """Split a multi-part question into simpler ones, by rule (the local profile's decomposition).

    Args:
        question: the question as asked.
        max_sub_questions: most questions returned in total, the original included (at least 1).

    Returns:
        The original question (whitespace tidied) first, then its parts if it has two or more; ``[]`` for a
        blank question. See the module docstring for the rules.
    """
    if max_sub_questions < 1:
        raise ValueError(f"max_sub_questions must be at least 1, got {max_sub_questions}")
    original = " ".join(question.split())
    if not original:
        return []
    parts: list[str] = []
    for sentence in _sentences(original):
        body = _CONNECTOR.sub("", sentence.rstrip(".?!; ")).strip(" ,")
        if body and _is_question(body, asked=sentence.rstrip().endswith("?")):
            parts.extend(_split_clause(body))
    out: dict[str, str] = {}
    for item in [original, *parts]:
        key = " ".join(item.lower().split()).rstrip(".?!; ")
        if key:
            out.setdefault(key, item)
    return list(out.values())[:max_sub_questions] if len(out) > 2 else [original]


def _mask(text: str) -> str:
    """``text`` with everything inside quotes, parentheses and brackets replaced by ``_`` (same length)."""
    out = list(text)
    closers: list[str] = []
    for i, ch in enumerate(text):
        if closers and ch == closers[-1]:
            closers.pop()
        elif ch in _PAIRS or ch == '"':
            closers.append(_PAIRS.get(ch, '"'))
        elif closers:
            out[i] = "_"  # an unclosed quote protects the rest: no split is the safe failure
    return "".join(out)


def _sentences(text: str) -> list[str]:
    masked, out, start = _mask(text), [], 0
    for m in _END.finditer(masked):
        before = re.search(r"(\S+)$", masked[: m.start()])
        word = before.group(1).lower().lstrip("(\"'") if before else ""
        after = masked[m.end():].lstrip()
        if m.group(0) == "." and (word in _ABBREVIATIONS or len(word) == 1 or after[:1].islower()):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _is_question(clause: str, *, asked: bool) -> bool:
    words = _words(clause)
    if not words:
        return False
    return asked or words[0] in _WH | _AUX | _REQUEST or _context_prefix(clause) != ""


def _has_verb(clause: str) -> bool:
    words = _words(clause)
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in _AUX or w in _IRREGULAR_VERBS or (i == 0 and w in _REQUEST):
            return True
        if len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
            return True
        # "which data set shows a ...": an -s word followed by an object cue, not right after the question word
        third_person = w.endswith("s") and not w.endswith(("ss", "us", "is"))
        if third_person and i > 1 and (nxt in _VERB_OBJECT_CUES or nxt[:1].isdigit()):
            return True
    return False


def _context_prefix(clause: str) -> str:
    """The "In the X vignette, " before a clause's question word, or "" if it starts with one."""
    words = _words(clause)
    if not words or words[0] in _WH | _AUX | _REQUEST:
        return ""
    m = re.match(r"^(.{3,}?,\s*)(?=(?:" + "|".join(sorted(_WH)) + r")\b)", _mask(clause), re.IGNORECASE)
    return clause[: m.end(1)] if m else ""


def _split_clause(body: str) -> list[str]:
    compared = _split_comparison(body)
    if compared:
        return compared
    masked, prefix = _mask(body), _context_prefix(body)
    pieces: list[tuple[str, int, int]] = []  # (lead, start, end): part = lead + body[start:end]
    lead, start = "", 0
    for m in _COORD.finditer(masked):
        if m.start() <= start:
            continue
        left, right = lead + body[start:m.start()].strip(), body[m.end():].strip()
        plain_and = m.group(0).strip().lower() == "and"
        tail = masked[start:m.start()].rsplit(",", 1)[-1]
        if (plain_and and _NO_SPLIT_AFTER.search(tail)) or len(left.split()) < 3 or len(right.split()) < 2:
            continue
        new_lead = _lead_for(left, right, prefix)
        if new_lead is None:
            continue
        pieces.append((lead, start, m.start()))
        lead, start = new_lead, m.end()
    pieces.append((lead, start, len(body)))
    if len(pieces) == 1:
        return [_finish(body)]
    return [_finish(ld + body[s:e].strip()) for ld, s, e in pieces]


def _lead_for(left: str, right: str, prefix: str) -> str | None:
    """What to put before ``right`` to make it a question of its own, or None when this is no split point."""
    words = _words(right)
    if not _has_verb(left):
        return None
    first = words[0] if words else ""
    if first in _WH and len(right.split()) >= 3 and _has_verb(right):
        return prefix
    if first in _AUX and len(words) >= 3:
        return prefix
    if first in _REQUEST and len(words) >= 3 and _words(left)[:1] and _words(left)[0] in _REQUEST:
        return prefix  # "Explain X and list Y"
    if first in _DISTRIBUTIVE_PREPS:
        hits = list(re.finditer(rf"\b{first}\b", _mask(left), re.IGNORECASE))
        return left[: hits[-1].start()] if hits else None
    past = first in _IRREGULAR_VERBS or (len(first) > 4 and first.endswith("ed") and not first.endswith("eed"))
    if past and _words(left)[:1] == ["who"]:
        return "Who "
    return None


def _split_comparison(body: str) -> list[str]:
    """``Compare the hue of SPD and CDU`` → ``What is the hue of SPD?``, ``What is the hue of CDU?``; else []."""
    masked = _mask(body)
    verb = _COMPARE.match(masked)
    if not verb:
        return []
    rest = masked[verb.end():]
    first_sep = _LIST_SEP.search(rest)
    if not first_sep:
        return []
    preps = list(re.finditer(r"\s(?:of|for|in)\s", rest[: first_sep.start()], re.IGNORECASE))
    if not preps or _NO_SPLIT_AFTER.search(rest[: first_sep.start()]):
        return []
    head_end = verb.end() + preps[-1].end()
    end = _LIST_END.search(masked, verb.end() + first_sep.end())
    list_end = end.start() if end else len(body)
    items = [i.strip() for i in _LIST_SEP.split(body[head_end:list_end]) if i.strip()]
    if len(items) < 2 or any(len(i.split()) > 4 for i in items):
        return []
    head, tail = body[verb.end():head_end], body[list_end:]
    if _COORD.search(masked[list_end:]):
        return []  # "... in the vignette and explain why": the tail is not one phrase to repeat
    noun = head.split()[-2].lower() if len(head.split()) >= 2 else ""
    be = "are" if noun.endswith("s") and not noun.endswith(("ss", "us", "is")) else "is"
    return [f"What {be} {head}{item}{tail}".rstrip() + "?" for item in items]


def _finish(part: str) -> str:
    part = _CONNECTOR.sub("", " ".join(part.split())).strip(" ,;")
    if not part:
        return ""
    part = part[0].upper() + part[1:]
    if part[-1] not in ".?!":
        part += "?" if _words(part)[:1] and _words(part)[0] not in _REQUEST else "."
    return part


# -- extractive answer -----------------------------------------------------------------------------------------
_WANTS_NUMBER = re.compile(
    r"\bhow\s+(?:many|much|long|old|often|large|big|far|high)\b|\b(?:value|number|count|total|p-value|percentage|"
    r"percent|year|port|size|amount|rate|seed)s?\b", re.IGNORECASE)
_VISUAL = re.compile(r"\b(?:figure|fig\.|chart|diagram|screenshot|image|picture|photo|plot|graph|illustration|"
                     r"drawing)s?\b", re.IGNORECASE)
_TABULAR = re.compile(r"\btables?\b", re.IGNORECASE)
_CAPTION_START = re.compile(r"^(?:figure|fig\.|table|chart|diagram)\s*\d", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def extractive_answer(
    question: str,
    hits: Sequence[Hit],
    *,
    sub_questions: Sequence[str] = (),
    max_sentences: int = 5,
    max_citations: int = 5,
) -> Answer:
    """An answer quoted from the best evidence, with citations: the local profile's synthesis (no model).

    The top hits offer pieces: sentences of a text chunk (code lines apart; headings are context, not evidence,
    and are never quoted); a table's caption line, header and the rows sharing words with the question, best
    row first (markdown); sentences of an image's or page's caption, OCR text or text. For each sub-question
    (or the question itself when it was not split) the one piece that best answers it **leads**, in the order
    of the parts; supporting quotes for the whole question follow in hit order. A piece's score for a question
    is the share of the question's content words it covers (rare
    words weigh more: ``1 + ln(N / df)`` over the N pieces), halved when it only restates the question, and
    adjusted by what the question asks for: when it asks for a number ("how many", "what value", "p-value"...),
    a piece with a number the question does not contain gains a little and one without is halved; small bonuses
    go to an image/page element or a ``Figure n`` caption when the question names a figure/chart/diagram/plot, and
    to a table when it names a table; ties go to the better-ranked hit. Each quote is
    followed by ``[n]``; ``n`` numbers distinct cited elements from 1 in order of first use. With no word in
    common, the top hit's first piece is quoted.

    Args:
        question: the question as asked.
        hits: fused retrieval results, best first.
        sub_questions: the questions retrieval ran (usually the original first); each should get evidence.
        max_sentences: most pieces quoted.
        max_citations: most distinct elements cited.

    Returns:
        An ``Answer`` with ``mode="extractive"``, its text starting with :data:`EXTRACTIVE_HEADER`, or
        :data:`NO_EVIDENCE_TEXT` and no citations when there are no hits.
    """
    if max_sentences < 1 or max_citations < 1:
        raise ValueError("max_sentences and max_citations must be at least 1")
    subs = tuple(sub_questions)
    if not hits:
        return Answer(question=question, text=NO_EVIDENCE_TEXT, mode="extractive", sub_questions=subs,
                      hits=tuple(hits))
    elements = list({h.element.id: h.element for h in hits}.values())  # each element once, at its best rank
    elements = elements[: max(2 * max_citations, 10)]  # only the top hits are read
    pieces = [_Piece(rank, pos, text, frozenset(_terms(text)), el.kind) for rank, el in enumerate(elements)
              for pos, text in enumerate(_evidence_pieces(el, question, *subs))]
    parts = [s for s in subs if s.strip() != question.strip()]
    asked = parts or [question]  # a multi-part question: each part leads with its best piece, in order
    chosen = _select(pieces, asked, max_sentences=max_sentences, max_citations=max_citations, extra=[question])
    if not chosen and pieces:
        chosen.append(pieces[0])  # nothing shares a word (e.g. an image found by image search): quote the top hit

    markers: dict[int, int] = {}
    citations: list[Citation] = []
    blocks: list[str] = []
    for piece in chosen:
        rank, text = piece.rank, piece.text
        el = elements[rank]
        if rank not in markers:
            markers[rank] = len(markers) + 1
            snippet = " ".join(text.split())
            if len(snippet) > SNIPPET_CHARS:
                snippet = snippet[: SNIPPET_CHARS - 1].rstrip() + "…"
            citations.append(Citation(marker=markers[rank], element_id=el.id, kind=el.kind, source=el.source,
                                      page=el.page, object_uri=el.object_key, snippet=snippet))
        quoted = text if el.kind == "table" else " ".join(text.split())
        blocks.append(f"{quoted}{chr(10) if chr(10) in quoted else ' '}[{markers[rank]}]")  # a table: [n] below it
    text = EXTRACTIVE_HEADER + "\n\n" + "\n\n".join(blocks)
    return Answer(question=question, text=text, mode="extractive", sub_questions=subs,
                  citations=tuple(citations), hits=tuple(hits))


class _Piece(NamedTuple):
    rank: int  # of the hit it comes from
    pos: int  # within that element
    text: str
    words: frozenset[str]
    kind: str


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _select(pieces: list[_Piece], asked: list[str], *, max_sentences: int, max_citations: int,
            extra: Sequence[str] = ()) -> list[_Piece]:
    """The pieces to quote: each question's lead first (in question order), then supporting pieces in hit order.

    Supporting pieces score at least half the best score for all questions together, or are right next to a
    chosen piece of the same element (the code line after the sentence that names it).
    """
    df = Counter(t for p in pieces for t in p.words)
    weight = {t: 1.0 + math.log(len(pieces) / n) for t, n in df.items()}
    unseen = 1.0 + math.log(max(len(pieces), 1))
    numbers = {p: _numbers(p.text) for p in pieces}

    def scorer(query: str) -> Callable[[_Piece], float]:
        terms = _terms(query)
        total = sum(weight.get(t, unseen) for t in terms) or 1.0
        asked_numbers = _numbers(query)
        wants_number = bool(_WANTS_NUMBER.search(query))
        visual, tabular = bool(_VISUAL.search(query)), bool(_TABULAR.search(query))

        def score(p: _Piece) -> float:
            common = sorted(terms & p.words)  # sorted: the same float sum on every run
            if not common:
                return 0.0
            value = sum(weight[t] for t in common) / total
            if not p.words - terms:
                value *= 0.5  # restates the question, adds nothing
            if wants_number:  # the answer is a number: a piece without a new one cannot be it
                value = value + 0.25 if numbers[p] - asked_numbers else value * 0.5
            if visual and (p.kind in ("image", "page") or _CAPTION_START.match(p.text)):
                value += 0.2
            if tabular and p.kind == "table":
                value += 0.2
            return value + 0.01 / (1 + p.rank)

        return score

    chosen: list[_Piece] = []

    def allowed(p: _Piece) -> bool:
        cited = {c.rank for c in chosen}
        said = {" ".join(c.text.split()) for c in chosen}  # the same caption in a chunk and on its figure: once
        return p not in chosen and " ".join(p.text.split()) not in said and (
            p.rank in cited or len(cited) < max_citations)

    for query in asked:  # coverage first: each question's best piece leads
        if len(chosen) >= max_sentences:
            break
        score = scorer(query)
        ranked = sorted((p for p in pieces if allowed(p)), key=lambda p: (-score(p), p.rank, p.pos))
        if ranked and score(ranked[0]) > 0:
            chosen.append(ranked[0])
    leads = len(chosen)
    overall = scorer(" ".join(dict.fromkeys([*asked, *extra])))
    floor = max((overall(p) for p in pieces), default=0.0) / 2
    support: list[_Piece] = []
    while len(chosen) + len(support) < max_sentences:
        near = {(p.rank, p.pos + step) for p in chosen[:leads] + support for step in (-1, 1)}
        said = {" ".join(c.text.split()) for c in support}
        candidates = [p for p in pieces if allowed(p) and " ".join(p.text.split()) not in said and overall(p) > 0
                      and (overall(p) >= floor or (p.rank, p.pos) in near)]
        if not candidates:
            break
        support.append(max(candidates, key=lambda p: (overall(p), -p.rank, -p.pos)))
    return chosen + sorted(support, key=lambda p: (p.rank, p.pos))
