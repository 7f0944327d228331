"""The local profile's synthesis: an answer quoted from the best evidence, with citations (no model).

Split from :mod:`mmrag.providers.offline` (which exports :func:`extractive_answer`); the pieces an element offers
come from :mod:`mmrag.providers._evidence`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from mmrag.answers import CONTINUATION_LIST, Answer, Citation, Hit
from mmrag.elements import Element
from mmrag.providers._evidence import _STOPWORDS, _TOKEN, _evidence_pieces, _stem, _terms
from mmrag.providers._support import ABSTAIN_PREFIX, unsupported
from mmrag.providers._tables import table_leads
from mmrag.retrievers.cues import assigned_names, holds_assignment

__all__ = ["EXTRACTIVE_HEADER", "NO_EVIDENCE_TEXT", "extractive_answer"]

EXTRACTIVE_HEADER = (
    "Extractive answer (no generator configured): the passages below are quoted from the sources; "
    "no model wrote or checked them."
)
NO_EVIDENCE_TEXT = "No evidence found in the index for this question."
SNIPPET_CHARS = 200

_WANTS_NUMBER = re.compile(
    r"\bhow\s+(?:many|much|long|old|often|large|big|far|high)\b|\b(?:value|number|count|total|p-value|percentage|"
    r"percent|year|port|size|amount|rate|seed)s?\b", re.IGNORECASE)
_VISUAL = re.compile(r"\b(?:figure|fig\.|chart|diagram|screenshot|image|picture|photo|plot|graph|illustration|"
                     r"drawing)s?\b", re.IGNORECASE)
_TABULAR = re.compile(r"\btables?\b", re.IGNORECASE)
_CAPTION_START = re.compile(r"^(?:figure|fig\.|table|chart|diagram)\s*\d", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_HOW_TO = re.compile(r"\bhow\s+(?:(?:do|does|did|can|could|should|would|will|may|might|shall)\s+(?:you|i|we|one)|to)"
                     r"\s+([a-z]+)", re.IGNORECASE)
FRAME_WEIGHT = 0.5
"""The weight kept by the verb of a how-to question ("How do you *draw* a polar plot?"): the answer may say it with
another verb ("Create a 2-D plot from polar coordinates"), and a piece that only shares the verb ("Draw a 2-D scatter
plot") answers another question."""
ASSIGNMENT_BONUS = 0.3
"""Added, for a question that asks what a name is set to ("What value is assigned to rseed?"), to a piece that sets
it as code does (``> rseed <- 1071``; see :func:`mmrag.retrievers.cues.holds_assignment`): that statement is the
answer, however few of the question's other words it repeats."""
CALL_BONUS = 0.1
"""Added, for a how-to question, to a piece that calls a word of the question as code (``polar (theta, rho)`` for
"How do you draw a polar plot?"): an example shows how."""
PHRASE_BONUS = 0.015
"""Added per content word, beyond the first, of the longest stretch of the question a piece repeats word for word
("plot a histogram" in "y, plot a histogram of the values", not in "Plot an angular histogram"). A tie-breaker
between pieces that share the same words: measured with ``bench/eval_readme.py``, 0.1 let a caption that repeats
"consumption expenditures" lead over the sentence with more of the question's words (answer leads 27 → 26 of 38)."""


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
    go to an image/page element or a ``Figure n`` caption when the question names a figure/chart/diagram/plot (not
    in a how-to question: it asks for a method), and to a table when it names a table. When it asks what a name is
    set to ("What value is assigned to rseed?"), the statement that sets it (``> rseed <- 1071``) gains
    :data:`ASSIGNMENT_BONUS`. The verb of a how-to question ("How do you *draw* a polar plot?") weighs
    :data:`FRAME_WEIGHT`, and a piece that calls one of its words as code (``polar (...)``) gains
    :data:`CALL_BONUS`. A piece that repeats a stretch of the question word for word ("plot a histogram") gains
    :data:`PHRASE_BONUS` per content word beyond the first: a tie-breaker. Ties go to the better-ranked hit. Each
    quote is followed by ``[n]``; ``n`` numbers distinct cited elements from 1 in order of first use. With no word
    in common, the top hit's first piece is quoted. A quote that is the cut end of its chunk ("... a suitable subset
    chosen by") is followed by the first lines of the chunk that continues it, when retrieval found one (listed
    as ``continuation``, see :mod:`mmrag.retrievers.continuation`): the code or example the sentence leads to; a
    lead's completion takes the citation of the last supporting quotes if ``max_citations`` is reached.

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
    pieces = [_Piece(rank, pos, text, _words(text), el.kind) for rank, el in enumerate(elements)
              for pos, text in enumerate(_evidence_pieces(el, question, *subs))]
    parts = [s for s in subs if s.strip() != question.strip()]
    asked = parts or [question]  # a multi-part question: each part leads with its best piece, in order
    looked_up = [(number, _Piece(rank, -2, text, _words(text), "table"))
                 for number, rank, text in table_leads(elements[:TABLE_HITS], asked if parts else [question])]
    why = None if looked_up else unsupported(question, elements)
    lead_of: list[int] = []
    chosen, leads = _select(pieces, asked, max_sentences=max_sentences, max_citations=max_citations,
                            extra=[question], lead_of=lead_of)
    if looked_up:  # the computed value leads for its part; the table's own quote would repeat it
        ranks = {p.rank for _, p in looked_up}
        answered = {i for i, _ in looked_up}
        others = [(i, p) for i, p in zip(lead_of, chosen[:leads], strict=True) if i not in answered]
        ordered = [p for _, p in sorted([*looked_up, *others], key=lambda ip: ip[0])]
        support = [p for p in chosen[leads:] if p.rank not in ranks and p not in ordered]
        chosen = [*ordered, *support][:max_sentences]
        leads = len(ordered)
    if not chosen and pieces:
        chosen.append(pieces[0])  # nothing shares a word (e.g. an image found by image search): quote the top hit
    continued = _continued(hits, elements)
    chosen = _room_for_completions(chosen, leads, pieces, continued, max_citations=max_citations)
    chosen = _completed(chosen, pieces, elements, continued, max_sentences=max_sentences,
                        max_citations=max_citations)

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
        quoted = text if el.kind == "table" or piece.pos == -1 else " ".join(text.split())  # tables, code: lines
        blocks.append(f"{quoted}{chr(10) if chr(10) in quoted else ' '}[{markers[rank]}]")  # a table: [n] below it
    opening = [f"{ABSTAIN_PREFIX} what the question asks ({why}). The closest passages, which do not answer "
               "it:"] if why is not None else []
    text = EXTRACTIVE_HEADER + "\n\n" + "\n\n".join([*opening, *blocks])
    return Answer(question=question, text=text, mode="extractive", sub_questions=subs,
                  citations=tuple(citations), hits=tuple(hits), answered=why is None)


