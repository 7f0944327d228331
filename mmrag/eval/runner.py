"""``evaluate(golden, settings, variants=...) -> EvalReport``: every question through every variant, scored.

Questions run concurrently (a bounded thread pool; each question's sub-questions also retrieve in parallel, as
in the query chain). A question that fails is recorded with its error and the run goes on.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.eval.golden import GoldenProblem, GoldenQuestion, GoldenSet, element_text, load_golden, source_matches
from mmrag.eval.metrics import (
    abstention,
    answer_contains,
    answer_exact,
    citation_precision,
    ndcg_at_k,
    percentile,
    recall_at_k,
    reciprocal_rank,
)
from mmrag.eval.usage import Usage
from mmrag.eval.variants import DEFAULT_VARIANTS, VARIANTS, Run, Variant, run_question

if TYPE_CHECKING:
    from mmrag.chains.query import QueryOptions
    from mmrag.config import Settings
    from mmrag.eval.judge import Judge
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = ["METRICS", "EvalReport", "QuestionResult", "Retrieved", "evaluate", "resolve_variants"]

logger = logging.getLogger(__name__)

METRICS = ("recall", "mrr", "ndcg", "citation_precision", "answer_contains", "answer_first", "answer_exact")
"""Per-question metrics, averaged per variant and modality (answer metrics over questions with a reference)."""
PREVIEW_CHARS = 160


@dataclass(frozen=True)
class Retrieved:
    """One retrieved element as the report shows it; ``label`` is the expected item it matched, if any."""

    element_id: str
    kind: str
    source: str
    page: int | None
    score: float
    preview: str
    label: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"element_id": self.element_id, "kind": self.kind, "source": self.source, "page": self.page,
                "score": self.score, "preview": self.preview, "relevant": self.label is not None}


@dataclass(frozen=True)
class QuestionResult:
    """One question run through one variant, with its metrics (None: not applicable or failed)."""

    id: str
    variant: str
    modality: tuple[str, ...]
    question: str
    k: int
    sub_questions: tuple[str, ...] = ()
    retrieved: tuple[Retrieved, ...] = ()
    recall: float | None = None
    mrr: float | None = None
    ndcg: float | None = None
    citation_precision: float | None = None
    answer_contains: bool | None = None
    answer_first: bool | None = None
    answer_exact: bool | None = None
    answer: str | None = None
    reference: str | None = None
    latency_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    judge_score: float | None = None
    judge_reason: str | None = None
    judge_model: str | None = None
    judge_usage: Usage = field(default_factory=Usage)
    split: str | None = None
    answerable: bool = True
    abstained: bool | None = None
    """The answer said the sources do not say (``Answer.answered`` false); None without an answer."""

    @property
    def missed(self) -> bool:
        """Not all expected evidence was in the top k (or the question failed)."""
        return self.error is not None or (self.recall is not None and self.recall < 1.0)

    def to_row(self) -> dict[str, Any]:
        """A flat dict (one DataFrame row): ids, metrics, latency, usage and the answer."""
        return {"id": self.id, "variant": self.variant, "modality": ",".join(self.modality), "k": self.k,
                "recall": self.recall, "mrr": self.mrr, "ndcg": self.ndcg,
                "citation_precision": self.citation_precision, "answer_contains": self.answer_contains,
                "answer_first": self.answer_first,
                "answer_exact": self.answer_exact, "latency_s": self.latency_s, "model_calls": self.usage.calls,
                "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
                "cost_usd": self.usage.cost_usd, "judge_score": self.judge_score, "judge_reason": self.judge_reason,
                "judge_model": self.judge_model, "judge_calls": self.judge_usage.calls,
                "judge_cost_usd": self.judge_usage.cost_usd, "error": self.error, "question": self.question,
                "split": self.split, "answerable": self.answerable, "abstained": self.abstained,
                "sub_questions": list(self.sub_questions), "reference": self.reference, "answer": self.answer,
                "retrieved": [r.to_dict() for r in self.retrieved]}


def _mean(values: Iterable[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None


@dataclass(frozen=True)
class EvalReport:
    """The results of :func:`evaluate`: one :class:`QuestionResult` per (question, variant)."""

    k: int
    variants: tuple[str, ...]
    results: tuple[QuestionResult, ...]
    problems: tuple[GoldenProblem, ...] = ()
    collection: str = ""
    profile: str = ""
    notes: tuple[str, ...] = ()
    judge_model: str | None = None
    """The model id of the LLM judge (``evaluate(..., judge=True)``), None when answers were not judged."""

    @property
    def judge_label(self) -> str | None:
        """``LLM judge (<model id>)``: how reports name the judge's score; None without a judge."""
        from mmrag.eval.judge import judge_label

        return None if self.judge_model is None else judge_label(self.judge_model)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted({m for r in self.results for m in r.modality}))

    @property
    def splits(self) -> tuple[str, ...]:
        """The golden splits among the results (``dev``, ``test``), in that order; empty when none is marked."""
        return tuple(sorted({r.split for r in self.results if r.split is not None}))

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per (question, variant): ``pandas.DataFrame(report.to_rows())``."""
        return [r.to_row() for r in self.results]

    def summary(self, split: str | None = None) -> list[dict[str, Any]]:
        """Per variant, overall (``modality == "all"``) and per modality tag: n and the mean of every metric,
        abstention (:func:`~mmrag.eval.metrics.abstention`), latency p50/p95, model calls and estimated cost;
        over the questions of one ``split`` when given."""
        rows = []
        for variant in self.variants:
            mine = [r for r in self.results if r.variant == variant and (split is None or r.split == split)]
            for modality in ("all", *self.modalities):
                group = [r for r in mine if modality == "all" or modality in r.modality]
                if not group:
                    continue
                latencies = [r.latency_s for r in group if r.latency_s is not None]
                costs = [r.usage.cost_usd for r in group]
                row: dict[str, Any] = {"variant": variant, "modality": modality, "n": len(group),
                                       "errors": sum(1 for r in group if r.error)}
                for metric in METRICS:
                    row[metric] = _mean(getattr(r, metric) for r in group)
                row["answers_checked"] = sum(1 for r in group if r.answer_contains is not None)
                row.update(abstention([(r.answerable, r.abstained) for r in group]))
                row["judge_score"] = _mean(r.judge_score for r in group)
                row["judged"] = sum(1 for r in group if r.judge_score is not None)
                row["latency_p50_s"] = percentile(latencies, 50)
                row["latency_p95_s"] = percentile(latencies, 95)
                row["model_calls"] = sum(r.usage.calls for r in group)
                row["cost_usd"] = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
                judge_costs = [r.judge_usage.cost_usd for r in group]
                row["judge_calls"] = sum(r.judge_usage.calls for r in group)
                row["judge_cost_usd"] = (None if any(c is None for c in judge_costs)
                                         else sum(c for c in judge_costs if c is not None))
                rows.append(row)
        return rows

    def misses(self, variant: str | None = None) -> list[QuestionResult]:
        """Results whose expected evidence was not all in the top k (or that failed)."""
        return [r for r in self.results if r.missed and (variant is None or r.variant == variant)]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "collection": self.collection, "profile": self.profile, "variants": list(self.variants),
                "summary": self.summary(), "problems": [{"line": p.line, "message": p.message} for p in self.problems],
                "notes": list(self.notes), "judge_model": self.judge_model, "judge_label": self.judge_label}

    def to_markdown(self, modalities: Sequence[str] | None = None, split: str | None = None) -> str:
        """The summary as a Markdown table (recall@k, MRR, nDCG@k, answer contains, p50 latency; the share of
        unanswerable and of answerable questions abstained on when the golden set has unanswerable ones; the LLM
        judge's mean score as a last column when answers were judged), over one ``split`` when given."""
        k = self.k
        judged = self.judge_label is not None
        abstains = any(not r.answerable for r in self.results)
        lines = [f"| variant | questions | recall@{k} | MRR | nDCG@{k} | answer contains | citation precision "
                 "| p50 latency |" + (" abstains (unanswerable) | abstains (answerable) |" if abstains else "")
                 + (f" {self.judge_label} |" if judged else ""),
                 "|---|---|---|---|---|---|---|---|" + ("---|---|" if abstains else "") + ("---|" if judged else "")]

        def fmt(value: float | None, digits: int = 2) -> str:
            return "–" if value is None else f"{value:.{digits}f}"

        for row in self.summary(split):
            if modalities is not None and row["modality"] not in modalities:
                continue
            name = row["variant"] if row["modality"] == "all" else f"{row['variant']} ({row['modality']})"
            latency = "–" if row["latency_p50_s"] is None else f"{row['latency_p50_s'] * 1000:.0f} ms"
            lines.append(f"| {name} | {row['n']} | {fmt(row['recall'])} | {fmt(row['mrr'])} | {fmt(row['ndcg'])} "
                         f"| {fmt(row['answer_contains'])} | {fmt(row['citation_precision'])} | {latency} |"
                         + (f" {fmt(row['abstention_recall'])} | {fmt(row['false_abstention'])} |" if abstains else "")
                         + (f" {fmt(row['judge_score'])} |" if judged else ""))
        return "\n".join(lines)


def resolve_variants(names: Iterable[str] | str | None, *, has_chat: bool) -> tuple[Variant, ...]:
    """Variants by name (a comma-separated string or a list); the defaults when None.

    Raises:
        ValueError: an unknown variant name (the message lists the known ones).
    """
    if names is None:
        chosen = [*DEFAULT_VARIANTS, *(["qa-pairs"] if has_chat else [])]
    else:
        chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in chosen if n not in VARIANTS]
    if unknown or not chosen:
        raise ValueError(f"unknown variant(s) {', '.join(unknown) or '(none given)'}: choose from "
                         f"{', '.join(VARIANTS)}")
    return tuple(VARIANTS[n] for n in dict.fromkeys(chosen))


