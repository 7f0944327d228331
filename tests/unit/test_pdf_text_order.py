# mypy: disable-error-code="no-untyped-call"
"""Word order of PDF text when vector graphics are drawn between the words of a line.

MuPDF closes a text block at every vector graphic it collects, so an underline drawn under one letter
("Z's ordered observations", the letters that spell "zoo", in the R zoo vignette) split a sentence into
blocks that were then ordered by their top-left corners: "stands for Z / 's o / bservations ... / rdered o".
"""

from __future__ import annotations

import pymupdf

from mmrag.elements import Blob, Element
from mmrag.parsers.pdf import PdfParser

SIZE = 11.0


def parse(data: bytes) -> list[Element]:
    return [e for e in PdfParser().parse(Blob(data, "doc.pdf", "application/pdf")) if e.kind == "text"]


def write_runs(page: pymupdf.Page, x: float, y: float, runs: list[tuple[str, bool]], rotate: int = 0) -> float:
    """Write ``runs`` one after the other from (x, y), underlining each run whose flag is set; the end x."""
    for text, underline in runs:
        page.insert_text((x, y), text, fontsize=SIZE, rotate=rotate)
        width = pymupdf.get_text_length(text, fontname="helv", fontsize=SIZE)
        if underline:
            page.draw_line((x, y + 1.5), (x + width, y + 1.5), width=0.4)
        x += width
    return x


def underlined_initials() -> bytes:
    """A paragraph in which single letters are underlined, each underline drawn right after its letter."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    y = 100.0
    for i in range(3):
        page.insert_text((72, y), f"Line {i + 1} of a paragraph about ordered observations and their indexes.",
                         fontsize=SIZE)
        y += 14
    write_runs(page, 72, y, [("The package was called zoo which stands for ", False), ("Z", True), ("'s", False)])
    write_runs(page, 72, y + 14, [("o", True), ("rdered ", False), ("o", True),
                                  ("bservations. Since the first release, many additions were made.", False)])
    page.insert_text((72, y + 28), "Nevertheless, independence of a particular index class remained the goal.",
                     fontsize=SIZE)
    return bytes(doc.tobytes())


def test_underlined_letters_keep_the_word_order() -> None:
    data = underlined_initials()
    chunks = parse(data)
    assert len(chunks) == 1
    text = chunks[0].text
    assert "stands for Z's\nordered observations. Since the first release" in text
    # the same words in the same order as MuPDF's own plain text
    assert text.split() == pymupdf.open(stream=data)[0].get_text().split()


def test_a_column_on_the_same_baseline_is_not_joined_to_the_previous_one() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    end = write_runs(page, 72, 100, [("The left column ends with an ", False), ("underlined", True)])
    assert end < 300
    page.insert_text((310, 100), "The right column starts here.", fontsize=SIZE)
    page.insert_text((310, 114), "And goes on below it.", fontsize=SIZE)
    text = "\n".join(e.text for e in parse(bytes(doc.tobytes())))
    assert "underlined The right" not in text
    assert "The left column ends with an underlined\n\nThe right column starts here." in text


def test_rotated_labels_stacked_side_by_side_stay_apart() -> None:
    # an axis label in two rotated lines ("Pearson" / "residuals:") with a rule between them, as in a plot
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((100, 400), "Pearson", fontsize=SIZE, rotate=90)
    page.draw_line((90, 300), (90, 420), width=0.4)
    page.insert_text((113, 400), "residuals:", fontsize=SIZE, rotate=90)
    words = " ".join(e.text for e in parse(bytes(doc.tobytes()))).split()
    assert sorted(words) == ["Pearson", "residuals:"]

