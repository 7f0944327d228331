"""Answer types: :class:`Hit` (one retrieved element), :class:`Citation` (what a marker ``[n]`` points to) and
:class:`Answer` (the text, how it was made, and the evidence behind it).

All three are frozen. ``Hit.to_dict`` is the one hit shape that both ``mmrag search --json`` and
``mmrag ask --json`` print. In Jupyter, evaluating a Hit or an Answer shows it with its pictures
(``_repr_html_``, drawn by :mod:`mmrag.render`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from mmrag.elements import Element, ElementKind
from mmrag.locations import (
    PLACE_KINDS,
    breadcrumb,
    caption_of,
    clock_span,
    location_kind_of,
    location_of,
    media_time,
    source_link,
)

if TYPE_CHECKING:
    from mmrag.stores.collection import ObjectStore

__all__ = ["CONTINUATION_LIST", "PLACE_KINDS", "Answer", "AnswerMode", "Citation", "Hit", "breadcrumb", "caption_of",
           "clock_span", "location_kind_of", "location_of", "media_time", "object_link", "source_link"]

logger = logging.getLogger(__name__)

PREVIEW_CHARS = 200
"""How much of an element's text a hit's ``text`` preview carries."""
CONTINUATION_LIST = "continuation"
"""The name in :attr:`Hit.lists` of a hit that finishes the text hit right before it (a chunk cut mid-sentence):
set by :func:`mmrag.retrievers.with_continuations`, read by the offline answerer."""

AnswerMode = Literal["generated", "extractive"]
"""``generated``: a chat model wrote the text. ``extractive``: the text is quoted from the sources, no model."""
ANSWER_MODES: tuple[str, ...] = get_args(AnswerMode)


def object_link(element: Element, objects: ObjectStore | None) -> str | None:
    """An openable link: the stored object (``file://`` or presigned URL), else :func:`source_link`."""
    if element.object_key and objects is not None:
        try:
            return objects.uri(element.object_key)
        except Exception as e:  # a link is a convenience: never fail a search or an answer over it
            logger.warning("no link for %s: %s", element.object_key, e)
    return source_link(element)


def _times(element: Element) -> dict[str, float | None]:
    span = media_time(element)
    return {"start": span[0], "end": span[1]} if span else {"start": None, "end": None}


@dataclass(frozen=True, slots=True)
class Hit:
    """One element found by retrieval.

    Attributes:
        element: the element found.
        score: its fused score (higher is better); the scale depends on the fusion (RRF scores are small), or
            the cosine similarity for image→image search.
        lists: the ranked lists that found it, e.g. ``("dense:q1", "bm25:q2")``.
        object_uri: a link to the raw object (``file://``, presigned S3 URL) or to the source, once resolved
            against the collection's object store (:func:`object_link`); None until then.
        duplicates: the same content found at other places (the same image inside an HTML page and as a file
            in a folder): one hit, every provenance.
    """

    element: Element
    score: float
    lists: tuple[str, ...] = ()
    object_uri: str | None = None
    duplicates: tuple[Element, ...] = ()

    def to_dict(self, *, preview: int = PREVIEW_CHARS) -> dict[str, Any]:
        """The JSON hit shape of ``search --json`` and ``ask --json``: ids, scores, place, links, a preview."""
        e = self.element
        text = e.text if len(e.text) <= preview else e.text[:preview].rstrip() + "…"
        return {
            "element_id": e.id,
            "score": self.score,
            "lists": list(self.lists),
            "kind": e.kind,
            "source": e.source,
            "page": e.page,
            "bbox": list(e.bbox) if e.bbox else None,
            "section": breadcrumb(e),
            "location": location_of(e),
            "location_kind": location_kind_of(e),
            **_times(e),
            "object_uri": self.object_uri,
            "source_uri": source_link(e),
            "caption": caption_of(e)[:preview] if e.kind != "text" else "",
            "text": text,
            "src": e.metadata.get("src"),
            "also_in": [{"element_id": d.id, "source": d.source, "page": d.page} for d in self.duplicates],
        }

    def _repr_html_(self) -> str:
        from mmrag.render import hits_html

        return hits_html([self])


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
        section: where the element sits, for people (:func:`breadcrumb`: ``intro.html › Regular expressions``).
        source_uri: a link to that place in the source (``#page=3``, ``#regular-expressions``), if known.
        location: the place in the format's terms (:func:`location_of`: ``page 3``, ``slide 3``,
            ``Sales!A1:D40``, ``rows 2-81``, ``Intro › Setup``); "" when none is known.
        location_kind: ``page``, ``slide``, ``sheet``, ``rows`` or ``heading``; "" when none is known.
        start: for video and audio, the second where the cited stretch starts; else None.
        end: the second where it ends.
    """

    marker: int
    element_id: str
    kind: ElementKind
    source: str
    page: int | None = None
    object_uri: str | None = None
    snippet: str = ""
    section: str = ""
    source_uri: str | None = None
    location: str = ""
    location_kind: str = ""
    start: float | None = None
    end: float | None = None

    @classmethod
    def for_element(cls, marker: int, element: Element, object_uri: str | None = None) -> Citation:
        """The citation ``[marker]`` of ``element``, with its snippet, breadcrumb and source link filled in."""
        span = media_time(element)
        return cls(marker, element.id, element.kind, element.source, element.page, object_uri,
                   caption_of(element)[:PREVIEW_CHARS], breadcrumb(element), source_link(element),
                   location_of(element), location_kind_of(element), *(span or (None, None)))

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
            "section": self.section,
            "source_uri": self.source_uri,
            "location": self.location,
            "location_kind": self.location_kind,
            "start": self.start,
            "end": self.end,
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
        decomposition: how ``sub_questions`` were made: ``"model"`` (the fast chat model), ``"rules"`` (the
            rule-based splitter; no chat model), ``"rules (model error: ValidationException: …)"`` or ``"rules
            (malformed model output: …)"`` (the model failed and the rules stood in), ``"off"`` (not split);
            None when a custom decompose stage did not say.
        answered: False when the evidence does not support an answer: the text then says "The sources do not
            say ..." and quotes the closest passages, labelled as such (an abstention).
        stop_reason: why the model stopped writing (Bedrock's ``stopReason``): ``end_turn``, ``max_tokens`` (the
            answer was cut, and says so), ``guardrail_intervened`` / ``content_filtered`` (the text is the
            filter's, not an answer, and says so), ``model_context_window_exceeded``; None without a model.
    """

    question: str
    text: str
    mode: AnswerMode
    sub_questions: tuple[str, ...] = ()
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    decomposition: str | None = None
    answered: bool = True
    stop_reason: str | None = None

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
        """A JSON-ready dict: question, answer, answered, mode, sub_questions, decomposition, stop_reason, citations
        and hits."""
        return {
            "question": self.question,
            "answer": self.text,
            "answered": self.answered,
            "mode": self.mode,
            "sub_questions": list(self.sub_questions),
            "decomposition": self.decomposition,
            "stop_reason": self.stop_reason,
            "citations": [c.to_dict() for c in self.citations],
            "hits": [{"rank": n, **h.to_dict()} for n, h in enumerate(self.hits, 1)],
        }

    def _repr_html_(self) -> str:
        from mmrag.render import answer_html

        return answer_html(self, standalone=False)
