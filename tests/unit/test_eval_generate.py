"""Offline drafts of ``mmrag eval generate``: quotable words only, the element's own words, portable sources, ``-n``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mmrag.elements import Element
from mmrag.eval.generation import portable_source, quotable, template_drafts, template_question
from mmrag.eval.golden import parse_golden
from mmrag.providers.base import CAPTION_KEY
from mmrag.providers.local.local_caption import OCR_CAPTION_PREFIX, TEXT_LAYER_CAPTION_PREFIX

ROOT = Path("/home/me/project")
DOC = str(ROOT / "docs" / "report.pdf")


def _image(caption: str, *, source: str = DOC, page: int | None = 3, text: str = "",
           model: str = "local:ocr-rapidocr") -> Element:
    return Element(kind="image", source=source, page=page, text=text,
                   metadata={CAPTION_KEY: caption, "caption_model": model})


def _golden(drafts: list[dict[str, Any]]) -> Any:
    golden = parse_golden(json.dumps(d) for d in drafts)
    assert golden.problems == ()
    return golden


@pytest.mark.parametrize("noise", [">", "★★×", "Moe nieu?", "5", "T", "**", "scikit ean", "2 2 15 50",
                                   "88 Q 00 O 8 8 60 9 40 20 O 08 8 8", "Time F statistics 1990 1992 1994 1996 1998"])
def test_noisy_ocr_is_not_quotable(noise: str) -> None:
    assert quotable(noise) is None
    assert template_question(_image(OCR_CAPTION_PREFIX + noise), random.Random(0), base=ROOT) is None


def test_real_words_are_quoted_up_to_eight() -> None:
    assert quotable("NOTICE DOUBLE PARKING PROHIBITED AT ALL TIMES") == "NOTICE DOUBLE PARKING PROHIBITED AT ALL TIMES"
    assert quotable("one two three four five six seven eight nine ten.") == "one two three four five six seven eight"
    assert quotable("CDU/CSU FDP Linke Gruene SPD") == "CDU/CSU FDP Linke Gruene SPD"
    assert quotable("which displays a set of colors using a palette") == "which displays a set of colors"
    assert quotable("For a description of the use of the axes") is None  # function words are not content


@pytest.mark.parametrize("prefix", [OCR_CAPTION_PREFIX, TEXT_LAYER_CAPTION_PREFIX])
def test_a_figure_question_quotes_its_own_words_not_the_caption_prefix(prefix: str) -> None:
    el = _image(prefix + "Improved Treatment Placebo Treated None Some Marked")
    draft = template_question(el, random.Random(0), base=ROOT)
    assert draft is not None
    assert draft["question"] == ('Which figure of report.pdf shows "Improved Treatment Placebo Treated None Some '
                                 'Marked"?')
    assert prefix.strip() not in draft["question"] and "Text in the" not in draft["question"]
    assert draft["expected"] == [{"source": "docs/report.pdf", "kind": "image", "page": 3,
                                  "contains": "Improved Treatment Placebo Treated None Some Marked"}]
    assert _golden([{"id": "x", **draft}]).questions[0].expected[0].matches(el)  # its own element is the evidence


def test_a_figure_without_text_is_asked_by_its_document_caption_or_skipped() -> None:
    statement = "Image, 495×431 px; no text found by OCR."
    captioned = _image(statement, text="Figure 2: Examples for sequential palettes, varying luminance")
    draft = template_question(captioned, random.Random(0), base=ROOT)
    assert draft is not None and "no text found" not in draft["question"] and "px" not in draft["question"]
    assert '"Figure 2: Examples for sequential palettes, varying luminance"' in draft["question"]
    assert _golden([{"id": "x", **draft}]).questions[0].expected[0].matches(captioned)
    assert template_question(_image(statement), random.Random(0), base=ROOT) is None  # nothing to quote


def test_a_vision_model_caption_is_quoted_whole() -> None:
    el = _image("A bar chart of seats per party in the German parliament", model="anthropic.claude-haiku")
    draft = template_question(el, random.Random(0), base=ROOT)
    assert draft is not None and '"A bar chart of seats per party"' in draft["question"]


def test_a_scanned_page_quotes_its_ocr_text() -> None:
    page = Element(kind="page", source=DOC, page=2, metadata={
        "needs_ocr": True, CAPTION_KEY: OCR_CAPTION_PREFIX + "variable. For example, here is a stand",
        "ocr_text": "variable. For example, here is a stand of pine trees,\nwith each tree marked"})
    draft = template_question(page, random.Random(0), base=ROOT)
    assert draft is not None
    assert draft["question"] == 'Which page of report.pdf shows "For example, here is a stand of pine"?'
    assert draft["modality"] == "scanned"
    assert _golden([{"id": "x", **draft}]).questions[0].expected[0].matches(page)


def test_a_section_question_quotes_the_passage_not_only_its_shared_heading() -> None:
    html = str(ROOT / "site" / "intro.html")
    chunks = [Element(kind="text", source=html, metadata={"heading": "Rewrite maps"},
                      text=f"Apache mod_rewrite Introduction > Rewrite maps\n\n{body}")
              for body in ("The RewriteMap directive provides a way to call an external function.",
                           "A map may be a plain text file, a DBM hash or an external program.")]
    drafts = [template_question(c, random.Random(0), base=ROOT) for c in chunks]
    assert all(d is not None for d in drafts)
    questions = [d["question"] for d in drafts if d is not None]
    assert len(set(questions)) == 2 and all('"Rewrite maps"' in q for q in questions)
    assert '"The RewriteMap directive provides a way to call"' in questions[0]
    golden = _golden([{"id": f"x{i}", **d} for i, d in enumerate(drafts) if d is not None])
    for question, chunk, other in zip(golden.questions, chunks, chunks[::-1], strict=True):
        assert question.expected[0].matches(chunk) and not question.expected[0].matches(other)


def test_a_pdf_chunk_is_quoted_from_a_sentence_start() -> None:
    chunk = Element(kind="text", source=DOC, page=6,
                    text="where i = +k + t(n −k), with t ∈[0, 1]. And the latter gives the moving estimates process")
    draft = template_question(chunk, random.Random(0), base=ROOT)
    assert draft is not None
    assert draft["question"] == 'Which page of report.pdf says "And the latter gives the moving estimates process"?'
    assert draft["expected"] == [{"source": "docs/report.pdf", "page": 6,
                                  "contains": "And the latter gives the moving estimates process"}]


def test_sources_are_portable() -> None:
    assert portable_source(DOC, ROOT) == "docs/report.pdf"  # under the current directory: relative
    assert portable_source("/elsewhere/data/report.pdf", ROOT) == "report.pdf"  # elsewhere: the file name
    assert portable_source("docs/report.pdf", ROOT) == "docs/report.pdf"  # already relative: as is
    url = "https://example.org/guide/intro.html"
    assert portable_source(url, ROOT) == url


def test_minus_n_is_honoured_by_filling_from_usable_elements() -> None:
    noisy = [_image(OCR_CAPTION_PREFIX + junk, page=i + 1) for i, junk in enumerate([">", "★★×", "Moe nieu?", "**"])]
    good = [_image(OCR_CAPTION_PREFIX + f"Seats in the German parliament {word} election", page=10 + i)
            for i, word in enumerate(["federal", "regional", "local"])]
    texts = [Element(kind="text", source=DOC, page=20 + i, text=f"Chapter {i}. The quick {animal} jumps over dogs")
             for i, animal in enumerate(["fox", "cat", "hare", "wolf", "bear"])]
    elements = [*noisy, *good, *texts]
    for seed in range(5):
        drafts = template_drafts(elements, 7, seed=seed, base=ROOT)
        assert len(drafts) == 7
        assert sum(d["modality"] == "image" for d in drafts) == 3  # every usable image, then texts fill the rest
        assert not any("Text in the" in d["question"] for d in drafts)
        assert [d["id"] for d in drafts] == [f"g{i:03d}" for i in range(1, 8)]
        golden = _golden(drafts)
        assert all(q.generated for q in golden.questions)
        assert len({d["question"] for d in drafts}) == 7
    assert len(template_drafts(elements, 50, seed=0, base=ROOT)) == 8  # all usable elements, no more
    assert template_drafts(elements, 6, seed=1, base=ROOT) == template_drafts(elements, 6, seed=1, base=ROOT)


def test_a_quote_repeated_on_other_pages_is_not_used() -> None:
    """A running header ("Achim Zeileis, David Meyer, Kurt Hornik 3") does not single out its page."""
    header = "Achim Zeileis, David Meyer, Kurt Hornik"
    chunks = [Element(kind="text", source=DOC, page=3, text=f"{header} 3\n\n> set.seed(rseed)\n\n"
                      "The arthritis data are shaded by the maximum test. Its p value is small."),
              Element(kind="text", source=DOC, page=5, text=f"{header} 5\n\nMosaic plots of the Pearson residuals "
                      "for the arthritis data follow.")]
    drafts = template_drafts(chunks, 2, base=ROOT)
    assert sorted(d["question"] for d in drafts) == [
        'Which page of report.pdf says "Mosaic plots of the Pearson residuals"?',
        'Which page of report.pdf says "The arthritis data are shaded by the maximum"?']
    alone = template_question(chunks[0], random.Random(0), base=ROOT)  # without the collection: the first quote
    assert alone is not None and header in alone["question"]


def test_a_table_question_names_a_row_by_a_unique_label() -> None:
    table = Element(kind="table", source=DOC, page=2, text="| Sepal.Length | Species |\n|---|---|\n"
                    "| 4.9 | setosa |\n| 4.9 | versicolor |\n| 7.7 | virginica |")
    for seed in range(5):
        draft = template_question(table, random.Random(seed), base=ROOT)
        assert draft is not None
        assert draft["question"] == "In the table of report.pdf, what is the Species of 7.7?"
        assert draft["answer"] == "virginica"
    repeated = Element(kind="table", source=DOC, text="| a | b |\n|---|---|\n| x | 1 |\n| x | 2 |")
    assert template_question(repeated, random.Random(0), base=ROOT) is None