TABLE_HITS = 10
"""Tables among this many top hits are read for a deterministic lookup or count (:mod:`._tables`)."""



_PARAGRAPH = re.compile(r"\n\s*\n")
_COMPLETION_CHARS = 300


def _continued(hits: Sequence[Hit], elements: Sequence[Element]) -> dict[int, int]:
    """Rank of a text element that stops mid-sentence → rank of the element that continues it: the one right
    after it in ``elements`` whose hit is listed as :data:`CONTINUATION_LIST` (the query chain puts it there)."""
    continuing = {h.element.id for h in hits if CONTINUATION_LIST in h.lists}
    return {rank: rank + 1 for rank in range(len(elements) - 1)
            if elements[rank].kind == "text" and elements[rank + 1].id in continuing}


def _completion(el: Element) -> str | None:
    """How a continuation goes on: its first paragraph that is not a figure or table caption, whole lines up to
    :data:`_COMPLETION_CHARS` (the code after "... can be loaded by", the example after "you could use:")."""
    for para in _PARAGRAPH.split(el.text):
        lines = [line.strip() for line in para.strip().splitlines() if line.strip()]
        if not lines or _CAPTION_START.match(lines[0]):
            continue
        kept: list[str] = []
        for line in lines:
            if kept and sum(len(k) + 1 for k in kept) + len(line) > _COMPLETION_CHARS:
                break
            kept.append(line)
        return "\n".join(kept)
    return None


def _last_positions(pieces: Sequence[_Piece]) -> dict[int, int]:
    last_pos: dict[int, int] = {}
    for p in pieces:
        last_pos[p.rank] = max(last_pos.get(p.rank, 0), p.pos)
    return last_pos


