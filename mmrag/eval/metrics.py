"""Retrieval and answer metrics as pure functions (no I/O, inputs never changed).

A ranking is given as ``labels``: for each retrieved item, best first, the relevant item it is (any hashable,
e.g. the index of the expected evidence it matches) or ``None`` when it is not relevant. Several retrieved items
may carry the same label (two chunks of the same page): only the first counts, later ones are duplicates.
``relevant`` is the set of labels that exist. Ranks are 1-based.

- recall@k: the share of relevant labels found in the top k.
- reciprocal rank: ``1 / rank`` of the first relevant item (0 if none); MRR is its mean over questions.
- nDCG@k: DCG with gain 1 for each first occurrence of a relevant label and discount ``1 / log2(rank + 1)``,
  divided by the DCG of the ideal ranking (every relevant label at the top). Tied scores are handled as in
  McSherry and Najork (ECIR 2008): items with equal scores share the average gain of their tie group, so the
  order a system happened to return tied items in does not change the figure.
- citation precision: cited items that are relevant / cited items.
- abstention: over (answerable, abstained) pairs, recall = unanswerable questions abstained on / unanswerable
  questions; precision = unanswerable questions abstained on / abstentions; false abstention = answerable
  questions abstained on / answerable questions.
- answer match: SQuAD-style normalisation (lower case, punctuation and articles dropped, spaces collapsed;
  decimal points and thousands separators inside numbers kept), then exact equality or containment on word
  boundaries, against any of the accepted reference answers.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Hashable, Iterable, Sequence

__all__ = [
    "abstention",
    "answer_contains",
    "answer_exact",
    "citation_precision",
    "dcg",
    "ndcg_at_k",
    "normalize_answer",
    "percentile",
    "recall_at_k",
    "reciprocal_rank",
]


def _first_occurrences(labels: Sequence[Hashable | None]) -> list[Hashable | None]:
    """``labels`` with repeated relevant labels turned into None (a duplicate is not new evidence)."""
    seen: set[Hashable] = set()
    out: list[Hashable | None] = []
    for label in labels:
        if label is None or label in seen:
            out.append(None)
        else:
            seen.add(label)
            out.append(label)
    return out


def recall_at_k(labels: Sequence[Hashable | None], relevant: Iterable[Hashable], k: int) -> float:
    """Share of the relevant labels among the top ``k`` (1.0 when ``relevant`` is empty is not defined: 0.0)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    wanted = set(relevant)
    if not wanted:
        return 0.0
    return len(wanted & {label for label in labels[:k] if label is not None}) / len(wanted)


def reciprocal_rank(labels: Sequence[Hashable | None], k: int | None = None) -> float:
    """``1 / rank`` of the first relevant item within the top ``k`` (all if None), or 0.0."""
    for rank, label in enumerate(labels[:k] if k is not None else labels, start=1):
        if label is not None:
            return 1.0 / rank
    return 0.0


def dcg(gains: Sequence[float], k: int, scores: Sequence[float] | None = None) -> float:
    """Discounted cumulative gain of the top ``k``: ``sum gain_i / log2(i + 1)`` over 1-based ranks ``i``.

    With ``scores`` (the system's scores, in the same order as ``gains``, best first), items with equal scores
    form tie groups and each contributes the group's mean gain at its own discount (McSherry and Najork 2008).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if scores is not None and len(scores) != len(gains):
        raise ValueError(f"scores ({len(scores)}) and gains ({len(gains)}) must have the same length")
    total, start = 0.0, 0
    while start < len(gains) and start < k:
        end = start + 1
        if scores is not None:
            while end < len(gains) and scores[end] == scores[start]:
                end += 1
        mean_gain = math.fsum(gains[start:end]) / (end - start)
        total += mean_gain * math.fsum(1.0 / math.log2(rank + 1) for rank in range(start + 1, min(end, k) + 1))
        start = end
    return total


def ndcg_at_k(labels: Sequence[Hashable | None], relevant: Iterable[Hashable], k: int,
              scores: Sequence[float] | None = None) -> float:
    """Normalised DCG of the top ``k`` (binary gains, duplicates 0; see the module docstring); 0.0 if no relevant."""
    wanted = set(relevant)
    if not wanted:
        return 0.0
    gains = [1.0 if label is not None and label in wanted else 0.0 for label in _first_occurrences(labels)]
    ideal = dcg([1.0] * len(wanted), k)
    return dcg(gains, k, scores) / ideal


def citation_precision(cited_relevant: Sequence[bool]) -> float | None:
    """Share of citations that point at expected evidence; None when nothing was cited."""
    if not cited_relevant:
        return None
    return sum(1 for ok in cited_relevant if ok) / len(cited_relevant)


_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+")
_ARTICLES = frozenset(("a", "an", "the"))


def normalize_answer(text: str) -> str:
    """Lower case, accents folded, punctuation and articles dropped (but ``0.0096`` and ``50,000`` kept whole),
    whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(t for t in _TOKEN.findall(text) if t not in _ARTICLES)


def answer_exact(prediction: str, references: Iterable[str]) -> bool:
    """Whether the normalised prediction equals one of the normalised references."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(ref) for ref in references if normalize_answer(ref))


def answer_contains(prediction: str, references: Iterable[str]) -> bool:
    """Whether one of the normalised references occurs in the normalised prediction, on word boundaries."""
    pred = f" {normalize_answer(prediction)} "
    return any(f" {ref} " in pred for ref in map(normalize_answer, references) if ref)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks (numpy's default)."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def abstention(pairs: Iterable[tuple[bool, bool | None]]) -> dict[str, float | None]:
    """Abstention figures over ``(answerable, abstained)`` pairs (``abstained`` None: no answer, left out):
    ``abstention_recall``, ``abstention_precision`` and ``false_abstention`` (see the module docstring); each is
    None when its denominator is 0."""
    scored = [(ok, bool(done)) for ok, done in pairs if done is not None]
    unanswerable = [done for ok, done in scored if not ok]
    answerable = [done for ok, done in scored if ok]
    abstained = [ok for ok, done in scored if done]

    def share(hits: int, total: int) -> float | None:
        return hits / total if total else None

    return {"abstention_recall": share(sum(unanswerable), len(unanswerable)),
            "abstention_precision": share(sum(1 for ok in abstained if not ok), len(abstained)),
            "false_abstention": share(sum(answerable), len(answerable))}
