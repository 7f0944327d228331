"""A sentence cut by a page break: the next page's first chunk is indexed with the end of the page before."""

from __future__ import annotations

import pymupdf

from mmrag.chains._enrich import described_text, indexed_text
from mmrag.elements import Blob, Element
from mmrag.parsers._pdf_text import CONTEXT_KEY, carry_page_context
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.pdf import PdfParser


def _two_pages() -> bytes:
    doc = pymupdf.open()
    first = doc.new_page()
    first.insert_text((72, 72), "1 Introduction", fontsize=14)
    for i, line in enumerate(["Zebras graze on the savanna in large herds, moving with the rains every year.",
                              "Their stripes are unique to each animal and help the herd to stay together.",
                              "This vignette shows how the herd counts are read and modelled in R."]):
        first.insert_text((72, 100 + 16 * i), line, fontsize=11)
    first.insert_text((72, 700), "The herd data is available in the package: it can be loaded with", fontsize=11)
    doc.new_page().insert_text((72, 72), '> data("Serengeti")', fontsize=11)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def test_the_next_pages_first_chunk_carries_the_end_of_the_page_before() -> None:
    elements = list(PdfParser(ParseOptions()).parse(Blob(_two_pages(), "/d/zebras.pdf", "application/pdf")))
    texts = [e for e in elements if e.kind == "text"]
    first, second = texts[0], texts[-1]
    assert second.page == 2 and second.text == '> data("Serengeti")'  # the cited text stays the page's own
    assert second.metadata[CONTEXT_KEY] == "The herd data is available in the package: it can be loaded with"
    assert CONTEXT_KEY not in first.metadata  # nothing before the first page
    indexed = indexed_text(second)
    assert indexed.index("it can be loaded with") < indexed.index('data("Serengeti")')
    assert indexed.startswith("zebras.pdf")  # the document's name: questions name their document


def test_carry_page_context_skips_garbled_and_textless_pages() -> None:
    garbled = Element("text", "/d/a.pdf", text="□□□ ■■", page=2, metadata={"garbled": True})
    image = Element("image", "/d/a.pdf", text="Figure 1", page=2)
    out, tail = carry_page_context([image, garbled], "End of page one.", 200)
    assert out == [image, garbled] and tail == ""
    plain = Element("text", "/d/a.pdf", text="Page two. Its last sentence.", page=2)
    out, tail = carry_page_context([image, plain], "", 200)
    assert out == [image, plain] and tail == "Page two. Its last sentence."
    out, tail = carry_page_context([plain], "A long first sentence of the page before. Its end", 10)
    assert out[0].metadata[CONTEXT_KEY] == "Its end" and out[0].text == plain.text and out[0].id == plain.id


def test_indexed_text_labels_elements_with_their_document() -> None:
    chunk = Element("text", "/data/pdf/strucchange-intro.pdf", text="We test for structural change.", page=3)
    assert indexed_text(chunk) == "strucchange-intro.pdf\n\nWe test for structural change."
    page = Element("text", "https://example.org/docs/intro.html?x=1#top", text="Regular expressions",
                   metadata={"title": "Apache mod_rewrite Introduction"})
    assert indexed_text(page).startswith("intro.html › Apache mod_rewrite Introduction\n\n")
    titled = Element("text", "/d/intro.html", text="Apache mod_rewrite Introduction. Regexes.",
                     metadata={"title": "Apache mod_rewrite Introduction"})
    assert indexed_text(titled) == "intro.html\n\nApache mod_rewrite Introduction. Regexes."  # not twice
    scanned = Element("image", "/d/sign.jpg", text="", metadata={"ocr_text": "NO PARKING"})
    assert indexed_text(scanned) == "sign.jpg\n\nNO PARKING"
    assert described_text(scanned) == "NO PARKING"  # the image space pairs a picture with what describes it
    assert indexed_text(Element("image", "/d/blank.png", text="")) == ""  # nothing to index: no label alone
