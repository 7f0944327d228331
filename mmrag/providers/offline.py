"""Offline stand-ins for the two chat roles: a rule-based question splitter and an extractive answerer.

Both are pure and deterministic: no model, no network, inputs never changed. The splitter is here; the answerer,
:func:`extractive_answer`, is in :mod:`mmrag.providers._extractive`.

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
4. A hop inside a question: "the <noun> whose <clause>" names a thing by a fact that is itself a question, the
   first hop of a bridge ("How many MBROLA voices exist for the language whose espeak-ng identifier is hu?"
   asks first "Which language's espeak-ng identifier is hu?"), so that clause becomes a part of its own, even
   when the question has no other part: its evidence (the languages table) is then retrieved and covered, and the
   bridge stage (:mod:`mmrag.chains.hops`) can read the first hop's answer from it.

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

import re

from mmrag.providers._evidence import _ABBREVIATIONS
from mmrag.providers._extractive import EXTRACTIVE_HEADER, NO_EVIDENCE_TEXT, extractive_answer

__all__ = ["EXTRACTIVE_HEADER", "NO_EVIDENCE_TEXT", "decompose_rule_based", "extractive_answer", "whose_hops"]


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
    items = list(out.values()) if len(out) > 2 else [original]
    hops = [hop for hop in _hops(original) if hop.lower() not in {i.lower() for i in items}]
    return [*items, *hops][:max_sub_questions]


_WHOSE = re.compile(r"\bthe\s+((?:[\w.-]+\s+){0,2}?[\w.-]+)\s+whose\s+([^,;?!]+?)\s*(?=[,;?!]|\band\b|$)", re.I)


def _hops(question: str) -> list[str]:
    return [part for _, part in whose_hops(question)]


def whose_hops(question: str) -> list[tuple[str, str]]:
    """The first hops named inside ``question``, as ``(the phrase, its question)``: "the <noun> whose <clause>"
    → "Which <noun>'s <clause>?"."""
    masked = _mask(question)
    out: list[tuple[str, str]] = []
    for m in _WHOSE.finditer(masked):
        noun, clause = question[m.start(1):m.end(1)], question[m.start(2):m.end(2)].strip()
        if len(clause.split()) >= 2:
            out.append((question[m.start():m.end(2)], f"Which {noun}'s {clause}?"))
    return out


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
