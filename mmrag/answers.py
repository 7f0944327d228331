"""Answer types: :class:`Hit` (one retrieved element), :class:`Citation` (what a marker ``[n]`` points to) and
:class:`Answer` (the text, how it was made, and the evidence behind it).

All three are frozen. ``Answer.to_dict`` is what the CLI prints with ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from mmrag.elements import Element, ElementKind

__all__ = ["Answer", "AnswerMode", "Citation", "Hit"]

AnswerMode = Literal["generated", "extractive"]
"""``generated``: a chat model wrote the text. ``extractive``: the text is quoted from the sources, no model."""
ANSWER_MODES: tuple[str, ...] = get_args(AnswerMode)


@dataclass(frozen=True, slots=True)
class Hit:
    """One element found by retrieval.

    Attributes:
        element: the element found.
        score: its fused score (higher is better); the scale depends on the fusion (RRF scores are small).
        lists: the ranked lists that found it, e.g. ``("dense:q1", "bm25:q2")``.
    """

    element: Element
    score: float
    lists: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the element by id, kind, source and page, not its text)."""
        return {
            "element_id": self.element.id,
            "score": self.score,
            "lists": list(self.lists),
            "kind": self.element.kind,
            "source": self.element.source,
            "page": self.element.page,
        }


@dataclass(frozen=True, slots=True)
class Citation:
    """What the marker ``[marker]`` in an answer's text points to.

    Attributes:
        marker: the ``n`` of ``[n]`` in the answer text (generated answers use the context numbers the model saw).
        element_id: id of the cited element.
        kind: the cited element's kind.
        source: path or URL of the document it came from.
        page: 1-based page number, if any.
        object_uri: where the raw object (image, page render) can be fetched: the object key until a store
            resolves it to a presigned, HTTP or file URL; None for text.
        snippet: a short excerpt of what was quoted or used.
    """

    marker: int
    element_id: str
    kind: ElementKind
    source: str
    page: int | None = None
    object_uri: str | None = None
    snippet: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "marker": self.marker,
            "element_id": self.element_id,
            "kind": self.kind,
            "source": self.source,
            "page": self.page,
            "object_uri": self.object_uri,
            "snippet": self.snippet,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to one question, with the evidence behind it.

    Attributes:
        question: the question as asked.
        text: the answer, with citation markers ``[n]``.
        mode: ``generated`` (a chat model wrote it) or ``extractive`` (quoted from the sources, no model).
        sub_questions: the questions retrieval ran (the original first).
        citations: one per marker used in ``text``, in marker order.
        hits: the fused retrieval results the answer was built from, best first.
    """

    question: str
    text: str
    mode: AnswerMode
    sub_questions: tuple[str, ...] = ()
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ANSWER_MODES:
            raise ValueError(f"mode must be one of {ANSWER_MODES}, not {self.mode!r}")

    def __radd__(self, other: object) -> Answer:
        """``tokens + answer`` is the answer: a streamed query yields text tokens and then the ``Answer``, and
        LangChain's ``invoke`` adds the streamed pieces up, so ``invoke`` returns the ``Answer`` itself."""
        if isinstance(other, str):
            return self
        return NotImplemented  # type: ignore[no-any-return]

    def citation(self, marker: int) -> Citation | None:
        """The citation behind ``[marker]``, or None if the answer has no such marker."""
        return next((c for c in self.citations if c.marker == marker), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: question, answer, mode, sub_questions, citations and hits."""
        return {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "sub_questions": list(self.sub_questions),
            "citations": [c.to_dict() for c in self.citations],
            "hits": [h.to_dict() for h in self.hits],
        }
