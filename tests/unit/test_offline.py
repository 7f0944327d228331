"""Offline chat-role stand-ins: rule-based decomposition and the extractive answer."""

from __future__ import annotations

import json
import re

import pytest

from mmrag.answers import Answer, Citation, Hit
from mmrag.elements import Element
from mmrag.providers.base import CAPTION_KEY
from mmrag.providers.factory import EXTRACTIVE_LABEL
from mmrag.providers.offline import (
    EXTRACTIVE_HEADER,
    NO_EVIDENCE_TEXT,
    decompose_rule_based,
    extractive_answer,
)

# The multi-part multi-hop questions of the corpus (m04, m06, m08 in /work/shared/corpus/questions.jsonl).
M04 = (
    "Using the maximum test with 5000 permutations in the vcd vignette, which data set shows a significant "
    "departure from independence at the 5% level, Arthritis or pistonrings, and what is its p-value?"
)
M06 = (
    "The iris data appear in both tabula-data.pdf and the scikit-learn confusion-matrix example. Which species is "
    "listed in row 150 of the iris table in tabula-data.pdf, and how many test samples of that species were "
    "classified correctly in the unnormalized confusion matrix?"
)
M08 = (
    "How many piston-ring failures in total were recorded for compressor C4 across all three legs, and is the "
    "leg/compressor association significant under the maximum test (p-value)?"
)


# -- decomposition ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question",
    [
        "Which regular-expression library does Apache mod_rewrite use?",
        "What value is assigned to rseed, the random seed used to make the permutation tests reproducible in the "
        "vcd residual-shadings vignette?",
        "In the female Arthritis data (Treatment x Improved) of the vcd residual-shadings vignette, how many Treated "
        "patients showed Marked improvement?",
        "How many days separate the first and the last dated diary entries in the Siege of Vicksburg sample?",
        'According to the Octave Quick Reference card, what does "lookfor str" do?',
        # false-split guards: noun phrases joined by "and" are the object of one question; kept whole
        "What is the difference between Haiku and Sonnet?",
        "Who wrote Pride and Prejudice?",
        "What are the mean and variance of X?",
        "What do the red and blue bars mean?",
        "What is the difference between what X says and what Y does?",
        "How many men and how many guns?",  # elliptic second half (no verb): not split, a known limit
        "What data set and which test were used?",  # first half would be a fragment
        "Compare Haiku and Sonnet.",  # no head noun to build full questions from
        "Compare the hue of SPD and CDU in the HCL vignette and explain why.",  # tail is not one phrase
        # inside quotes and parentheses nothing splits
        'What does "lookfor str and how is it used" do?',
        "What is the rseed value (and how is it set) in the vignette?",
        "e.g. what is it? i.e. the thing.",
    ],
)
def test_simple_questions_stay_whole(question: str) -> None:
    assert decompose_rule_based(question) == [question]


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("What is X? And how does Y work?", ["What is X?", "How does Y work?"]),
        (
            "What is the rseed value and which data set is used for the structural change tests?",
            ["What is the rseed value?", "Which data set is used for the structural change tests?"],
        ),
        (
            "What is the rseed value; which data set is used for the tests?",
            ["What is the rseed value?", "Which data set is used for the tests?"],
        ),
        ("What does lookfor do, as well as how does help work?", ["What does lookfor do?", "How does help work?"]),
        ("What is the rseed, also what data set is used?", ["What is the rseed?", "What data set is used?"]),
        ("Is the test significant and does it use ties?", ["Is the test significant?", "Does it use ties?"]),
        ("Which hue is used for SPD and for CDU?", ["Which hue is used for SPD?", "Which hue is used for CDU?"]),
        ("What is the p-value of Arthritis and of pistonrings?",
         ["What is the p-value of Arthritis?", "What is the p-value of pistonrings?"]),
        ("Who founded Apache and led the httpd project?", ["Who founded Apache?", "Who led the httpd project?"]),
        ("Explain the test and list the data sets it uses.", ["Explain the test.", "List the data sets it uses."]),
        ("Compare the hue of SPD and CDU", ["What is the hue of SPD?", "What is the hue of CDU?"]),
        (
            "Compare the seats of CDU/CSU, SPD and FDP in the 2005 example.",
            [
                "What are the seats of CDU/CSU in the 2005 example?",
                "What are the seats of SPD in the 2005 example?",
                "What are the seats of FDP in the 2005 example?",
            ],
        ),
        (
            M04,
            [
                "Using the maximum test with 5000 permutations in the vcd vignette, which data set shows a significant "
                "departure from independence at the 5% level, Arthritis or pistonrings?",
                # the context phrase before the first question word is carried over
                "Using the maximum test with 5000 permutations in the vcd vignette, what is its p-value?",
            ],
        ),
        (
            M06,  # the leading statement is context, not a part
            [
                "Which species is listed in row 150 of the iris table in tabula-data.pdf?",
                "How many test samples of that species were classified correctly in the unnormalized confusion matrix?",
            ],
        ),
        (
            M08,
            [
                "How many piston-ring failures in total were recorded for compressor C4 across all three legs?",
                "Is the leg/compressor association significant under the maximum test (p-value)?",
            ],
        ),
    ],
)
def test_multi_part_questions_split_after_the_original(question: str, parts: list[str]) -> None:
    assert decompose_rule_based(question) == [question, *parts]


