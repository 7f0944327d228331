"""Cues: which kinds of evidence a question names, and how they narrow a store filter (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from mmrag.retrievers.cues import CUES, cue_filter, question_cues

IMAGE, TABLE = CUES


def _names(question: str) -> list[str]:
    return [c.name for c in question_cues(question)]


@pytest.mark.parametrize(("question", "names"), [
    ("What does Figure 2 of the SSL introduction show?", ["image"]),
    ("See fig. 3 for the details", ["image"]),
    ("Which charts, diagrams or screenshots show it?", ["image"]),
    ("According to the street sign in the photo, what is prohibited?", ["image"]),
    ("Show the annotated syntax diagram of the RewriteRule directive.", ["image"]),
    ("In the mtcars table, what is the hp of the Datsun 710?", ["table"]),
    ("Which chart or table shows the seats?", ["image", "table"]),
    ("Which TABLES list the ports?", ["table"]),
    ("Which regular-expression library does mod_rewrite use?", []),
    ("What is the tablespoon count in the recipe?", []),  # whole words only
    ("Is the figurative meaning configurable?", []),
    ("", []),
])
def test_question_cues_follow_what_the_question_names(question: str, names: list[str]) -> None:
    assert _names(question) == names


@pytest.mark.parametrize(("base", "cue", "expected"), [
    (None, IMAGE, {"kind": ["image", "page"]}),
    ({}, TABLE, {"kind": ["table"]}),
    ({"source": ["/d/a.pdf"], "page": 3}, TABLE, {"source": ["/d/a.pdf"], "page": 3, "kind": ["table"]}),
    ({"kind": ["text", "image"]}, IMAGE, {"kind": ["image"]}),  # intersected, never widened
    ({"kind": "table"}, IMAGE, None),  # the user asked for tables only: no images let in
    ({"kind": ["image", "page"]}, IMAGE, None),  # already only the cue's kinds: the lists would repeat
    ({"kind": "table"}, TABLE, None),
])
def test_cue_filter_narrows_and_never_widens(base: dict[str, Any] | None, cue: Any,
                                             expected: dict[str, Any] | None) -> None:
    before = None if base is None else dict(base)
    assert cue_filter(cue, base) == expected
    assert base == before  # the input is not changed