def _room_for_completions(chosen: list[_Piece], leads: int, pieces: Sequence[_Piece], continued: dict[int, int],
                          *, max_citations: int) -> list[_Piece]:
    """``chosen`` without the supporting quotes of the last elements only they cite, as many as it takes to leave
    a citation for the completion of each lead that is the cut end of its element (:func:`_completed`): how the
    sentence that answers goes on ("... it can be loaded by" → ``data("USIncExp")``) matters more than a fifth
    supporting quote."""
    last_pos = _last_positions(pieces)
    cited = {p.rank for p in chosen}
    needed = {continued[p.rank] for p in chosen[:leads]
              if p.rank in continued and p.pos == last_pos.get(p.rank)} - cited
    kept = list(chosen)
    lead_ranks = {p.rank for p in chosen[:leads]}
    while needed and len({p.rank for p in kept}) + len(needed) > max_citations:
        support_only = [p.rank for p in kept[leads:] if p.rank not in lead_ranks and p.rank not in needed]
        if not support_only:
            break
        dropped = support_only[-1]
        kept = [p for p in kept if p.rank != dropped]
    return kept


def _completed(chosen: list[_Piece], pieces: Sequence[_Piece], elements: Sequence[Element],
               continued: dict[int, int], *, max_sentences: int, max_citations: int) -> list[_Piece]:
    """``chosen`` with a quoted piece that is the cut end of its element ("... a suitable subset chosen by")
    followed by how the next chunk goes on (:func:`_completion`), when retrieval found that continuation.

    The completion takes a quote's place (the last supporting quote goes) and a citation of its own, within
    ``max_citations``; it is never quoted twice.
    """
    if not continued:
        return chosen
    last_pos = _last_positions(pieces)
    out: list[_Piece] = []
    added = 0
    completions: dict[int, str] = {}  # rank → its completion's text, flattened: later quotes of it are not repeated
    for piece in chosen:
        if piece.rank in completions and " ".join(piece.text.split()) in completions[piece.rank]:
            continue
        out.append(piece)
        nxt = continued.get(piece.rank)
        if nxt is None or piece.pos != last_pos.get(piece.rank) or any(p.rank == nxt for p in out):
            continue
        cited = {p.rank for p in chosen} | {p.rank for p in out}
        completion = _completion(elements[nxt])
        if completion is None or (nxt not in cited and len(cited) >= max_citations):
            continue
        out.append(_Piece(nxt, -1, completion, _words(completion), elements[nxt].kind))
        completions[nxt] = " ".join(completion.split())
        added += 1
    while added and len(out) > max_sentences:  # the last quote that is no completion and none's cut end goes
        droppable = [i for i, p in enumerate(out) if i > 0 and p.pos != -1
                     and (i + 1 == len(out) or out[i + 1].pos != -1)]
        if not droppable:
            break
        del out[droppable[-1]]
    return out


class _Piece(NamedTuple):
    rank: int  # of the hit it comes from
    pos: int  # within that element
    text: str
    words: frozenset[str]
    kind: str


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _select(pieces: list[_Piece], asked: list[str], *, max_sentences: int, max_citations: int,
            extra: Sequence[str] = (), lead_of: list[int] | None = None) -> tuple[list[_Piece], int]:
    """The pieces to quote: each question's lead first (in question order), then supporting pieces in hit order;
    and how many leads there are.

    Supporting pieces score at least half the best score for all questions together, or are right next to a
    chosen piece of the same element (the code line after the sentence that names it).
    """
    df = Counter(t for p in pieces for t in p.words)
    weight = {t: 1.0 + math.log(len(pieces) / n) for t, n in df.items()}
    unseen = 1.0 + math.log(max(len(pieces), 1))
    numbers = {p: _numbers(p.text) for p in pieces}

    tokens = {p: _tokens(p.text) for p in pieces}

    def scorer(query: str) -> Callable[[_Piece], float]:
        return _scorer(query, weight, unseen, numbers, tokens)

    chosen: list[_Piece] = []

    def allowed(p: _Piece) -> bool:
        cited = {c.rank for c in chosen}
        said = {" ".join(c.text.split()) for c in chosen}  # the same caption in a chunk and on its figure: once
        return p not in chosen and " ".join(p.text.split()) not in said and (
            p.rank in cited or len(cited) < max_citations)

    for number, query in enumerate(asked):  # coverage first: each question's best piece leads
        if len(chosen) >= max_sentences:
            break
        score = scorer(query)
        ranked = sorted((p for p in pieces if allowed(p)), key=lambda p: (-score(p), p.rank, p.pos))
        if ranked and score(ranked[0]) > 0:
            chosen.append(ranked[0])
            if lead_of is not None:
                lead_of.append(number)
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
    return chosen + sorted(support, key=lambda p: (p.rank, p.pos)), leads