def test_max_sub_questions_counts_the_original() -> None:
    q = "Compare the seats of CDU/CSU, SPD and FDP in the 2005 example."
    assert len(decompose_rule_based(q)) == 4
    assert decompose_rule_based(q, max_sub_questions=2) == [q, "What are the seats of CDU/CSU in the 2005 example?"]
    assert decompose_rule_based(q, max_sub_questions=1) == [q]
    with pytest.raises(ValueError, match="at least 1"):
        decompose_rule_based(q, max_sub_questions=0)


def test_dedupe_whitespace_and_empty_input() -> None:
    assert decompose_rule_based("What is X?   what is  x") == ["What is X? what is x"]  # one distinct part only
    two = decompose_rule_based("  What is X?\n What is Y?  What is x?  ")
    assert two == ["What is X? What is Y? What is x?", "What is X?", "What is Y?"]
    assert decompose_rule_based("") == [] and decompose_rule_based("   ") == []
    for q in (M04, M06, M08, "What is X? And how does Y work?"):
        out = decompose_rule_based(q)
        assert out[0] == q and all(s.strip() == s and s for s in out)
        assert len({" ".join(s.lower().split()) for s in out}) == len(out)


# -- extractive answer -----------------------------------------------------------------------------------------
ANSWER_SENTENCE = "To make the permutation tests reproducible, the random seed rseed is set to 1071."
TEXT = Element(
    kind="text",
    source="docs/vcd-residual-shadings.pdf",
    page=1,
    text=f"1 Introduction\n\nThis vignette is about residual-based shadings for mosaic plots. {ANSWER_SENTENCE}\n"
    "R> rseed <- 1071\nThe plots follow later.",
)
TABLE = Element(
    kind="table",
    source="docs/vcd-residual-shadings.pdf",
    page=4,
    text="Table 2: pistonrings failures by leg and compressor\n\n| compressor | North | Centre | South |\n"
    "|---|---|---|---|\n| C1 | 17 | 17 | 12 |\n| C2 | 11 | 9 | 13 |\n| C4 | 14 | 7 | 28 |",
)
IMAGE = Element(
    kind="image",
    source="images/img_027.jpg",
    data=b"\x89PNG fake",
    object_key="objects/ab/abcdef.jpg",
    text="",
    metadata={CAPTION_KEY: "Text in the image (OCR): NOTICE DOUBLE PARKING PROHIBITED AT ALL TIMES"},
)
OTHER = Element(kind="text", source="docs/other.pdf", page=2, text="Mosaic plots show contingency tables nicely.")


def _hits(*elements: Element) -> list[Hit]:
    return [Hit(el, 1.0 / (60 + i), (f"dense:q{i}",)) for i, el in enumerate(elements, 1)]


def _markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