def score(question: GoldenQuestion, variant: str, run: Run, k: int) -> QuestionResult:
    """The metrics of one run (pure: no I/O)."""
    labels = [question.label(h.element) for h in run.hits]
    relevant = range(len(question.expected)) if question.match == "all" else [0]
    # "any": one relevant item, found by whichever expected object a hit matches
    ranked = labels if question.match == "all" else [0 if label is not None else None for label in labels]
    retrieved = tuple(
        Retrieved(h.element.id, h.element.kind, h.element.source, h.element.page, h.score,
                  " ".join(element_text(h.element).split())[:PREVIEW_CHARS], label)
        for h, label in zip(run.hits, labels, strict=True))
    answer = run.answer
    cited: list[bool] = []
    contains = first = exact = None
    abstained = None if answer is None else not answer.answered
    if answer is not None:
        by_id = {h.element.id: h.element for h in run.hits}
        cited = [question.label(by_id[c.element_id]) is not None for c in answer.citations if c.element_id in by_id]
        if question.answers:  # an abstention quotes passages but says they do not answer: it answers nothing
            contains = not abstained and answer_contains(answer.text, question.answers)
            first = not abstained and answer_contains(_first_statement(answer.text), question.answers)
            exact = not abstained and answer_exact(_answer_body(answer.text), question.answers)
    if not question.answerable:
        return QuestionResult(
            id=question.id, variant=variant, modality=question.modality, question=question.question, k=k,
            sub_questions=run.sub_questions, retrieved=retrieved, answer=answer.text if answer is not None else None,
            latency_s=run.latency_s, usage=run.usage, split=question.split, answerable=False, abstained=abstained)
    return QuestionResult(
        id=question.id, variant=variant, modality=question.modality, question=question.question, k=k,
        sub_questions=run.sub_questions, retrieved=retrieved,
        recall=recall_at_k(ranked, relevant, k), mrr=reciprocal_rank(ranked, k),
        ndcg=ndcg_at_k(ranked, relevant, k, [h.score for h in run.hits]),
        citation_precision=citation_precision(cited) if answer is not None else None,
        answer_contains=contains, answer_first=first, answer_exact=exact,
        answer=answer.text if answer is not None else None,
        reference=question.answer, latency_s=run.latency_s, usage=run.usage, split=question.split,
        abstained=abstained)