_HYPHENATED = re.compile(r"\b([a-z]{2,})-([a-z]{2,})\b")


def _words(text: str) -> frozenset[str]:
    """A piece's content words (:func:`~mmrag.providers._evidence._terms`), with a word hyphenated at a line end in
    a PDF also whole ("expen-ditures" counts as "expenditures" too)."""
    joined = {_stem(a + b) for a, b in _HYPHENATED.findall(text.lower())}
    return frozenset(_terms(text) | joined)


def _tokens(text: str) -> list[str]:
    """Every word of ``text`` in order, stopwords included, lightly stemmed: for matching stretches of words."""
    return [_stem(t) for t in _TOKEN.findall(text.lower())]


def _phrase(question: list[str], piece: list[str]) -> int:
    """Content words in the longest stretch of ``question`` that ``piece`` repeats word for word."""
    best = 0
    previous = [0] * (len(piece) + 1)  # content words of the common stretch ending before the last word, per j
    for word in question:
        current = [0] * (len(piece) + 1)
        for j, other in enumerate(piece, 1):
            if word == other:
                current[j] = previous[j - 1] + (word not in _STOPWORDS)
                best = max(best, current[j])
        previous = current
    return best


def _scorer(query: str, weight: dict[str, float], unseen: float, numbers: dict[_Piece, set[str]],
            tokens: dict[_Piece, list[str]]) -> Callable[[_Piece], float]:
    """How well a piece answers ``query`` (see :func:`extractive_answer`); ``weight``, ``numbers`` and ``tokens``
    are the pieces' word weights, numbers and words (:func:`_tokens`), ``unseen`` a word in no piece's weight."""
    terms = _terms(query)
    how_to = _HOW_TO.search(query)
    frame = {_stem(how_to.group(1).lower())} if how_to else set()

    def w(t: str) -> float:
        return weight.get(t, unseen) * (FRAME_WEIGHT if t in frame else 1.0)

    total = sum(w(t) for t in terms) or 1.0
    asked_numbers = _numbers(query)
    asked_tokens = _tokens(query)
    wants_number = bool(_WANTS_NUMBER.search(query))
    visual = bool(_VISUAL.search(query)) and not how_to  # a how-to question asks for a method, not a picture
    named = {t for t in _TOKEN.findall(query.lower()) if len(t) > 1 and t not in _STOPWORDS and not t[0].isdigit()}
    names = "|".join(sorted(map(re.escape, named)))
    call = re.compile(rf"(?<![\w.])(?:{names})\s?\(") if how_to and named else None
    tabular = bool(_TABULAR.search(query))
    assigned = assigned_names(query)

    def score(p: _Piece) -> float:
        common = sorted(terms & p.words)  # sorted: the same float sum on every run
        if not common:
            return 0.0
        value = sum(w(t) for t in common) / total
        if not p.words - terms:
            value *= 0.5  # restates the question, adds nothing
        if wants_number:  # the answer is a number: a piece without a new one cannot be it
            value = value + 0.25 if numbers[p] - asked_numbers else value * 0.5
        if visual and (p.kind in ("image", "page") or _CAPTION_START.match(p.text)):
            value += 0.2
        if tabular and p.kind == "table":
            value += 0.2
        if assigned and holds_assignment(p.text, assigned):
            value += ASSIGNMENT_BONUS
        if call is not None and call.search(p.text.lower()):
            value += CALL_BONUS
        if len(common) > 1:
            value += PHRASE_BONUS * max(0, _phrase(asked_tokens, tokens[p]) - 1)
        return value + 0.01 / (1 + p.rank)

    return score
