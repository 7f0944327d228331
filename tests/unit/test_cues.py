"""Cues: which kinds of evidence a question names, and how they narrow a store filter (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from mmrag.retrievers.cues import (
    CUES,
    assigned_names,
    code_terms,
    cue_filter,
    holds_assignment,
    holds_code,
    holds_label,
    label_terms,
    name_words,
    query_words,
    question_cues,
)

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


@pytest.mark.parametrize(("question", "terms"), [
    ("Which data set is loaded with data() to illustrate the structural change tests?", ("data(",)),
    ('What does efp(ecm.model, type="OLS-CUSUM") compute, and what is coint.res?', ("efp(", "ecm.model", "coint.res")),
    ("Which regular-expression library does Apache mod_rewrite use?", ("mod_rewrite",)),
    ("Which species is in row 150 of the iris table in tabula-data.pdf?", ()),  # a file name is not code
    ("Which hue is used for the social democrats (SPD)?", ()),  # prose brackets: a space before them
    ("Which values does it take, e.g. the default?", ()),  # "e.g." is not a dotted name
    ("", ()),
])
def test_code_terms_are_the_calls_and_identifiers_a_question_quotes(question: str, terms: tuple[str, ...]) -> None:
    assert code_terms(question) == terms


# Lines of tests/data/pdf/strucchange-intro.pdf (pages 2, 3 and 6).
CODE = '> library("strucchange")\n> data("USIncExp")\n> USIncExp2 <- window(USIncExp, start = c(1985,12))'
PROSE = "The data is available in the strucchange package: it can be loaded and a suitable subset chosen by"
EFP = '> ocus <- efp(ecm.model, type="OLS-CUSUM", data=USIncExp2)'


def test_holds_code_needs_the_call_bracket_or_the_whole_identifier() -> None:
    assert holds_code(CODE, ("data(",))
    assert not holds_code(PROSE, ("data(",))  # the word alone is not the call
    assert not holds_code(EFP, ("data(",))  # an argument named data= is not a call of data()
    assert holds_code(EFP, ("efp(",)) and holds_code(EFP, ("ecm.model",))
    assert not holds_code(EFP, ("model",))  # part of a dotted name is not the name
    assert not holds_code("USIncExp2 <- window(USIncExp2)", ("window.USIncExp",))
    assert not holds_code(CODE, ())


@pytest.mark.parametrize(("question", "labels"), [
    ("What does Figure 15.4 show?", (("figure", "15.4"),)),
    ("What do Fig. 2 and Table 4 of the SSL introduction show?", (("figure", "2"), ("table", "4"))),
    ("Which figure shows the seats, and which table lists them?", ()),
    ("In 15.4 seconds, how many tables?", ()),
])
def test_label_terms_are_the_numbered_figures_and_tables_a_question_names(
        question: str, labels: tuple[tuple[str, str], ...]) -> None:
    assert label_terms(question) == labels


def test_holds_label_needs_the_whole_number() -> None:
    # Captions and a sentence of tests/data/html/octave/Two_002dDimensional-Plots.html.
    labels = label_terms("What does Figure 15.4 show?")
    assert holds_label("polar\nFigure 15.4: Polar plot.", labels)
    assert holds_label("produces the spiral plot shown in Figure 15.4.", labels)
    assert holds_label("see fig. 15.4", labels)
    assert not holds_label("hist\nFigure 15.2: Histogram.", labels)
    assert not holds_label("Figure 15.40 and Figure 15.4.1", labels)
    assert not holds_label("Table 15.4", labels)


@pytest.mark.parametrize(("source", "words"), [
    ("/work/tests/data/pdf/strucchange-intro.pdf", {"strucchange", "intro"}),
    ("tests/data/html/apache2/en/ssl/ssl_intro.html", {"ssl", "intro"}),  # folders do not count
    ("https://example.org/docs/Two_002dDimensional-Plots.html?x=1#top", {"two", "ddimensional", "plots"}),
    ("/d/vcd-residual-shadings.pdf", {"vcd", "residual", "shadings"}),
    ("/d/a.b.tar", set()),  # words of fewer than three characters are not names
    ("/d/README", {"readme"}),
])
def test_name_words(source: str, words: set[str]) -> None:
    assert name_words(source) == words


def test_query_words_are_the_words_that_can_match_a_name() -> None:
    assert query_words("Which data set does the strucchange introduction load?") == {
        "which", "data", "set", "does", "the", "strucchange", "introduction", "load"}
    assert "strucchange" in query_words("In strucchange-intro.pdf, what is H0?")


@pytest.mark.parametrize(("question", "names"), [
    ("What value is assigned to rseed?", ("rseed",)),
    ("What is rseed set to?", ("rseed",)),
    ("What value is assigned to the random seed rseed?", ("random", "seed", "rseed")),
    ("How is ss defined in the vignette?", ("ss", "vignette")),
    ("What value is coint.res set to?", ("coint.res",)),
    ("Which data set is used for the structural change tests?", ()),  # asks for no value: no names
    ("How do you draw a polar plot?", ()),
    ("", ()),
])
def test_assigned_names_are_the_words_of_a_question_for_a_value(question: str, names: tuple[str, ...]) -> None:
    assert assigned_names(question) == names


def test_holds_assignment_needs_a_statement_that_sets_the_name() -> None:
    # Lines of tests/data/pdf/vcd-residual-shadings.pdf (pages 1 and 3).
    page1 = '> library("vcd")\n> rseed <- 1071\n\nFurthermore, we define a rseed which will be used as the random seed'
    page3 = "> set.seed(rseed)\n> (art_max <- coindep_test(art, n = 5000))\n\ndata: art\nf(x) = 1.8696"
    assert holds_assignment(page1, ("rseed",))
    assert not holds_assignment(page3, ("rseed",))  # used, not set
    assert holds_assignment(page3, ("art_max",))  # R's "(x <- value)" sets and prints
    assert holds_assignment("rseed = 1071", ("rseed",)) and holds_assignment("x <- 1; rseed := 2", ("rseed",))
    assert not holds_assignment("if (rseed == 1071) stop()", ("rseed",))
    assert not holds_assignment("coindep_test(art, rseed = 2)", ("rseed",))  # a keyword argument
    assert not holds_assignment("> p.rseed <- 1", ("rseed",))  # part of a dotted name
    assert not holds_assignment("The seed is set to 1071 = the year.", ("seed",))  # prose
    assert not holds_assignment(page1, ())