def test_answer_sentence_is_quoted_with_its_citation() -> None:
    q = "What value is rseed set to for the permutation tests?"
    ans = extractive_answer(q, _hits(TEXT, OTHER, IMAGE), sub_questions=[q])
    assert ans.mode == "extractive" and ans.question == q
    assert ans.text.startswith(EXTRACTIVE_HEADER + "\n\n")
    assert "(no generator configured)" in EXTRACTIVE_LABEL  # the same wording as `mmrag models`
    assert ans.text.splitlines()[0].startswith("Extractive answer (no generator configured)")
    assert f"{ANSWER_SENTENCE} [1]" in ans.text
    first = ans.citation(1)
    assert first is not None and first.element_id == TEXT.id
    assert (first.source, first.page, first.kind, first.object_uri) == (TEXT.source, 1, "text", None)
    assert "rseed" in first.snippet and len(first.snippet) <= 200


def test_table_rows_image_caption_and_markers_resolve() -> None:
    q = "What is the rseed value, and how many failures were recorded for compressor C4 in the South leg?"
    subs = decompose_rule_based(q)
    assert len(subs) == 3
    ans = extractive_answer(q, _hits(OTHER, TEXT, TABLE, IMAGE), sub_questions=subs)
    table_cite = next(c for c in ans.citations if c.element_id == TABLE.id)
    assert (table_cite.kind, table_cite.page, table_cite.source) == ("table", 4, TABLE.source)
    # the table comes back as markdown: caption line, header, and the matching row only
    assert "Table 2: pistonrings failures by leg and compressor\n| compressor | North | Centre | South |" in ans.text
    assert "| C4 | 14 | 7 | 28 |" in ans.text and "| C1 |" not in ans.text
    assert f"[{table_cite.marker}]" in ans.text
    # every sub-question is supported (rseed from the text chunk, C4 from the table), leads in the parts' order
    assert ans.text.index("rseed") < ans.text.index("| C4 |")
    markers = _markers(ans.text)
    assert sorted(set(markers)) == list(range(1, len(ans.citations) + 1))  # dense, from 1, all resolve
    assert [c.marker for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert list(dict.fromkeys(markers)) == sorted(set(markers))  # numbered in order of first use
    assert OTHER.id not in {c.element_id for c in ans.citations}  # shares no content word: not quoted

    img = extractive_answer("What is prohibited at all times according to the sign?", _hits(TEXT, IMAGE))
    assert "DOUBLE PARKING PROHIBITED AT ALL TIMES [1]" in img.text
    cite = img.citations[0]
    assert (cite.kind, cite.source, cite.page, cite.object_uri) == ("image", IMAGE.source, None, IMAGE.object_key)


def test_a_charts_drawn_words_find_it_but_its_caption_is_what_is_quoted() -> None:
    labels = "Text in the figure (PDF text layer): Improved Treatment Placebo Treated Marked Some None -1.7 0.0 1.9"
    chart = Element("image", "docs/vcd-residual-shadings.pdf", page=2, data=b"\x89PNG fake",
                    text="Figure 1: Classic mosaic plot for the arthritis data.",
                    metadata={"figure": "vector", CAPTION_KEY: labels, "caption_model": "local:text-layer"})
    q = "How many Treated patients showed Marked improvement in the arthritis data?"
    ans = extractive_answer(q, _hits(chart), sub_questions=[q])
    assert "Figure 1: Classic mosaic plot for the arthritis data. [1]" in ans.text
    assert "Treated Marked" not in ans.text  # the drawn words are not statements
    described = Element("image", chart.source, page=2, data=chart.data, text=chart.text,
                        metadata={"figure": "vector", CAPTION_KEY: "A mosaic plot: Treated patients improved more.",
                                  "caption_model": "global.anthropic.claude-haiku-4-5-20251001-v1:0"})
    assert "Treated patients improved more" in extractive_answer(q, _hits(described), sub_questions=[q]).text


def test_limits_duplicates_and_fallback() -> None:
    q = "What is the rseed value, and how many failures were recorded for compressor C4 in the South leg?"
    one = extractive_answer(q, _hits(TEXT, TABLE), max_citations=1, max_sentences=1)
    assert len(one.citations) == 1 and _markers(one.text) == [1]
    dup = extractive_answer(q, [*_hits(TEXT, TABLE), Hit(TEXT, 0.001, ("bm25:q1",))])
    assert len({c.element_id for c in dup.citations}) == len(dup.citations)
    # nothing shares a word (an image found by image search): the top hit is still quoted and cited
    blind = extractive_answer("Zebra?", _hits(IMAGE))
    assert blind.citations[0].element_id == IMAGE.id and blind.text.endswith("[1]")
    with pytest.raises(ValueError):
        extractive_answer(q, _hits(TEXT), max_sentences=0)


def test_no_hits() -> None:
    ans = extractive_answer("What is X?", [], sub_questions=["What is X?"])
    assert ans.text == NO_EVIDENCE_TEXT and ans.citations == () and ans.hits == ()
    assert ans.mode == "extractive" and ans.sub_questions == ("What is X?",)


def test_to_dict_is_json_ready_inputs_unchanged_and_deterministic() -> None:
    q = "What is the rseed value, and how many failures were recorded for compressor C4 in the South leg?"
    hits = _hits(TEXT, TABLE, IMAGE)
    subs = decompose_rule_based(q)
    def state() -> list[object]:
        return [(h.element, h.element.id, h.element.text, dict(h.element.metadata), h.score, h.lists) for h in hits]

    snapshot, before_subs = state(), list(subs)
    ans = extractive_answer(q, hits, sub_questions=subs)
    assert state() == snapshot
    assert subs == before_subs and len(hits) == 3
    assert extractive_answer(q, hits, sub_questions=subs) == ans
    row = json.loads(json.dumps(ans.to_dict()))
    assert row["question"] == q and row["answer"] == ans.text and row["mode"] == "extractive"
    assert row["sub_questions"] == subs
    assert {"marker", "element_id", "kind", "source", "page", "object_uri"} <= set(row["citations"][0])
    second = row["hits"][1]  # the hit shape of `search --json` (rank, preview, links, bbox...)
    assert {k: second[k] for k in ("rank", "element_id", "score", "lists", "kind", "source", "page")} == {
        "rank": 2, "element_id": TABLE.id, "score": hits[1].score, "lists": ["dense:q2"], "kind": "table",
        "source": TABLE.source, "page": 4}
    assert {"text", "caption", "object_uri", "bbox", "section"} <= set(second)


def test_answer_types() -> None:
    cite = Citation(marker=1, element_id="e", kind="image", source="a.png", object_uri="file:///a.png")
    ans = Answer(question="q", text="t [1]", mode="generated", citations=(cite,))
    assert ans.citation(1) is cite and ans.citation(2) is None
    assert json.loads(json.dumps(ans.to_dict()))["citations"][0]["object_uri"] == "file:///a.png"
    with pytest.raises(ValueError, match="mode"):
        Answer(question="q", text="t", mode="guessed")  # type: ignore[arg-type]


def test_code_line_next_to_the_matching_sentence_and_page_ocr() -> None:
    chunk = Element(
        kind="text",
        source="docs/vcd-residual-shadings.pdf",
        page=1,
        text="All are loaded together with vcd:\n\n> rseed <- 1071\n\nFurthermore, we define a rseed which will be "
        "used as the random seed for making the permutation tests exactly reproducible. In the following, we "
        "focus on the R code and output, see Zeileis et al. (2007) for more.",
    )
    page = Element(kind="page", source="docs/scan.pdf", page=1, data=b"png", object_key="objects/pa/ge.png",
                   metadata={"ocr_text": "A report creeps into camp that Johnston is coming with fifty thousand men "
                                         "to raise the siege. The weather is hot."})
    ans = extractive_answer("Which value is used for the random seed rseed?", _hits(chunk, page))
    assert "> rseed <- 1071 [1]" in ans.text and "reproducible. [1]" in ans.text
    assert "All are loaded" not in ans.text and "Zeileis" not in ans.text
    ocr = extractive_answer("How many men is Johnston coming with to raise the siege?", _hits(chunk, page))
    assert "fifty thousand men to raise the siege. [1]" in ocr.text and "weather" not in ocr.text
    assert (ocr.citations[0].kind, ocr.citations[0].object_uri) == ("page", "objects/pa/ge.png")


# -- the extractive answer leads with the piece that answers (issue 11) and never quotes headings (issue 13) ----
HTML_CHUNK = Element(
    kind="text", source="docs/zlib.html",
    text="zlib Usage Example\n\nWe often get questions about how the deflate() and inflate() functions should be "
    "used. The license of zlib is the permissive zlib license.\n\nRegular Expressions\n\nThe library is "
    "written in C.",
    metadata={"heading": "zlib Usage Example", "section": "zlib Manual > zlib Usage Example", "title": "zlib"},
)
PDF_CHUNK = Element(
    kind="text", source="docs/hcl.pdf", page=5,
    text="3. Illustrations\n\n3.1. Qualitative palettes: Seats and votes in the German Bundestag\n\nIn this "
    "section, we show a collection of examples for palettes. We choose a red hue H = 0 for the social democrats "
    "SPD, a blue hue H = 240 for the conservative CDU/CSU. To obtain rather intense colors, we set chroma to "
    "C = 60 and luminance to L = 75.",
)


def test_headings_are_never_quoted() -> None:
    ans = extractive_answer("zlib Usage Example: how should deflate be used?", _hits(HTML_CHUNK))
    assert "zlib Usage Example [1]" not in ans.text and "Regular Expressions [1]" not in ans.text
    assert "how the deflate() and inflate() functions should be used. [1]" in ans.text
    palettes = extractive_answer("Which qualitative palettes illustrate seats in the Bundestag?", _hits(PDF_CHUNK))
    assert "Qualitative palettes: Seats and votes" not in palettes.text and "3. Illustrations" not in palettes.text
    # a figure caption is evidence, not a heading; OCR lines of a sign are evidence too
    figure = Element(kind="text", source="docs/ssl.html", text="Figure 2: SSL Protocol Stack\n\nThe record layer.")
    assert "Figure 2: SSL Protocol Stack [1]" in extractive_answer("What does Figure 2 show?", _hits(figure)).text


def test_the_answering_sentence_leads() -> None:
    body = lambda ans: ans.text.split("\n\n", 1)[1]  # noqa: E731 — the text after the header
    chroma = extractive_answer("To which value is chroma set for intense colors?", _hits(OTHER, PDF_CHUNK))
    assert body(chroma).startswith("To obtain rather intense colors, we set chroma to C = 60")
    spd = extractive_answer("Which hue H is used for the social democrats (SPD)?", _hits(PDF_CHUNK))
    assert body(spd).startswith("We choose a red hue H = 0 for the social democrats SPD")
    # a question that asks for a number prefers the piece with a number it does not already contain
    seed = Element(kind="text", source="docs/v.pdf", page=1,
                   text="The random seed rseed makes the permutation tests reproducible.\n\n> rseed <- 1071")
    assert body(extractive_answer("What value is assigned to the random seed rseed?", _hits(seed))).startswith(
        "> rseed <- 1071 [1]")


def test_a_figure_question_leads_with_the_figure_and_a_symbol_picks_its_table_row() -> None:
    chunk = Element(kind="text", source="docs/ssl.html", text="The SSL protocol stack has several layers in it.")
    fig = Element(kind="image", source="docs/ssl.html", data=b"gif", object_key="objects/f.gif",
                  metadata={CAPTION_KEY: "Figure 2: SSL Protocol Stack"})
    ans = extractive_answer("What does the SSL protocol stack figure show?", _hits(chunk, fig))
    assert ans.citations[0].element_id == fig.id and ans.citations[0].object_uri == "objects/f.gif"
    vocab = Element(kind="table", source="docs/rewrite.html",
                    text="Regex vocabulary\n\n| Character | Meaning |\n|---|---|\n| . | Matches any single character |"
                    "\n| + | Repeats the previous match |\n| ? | Makes the match optional |")
    rows = extractive_answer("In the regex vocabulary, what does the ? character do?", _hits(vocab)).text
    assert rows.index("| ? | Makes the match optional |") < rows.index("| . |")


CUT = Element(kind="text", source="docs/intro.pdf", page=2,
              text="The data is available in the package: it can be loaded and a suitable subset chosen\nby")
GOES_ON = Element(kind="text", source="docs/intro.pdf", page=3,
                  text="Figure 1: Personal income in the US\n\n> library(\"pkg\")\n> data(\"Income\")\n\n"
                       "We fit a simple error correction model to the series.")


def test_a_quote_cut_mid_sentence_is_followed_by_how_its_continuation_goes_on() -> None:
    q = "Which data set can be loaded from the package?"
    hits = [Hit(CUT, 0.05, ("bm25:q1",)), Hit(GOES_ON, 0.0, ("continuation",)), Hit(OTHER, 0.01, ("dense:q1",))]
    ans = extractive_answer(q, hits, sub_questions=[q])
    body = ans.text.split("\n\n", 1)[1]
    assert body.startswith("The data is available in the package: it can be loaded and a suitable subset chosen by "
                           "[1]\n\n> library(\"pkg\")\n> data(\"Income\")\n[2]")  # its lines, not its caption
    assert ans.citation(2) is not None and ans.citation(2).element_id == GOES_ON.id  # type: ignore[union-attr]
    assert "Figure 1" not in body
    # Without the continuation mark (retrieval did not pair them) nothing is added.
    plain = extractive_answer(q, [Hit(CUT, 0.05, ("bm25:q1",)), Hit(GOES_ON, 0.04, ("dense:q1",))], sub_questions=[q])
    assert "> data(\"Income\")\n[2]" not in plain.text


def test_a_completion_respects_the_quote_and_citation_limits() -> None:
    q = "Which data set can be loaded from the package?"
    hits = [Hit(CUT, 0.05, ("bm25:q1",)), Hit(GOES_ON, 0.0, ("continuation",)), Hit(TEXT, 0.01, ("dense:q1",))]
    one = extractive_answer(q, hits, sub_questions=[q], max_citations=1)
    assert "data(\"Income\")" not in one.text and _markers(one.text) == [1]
    two = extractive_answer(q, hits, sub_questions=[q], max_sentences=2)
    assert len(two.text.split("\n\n")) == 3 and "data(\"Income\")" in two.text  # header, cut quote, completion


def test_a_completion_is_not_quoted_again_when_a_later_quote_is_part_of_it() -> None:
    cut = Element(kind="text", source="docs/z.pdf", page=1,
                  text="The zebra herd data is available in the strucchange package: it can be loaded with")
    goes_on = Element(kind="text", source="docs/z.pdf", page=2,
                      text='data("Serengeti") loads the herd data.\n\nMore text about grazing and seasons.')
    ans = extractive_answer("Which package holds the zebra herd data, and how is it loaded?",
                            [Hit(cut, 0.9, ("bm25:q1",)), Hit(goes_on, 0.0, ("continuation",))])
    assert ans.text.count('data("Serengeti") loads the herd data.') == 1
    assert _markers(ans.text) == [1, 2]


# -- README questions a newcomer asked (rseed, polar plot, histogram) -------------------------------------------
# Chunks of tests/data/html/octave/Two_002dDimensional-Plots.html: the text around the polar plot names "polar" in
# every sentence, so within these hits "polar" is a common word and "draw" a rare one.
SCATTER = Element(kind="text", source="docs/plots.html",
                  text=": scatter (x, y)\n: scatter (x, y, s)\n\nDraw a 2-D scatter plot.\n\nA marker is plotted at "
                       "each point defined by the coordinates in the vectors x and y.")
POLAR = Element(kind="text", source="docs/plots.html",
                text="Finally, the polar function allows you to easily plot data in polar coordinates. However, the "
                     "display coordinates remain rectangular and linear. For example,\n\npolar (0:0.1:10*pi, "
                     "0:0.1:10*pi);\ntitle (\"Example polar plot from 0 to 10*pi\");\n\nproduces the spiral plot "
                     "shown in Figure 15.4.\n\nCreate a 2-D plot from polar coordinates theta and rho.\n\nThe input "
                     "theta is assumed to be radians. If you have degrees then convert them before passing the "
                     "data to polar.")
POLAR_FIGURE = Element(kind="image", source="docs/plots.html", data=b"png", object_key="objects/po/lar.png",
                       text="polar\nFigure 15.4: Polar plot.",
                       metadata={CAPTION_KEY: "Text in the image (OCR): Example polar plot from 0 to 10*pi 90 40 120"})
ROSE = Element(kind="text", source="docs/plots.html",
               text=": rose (th)\n: rose (th, nbins)\n\nPlot an angular histogram.\n\nWith one vector argument, th, "
                    "plot the histogram with 20 angular bins.")
HIST = Element(kind="text", source="docs/plots.html",
               text=": hist (y)\n: hist (y, nbins)\n\nProduce histogram counts or plots.\n\nWith one vector input "
                    "argument, y, plot a histogram of the values with 10 bins.")


def _lead(ans: Answer) -> str:
    return ans.text.split("\n\n")[1]


def test_a_how_to_question_leads_with_the_piece_about_its_subject_not_its_verb() -> None:
    q = "How do you draw a polar plot?"
    lead = _lead(extractive_answer(q, _hits(POLAR_FIGURE, SCATTER, POLAR), sub_questions=[q]))
    assert "polar" in lead.lower() and "scatter" not in lead
    assert lead.startswith("polar (0:0.1:10*pi")  # an example call shows how; the figure's OCR words do not
    # With no piece about the subject, the sources do not say how: the one that shares the verb is quoted as the
    # closest passage, labelled as not answering (a how-to question is about its object, not its verb).
    scatter_only = extractive_answer(q, _hits(SCATTER), sub_questions=[q])
    assert _lead(scatter_only).startswith('The sources do not say what the question asks (no passage mentions "polar")')
    assert "Draw a 2-D scatter plot." in scatter_only.text and scatter_only.answered is False


def test_the_piece_that_repeats_a_stretch_of_the_question_leads() -> None:
    q = "How do you plot a histogram in Octave?"
    lead = _lead(extractive_answer(q, _hits(ROSE, HIST), sub_questions=[q]))
    assert lead == "With one vector input argument, y, plot a histogram of the values with 10 bins. [1]"


def test_the_statement_that_sets_the_name_asked_about_leads() -> None:
    q = "What value is assigned to rseed, the random seed used to make the permutation tests reproducible?"
    chunk = Element(kind="text", source="docs/vcd-residual-shadings.pdf", page=1,
                    text="In this vignette, we show how all examples from Zeileis et al. (2007) can be reproduced "
                         "with the package vcd.\n\n> library(\"vcd\")\n> rseed <- 1071\n\nFurthermore, we define a "
                         "rseed which will be used as the random seed for making the results of the permutation "
                         "tests exactly reproducible.")
    outputs = Element(kind="text", source="docs/vcd-residual-shadings.pdf", page=3,
                      text="> set.seed(rseed)\n> coindep_test(art, n = 5000)\n\ndata: art\nf(x) = 1.8696, "
                           "p-value = 0.0096\n\nThe random permutation tests used here are reproducible.")
    assert _lead(extractive_answer(q, _hits(outputs, chunk), sub_questions=[q])) == "> rseed <- 1071 [1]"
    short = "What value is assigned to rseed?"
    assert _lead(extractive_answer(short, _hits(outputs, chunk), sub_questions=[short])) == "> rseed <- 1071 [1]"


def test_a_lead_cut_mid_sentence_keeps_a_citation_for_its_completion() -> None:
    q = "Which data set can be loaded from the package?"
    others = [Element(kind="text", source=f"docs/o{i}.pdf", page=1, text=f"The package also has data set {i}.")
              for i in range(5)]
    hits = [Hit(CUT, 0.05, ("bm25:q1",)), Hit(GOES_ON, 0.0, ("continuation",)),
            *(Hit(o, 0.01, ("dense:q1",)) for o in others)]
    ans = extractive_answer(q, hits, sub_questions=[q])
    assert ans.text.split("\n\n", 1)[1].startswith(
        "The data is available in the package: it can be loaded and a suitable subset chosen by [1]\n\n"
        "> library(\"pkg\")\n> data(\"Income\")\n[2]")
    assert len(ans.citations) <= 5 and ans.citation(2).element_id == GOES_ON.id  # type: ignore[union-attr]


def test_a_plural_meets_its_singular_and_a_word_hyphenated_at_a_line_end_is_whole() -> None:
    q = "Which expenditure data are listed?"
    decoy = Element(kind="text", source="docs/s.pdf", page=1, text="The data are listed in the first column.")
    for text in ("Expenditures data are listed in the second column.",
                 "Consumption expen-\nditures data are listed in the second column."):  # PDF line-end hyphenation
        found = Element(kind="text", source="docs/s.pdf", page=2, text=text)
        assert "second column" in _lead(extractive_answer(q, _hits(decoy, found), sub_questions=[q]))
