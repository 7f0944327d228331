"""Continuations: a hit that stops mid-sentence brings the chunk that finishes it (a real PDF, a real FAISS index)."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from mmrag.answers import Hit
from mmrag.chains._enrich import indexed_text
from mmrag.elements import Blob, Element
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.pdf import PdfParser
from mmrag.retrievers.continuation import CONTINUED_LIST, continuation_of, is_unfinished, with_continuations
from mmrag.stores.base import IndexRecord
from mmrag.stores.faiss import FaissIndex


@pytest.mark.parametrize(("text", "unfinished"), [
    # real chunk ends from the bundled sample
    ("The data is available in the strucchange package: it can be loaded and a suitable subset chosen\nby", True),
    ('Suppose you want to match a cookie containing the word "go", you could use:', True),
    ("An example of the use of pareto is", True),
    ("The x and y values are interpreted as follows:", True),
    ("Both time series are depicted in Figure 1.", False),
    ("4 Generalized fluctuation tests", False),  # a heading
    ('> ecm.model <- diff.expenditure ~ coint.res + diff.income', False),  # code
    ("the mean of the data", False),  # "data" can end a sentence
    ("", False),
])
def test_is_unfinished(text: str, unfinished: bool) -> None:
    assert is_unfinished(text) is unfinished


def _two_pages() -> bytes:
    doc = pymupdf.open()
    first = doc.new_page()
    first.insert_text((72, 72), "1 Introduction", fontsize=14)
    for i, line in enumerate(["Zebras graze on the savanna in large herds, moving with the rains every year.",
                              "Their stripes are unique to each animal and help the herd to stay together."]):
        first.insert_text((72, 100 + 16 * i), line, fontsize=11)
    first.insert_text((72, 700), "The herd data is available in the package: it can be loaded with", fontsize=11)
    second = doc.new_page()
    second.insert_text((72, 72), '> data("Serengeti")', fontsize=11)
    second.insert_text((72, 100), "Grazing herds are counted from the air each dry season.", fontsize=11)
    data: bytes = doc.tobytes()
    doc.close()
    return data


@pytest.fixture
def index(tmp_path: Path) -> FaissIndex:
    elements = list(PdfParser(ParseOptions()).parse(Blob(_two_pages(), "/d/zebras.pdf", "application/pdf")))
    other = Element("text", "/d/lions.pdf", text="The herd data is available in the package: it can be loaded with "
                    "care, say the rangers.", page=1)
    index = FaissIndex(tmp_path / "text", 3)
    index.add([IndexRecord(e, [1.0, float(i), 0.5], indexed_text(e))
               for i, e in enumerate([*elements, other]) if e.kind == "text"])
    return index


def _hit(index: FaissIndex, words: str) -> Hit:
    [record] = index.keyword_search(words, k=1)
    return Hit(record.element, 0.5, ("bm25:q1",))


def test_the_chunk_that_finishes_a_sentence_cut_by_a_page_break_is_its_continuation(index: FaissIndex) -> None:
    cut = _hit(index, "zebras stripes unique savanna")
    assert cut.element.page == 1 and is_unfinished(cut.element.text)
    found = continuation_of(cut, index)
    assert found is not None and found.element.page == 2 and 'data("Serengeti")' in found.element.text
    assert found.element.source == "/d/zebras.pdf"  # not the other document that repeats the sentence
    assert found.lists == (CONTINUED_LIST,) and found.score == 0.0  # found by no list
    assert continuation_of(_hit(index, "serengeti grazing counted"), index) is None  # a finished chunk


def test_with_continuations_puts_the_continuation_right_after_its_hit(index: FaissIndex) -> None:
    cut, finished = _hit(index, "zebras stripes unique savanna"), _hit(index, "lions rangers care")
    out = with_continuations([cut, finished], index)
    assert [h.element.page for h in out[:2]] == [1, 2] and out[2] == finished
    assert with_continuations([cut, finished], index, limit=2)[1].element.page == 2  # the limit cuts the tail
    # already among the hits further down: moved up, keeping its own lists and score
    below = Hit(out[1].element, 0.1, ("dense:q2",))
    moved = with_continuations([cut, finished, below], index)
    assert moved[1].element.id == below.element.id and moved[1].lists == ("dense:q2", CONTINUED_LIST)
    assert moved[1].score == 0.1 and len(moved) == 3
    assert with_continuations([finished], index) == [finished]


def test_the_same_sentence_quoted_later_or_pages_away_is_no_continuation(tmp_path: Path) -> None:
    cut = Element("text", "/d/a.pdf", text="Counting starts at dawn. The herds are counted from the air by", page=1)
    quoted = Element("text", "/d/a.pdf", page=2, text="Filler about grass and rain. " * 20
                     + "The herds are counted from the air by plane, said the report.")
    far = Element("text", "/d/a.pdf", page=4, text="The herds are counted from the air by plane each year.")
    index = FaissIndex(tmp_path / "text", 3)
    index.add([IndexRecord(e, [1.0, 0.0, float(i)], e.text) for i, e in enumerate([cut, quoted, far])])
    assert continuation_of(Hit(cut, 1.0), index) is None
    nxt = Element("text", "/d/a.pdf", page=2, text="The herds are counted from the air by plane in June.")
    index.add([IndexRecord(nxt, [0.0, 1.0, 0.0], nxt.text)])
    found = continuation_of(Hit(cut, 1.0), index)
    assert found is not None and found.element.id == nxt.id


def test_a_continuation_outside_the_search_filter_is_not_added(index: FaissIndex) -> None:
    cut = _hit(index, "zebras stripes unique savanna")
    assert with_continuations([cut], index, filter={"page": [1]}) == [cut]  # `--page 1` quotes no page 2
    assert continuation_of(cut, index, filter={"page": [1]}) is None
    found = continuation_of(cut, index, filter={"page": [1, 2], "source": ["/d/zebras.pdf", "/d/lions.pdf"]})
    assert found is not None and found.element.page == 2 and found.element.source == "/d/zebras.pdf"