def _first_statement(text: str) -> str:
    """What an answer says first: up to its first citation marker (the extractive header left out)."""
    body = _answer_body_keep_markers(text)
    match = re.search(r"\[\d+(?:\s*,\s*\d+)*\]", body)
    return body[: match.start()] if match else body


def _answer_body_keep_markers(text: str) -> str:
    from mmrag.providers.offline import EXTRACTIVE_HEADER

    return text.replace(EXTRACTIVE_HEADER, "", 1)


def _answer_body(text: str) -> str:
    """The answer without the extractive header line and citation markers (for the exact check)."""
    from mmrag.providers.offline import EXTRACTIVE_HEADER

    return re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", text.replace(EXTRACTIVE_HEADER, ""))


def _absent_sources(golden_set: GoldenSet, collection: Collection) -> tuple[int, list[str]] | None:
    """How many answerable questions expect only sources the collection does not hold, and which (None: none)."""
    indexed = [entry.source for entry in collection.manifest.sources()]
    missing: list[str] = []
    count = 0
    for question in golden_set.questions:
        wanted = {e.source for e in question.expected}
        absent = {w for w in wanted if not any(source_matches(w, s) for s in indexed)}
        if question.answerable and wanted and absent == wanted:
            count += 1
            missing += [w for w in sorted(absent) if w not in missing]
    return (count, missing) if count else None


