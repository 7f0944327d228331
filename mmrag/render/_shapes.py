"""What the renderer reads of a hit, a citation and an answer: the attributes it shows, as read-only protocols.

:class:`mmrag.answers.Hit`, :class:`~mmrag.answers.Citation` and :class:`~mmrag.answers.Answer` fit them, and so does
any object with the same attributes. Typing the renderer against these shapes rather than importing
:mod:`mmrag.answers` keeps the dependency one way: the answer types draw themselves in a notebook through
:mod:`mmrag.render` (their ``_repr_html_``), and the renderer never imports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mmrag.elements import Element

__all__ = ["AnswerShape", "CitationShape", "HitShape"]


class HitShape(Protocol):
    """A retrieved element: what a gallery card shows (see :class:`mmrag.answers.Hit`)."""

    @property
    def element(self) -> Element: ...
    @property
    def score(self) -> float: ...
    @property
    def lists(self) -> Sequence[str]: ...
    @property
    def object_uri(self) -> str | None: ...
    @property
    def duplicates(self) -> Sequence[Element]: ...


class CitationShape(Protocol):
    """What a marker ``[n]`` points to (see :class:`mmrag.answers.Citation`)."""

    @property
    def marker(self) -> int: ...
    @property
    def element_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def object_uri(self) -> str | None: ...
    @property
    def snippet(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def source_uri(self) -> str | None: ...


class AnswerShape(Protocol):
    """An answer with its citations and the hits they came from (see :class:`mmrag.answers.Answer`)."""

    @property
    def question(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def sub_questions(self) -> Sequence[str]: ...
    @property
    def citations(self) -> Sequence[CitationShape]: ...
    @property
    def hits(self) -> Sequence[HitShape]: ...