def evaluate(
    golden: GoldenSet | Sequence[GoldenQuestion] | str | Path,
    settings: Settings | None = None,
    *,
    variants: Iterable[str] | str | None = None,
    k: int = 5,
    options: QueryOptions | None = None,
    concurrency: int = 4,
    providers: Providers | None = None,
    collection: Collection | None = None,
    judge: bool | Judge = False,
    split: str | None = None,
) -> EvalReport:
    """Run every golden question through every variant on one collection and score it.

    Args:
        golden: a :class:`GoldenSet`, questions, or the path of a golden JSONL file (bad lines are reported in
            ``EvalReport.problems``; the others run).
        settings: which models and collection (default: ``Settings()``); the collection must exist.
        variants: names from :data:`~mmrag.eval.variants.VARIANTS` (list or comma-separated); default:
            dense, bm25, hybrid, decompose+rrf, and qa-pairs when a chat model is configured.
        k: the cut-off of recall@k and nDCG@k (MRR is also cut at k).
        options: retrieval options (per-list k, fused context size, sub-question cap, RRF k); default
            ``QueryOptions(k=max(8, k), context_size=max(10, k))``.
        concurrency: questions in flight at once.
        providers: use these model clients instead of building them from ``settings``.
        collection: use this open collection instead of opening it from ``settings``.
        judge: True to have the fast chat model grade every generated answer that has a reference answer
            (:mod:`mmrag.eval.judge`: 0 / 0.5 / 1 and a one-line reason, labelled "LLM judge (<model id>)"), or a
            :class:`~mmrag.eval.judge.Judge` of your own. Its calls are counted apart (``judge_calls``,
            ``judge_cost_usd``).
        split: run only the questions of this golden split (``dev`` or ``test``); None: all of them.

    Raises:
        NotFoundError: the golden file or the collection does not exist.
        ConfigError: ``judge=True`` without a chat model (the local profile has none).
        ValueError: an unknown variant, or ``k``/``concurrency`` below 1.
    """
    from mmrag.chains.query import QueryOptions
    from mmrag.config import Settings

    if k < 1 or concurrency < 1:
        raise ValueError("k and concurrency must be at least 1")
    settings = settings or Settings()
    if isinstance(golden, str | Path):
        golden = load_golden(golden)
    golden_set = golden if isinstance(golden, GoldenSet) else GoldenSet(tuple(golden))
    if split is not None:
        golden_set = replace(golden_set, questions=tuple(q for q in golden_set.questions if q.split == split))
    if providers is None or collection is None:
        from mmrag.chains._components import open_components

        opened = open_components(settings, create=False)
        providers, collection = providers or opened[0], collection or opened[1]
    chosen = resolve_variants(variants, has_chat=providers.strong_chat is not None)
    grader = _judge(judge, providers, local=settings.profile == "local")
    options = options or QueryOptions(k=max(8, k), context_size=max(10, k))
    local = settings.profile == "local"
    notes = []
    if providers.strong_chat is None and any(v.mode == "qa-pairs" for v in chosen):
        notes.append("qa-pairs without a chat model answers extractively: it is the same as decompose+rrf")
    if (absent := _absent_sources(golden_set, collection)):
        count, missing = absent
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        from mmrag.parsers.mime import MEDIA_SUFFIXES

        media = any(m.lower().endswith(tuple(MEDIA_SUFFIXES)) for m in missing)
        notes.append(f"{count} question(s) expect sources that are not in the collection ({named}): they score 0 "
                     "until those are ingested"
                     + (" (video and audio need pip install 'mmrag[video]')" if media else ""))

    def one(job: tuple[GoldenQuestion, Variant]) -> QuestionResult:
        question, variant = job
        try:
            run = run_question(question, variant, providers, collection, options, local=local)
        except Exception as e:  # noqa: BLE001 — one failed question must not sink the evaluation
            logger.warning("question %s (%s) failed: %s", question.id, variant.name, e)
            return QuestionResult(question.id, variant.name, question.modality, question.question, k,
                                  reference=question.answer, error=f"{type(e).__name__}: {e}",
                                  split=question.split, answerable=question.answerable)
        result = score(question, variant.name, run, k)
        if grader is None or run.answer is None or not question.answers:
            return result
        verdict = grader.grade(question.question, question.answers, run.answer, run.hits)
        reason = verdict.reason if verdict.error is None else f"(the judge failed: {verdict.error})"
        return replace(result, judge_score=verdict.score, judge_reason=reason, judge_model=verdict.model,
                       judge_usage=verdict.usage)

    jobs = [(q, v) for v in chosen for q in golden_set.questions]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mmrag-eval-q") as pool:
        results = tuple(pool.map(one, jobs))
    return EvalReport(k, tuple(v.name for v in chosen), results, golden_set.problems, collection.name,
                      settings.profile, tuple(notes), grader.model_id if grader is not None else None)


def _judge(judge: bool | Judge, providers: Providers, *, local: bool) -> Judge | None:
    """The judge ``evaluate`` uses: None, the caller's, or one on the fast chat model (ConfigError without one)."""
    from mmrag.eval.judge import Judge

    if isinstance(judge, Judge):
        return judge
    if not judge:
        return None
    if providers.fast_chat is None:
        from mmrag.errors import ConfigError

        raise ConfigError("the LLM judge needs a chat model and the local profile has none (there is no judge model "
                          "offline): set MMRAG_PROFILE=bedrock to have Claude Haiku grade the answers, or drop --judge")
    return Judge(providers.fast_chat, local=local)
