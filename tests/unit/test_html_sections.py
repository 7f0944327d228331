"""Section metadata of HTML elements: the heading breadcrumb (``headings``) and the ``anchor`` a link can target."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.elements import Blob, Element
from mmrag.parsers.html import HtmlParser
from mmrag.parsers.sources import load_blob

HTML = Path(__file__).parents[1] / "data" / "html"


def parse_file(path: Path) -> list[Element]:
    return list(HtmlParser().parse(load_blob(str(path))))


def parse_html(body: str) -> list[Element]:
    html = f"<!doctype html><html><head><title>T</title></head><body><main>{body}</main></body></html>"
    return list(HtmlParser().parse(Blob(html.encode(), "page.html", "text/html")))


def section_of(elements: list[Element], words: str) -> Element:
    return next(e for e in elements if e.kind == "text" and words in e.text)


def test_apache_heading_ids() -> None:
    elements = parse_file(HTML / "apache2/en/rewrite/intro.html")
    regex = section_of(elements, "to provide a detailed reference to regular expressions")
    assert regex.metadata["headings"] == ["Apache mod_rewrite Introduction", "Regular Expressions"]
    assert regex.metadata["section"] == "Apache mod_rewrite Introduction > Regular Expressions"
    assert regex.metadata["anchor"] == "regex"  # <h2 id="regex">
    table = next(e for e in elements if e.kind == "table")
    assert table.metadata["headings"][-1] == "Regex vocabulary"
    assert table.metadata["anchor"] == "regexvocab"
    images = [e for e in elements if e.kind == "image"]
    assert images and all(e.metadata["anchor"] for e in images)


def test_texinfo_marker_before_the_heading() -> None:
    elements = parse_file(HTML / "octave/Two_002dDimensional-Plots.html")
    texts = [e for e in elements if e.kind == "text"]
    assert texts[0].metadata["headings"] == ["15.2.1 Two-Dimensional Plots"]
    assert texts[0].metadata["anchor"] == "Two_002dDimensional-Plots-1"  # <span id=...></span><h4>


def test_sphinx_permalink_in_the_heading() -> None:
    elements = parse_file(HTML / "sklearn/auto_examples/model_selection/plot_confusion_matrix.html")
    text = section_of(elements, "Example of confusion matrix usage")
    assert text.metadata["headings"] == ["Confusion matrix"]
    assert text.metadata["anchor"] == "confusion-matrix"


@pytest.mark.parametrize(("body", "anchor"), [
    ('<h2 id="own">Usage</h2><p>Call it.</p>', "own"),
    ('<h2><a name="named"></a>Usage</h2><p>Call it.</p>', "named"),
    ('<h2>Usage <a class="headerlink" href="#perma">¶</a></h2><p>Call it.</p>', "perma"),
    ('<span id="marker"></span>\n<h2>Usage</h2><p>Call it.</p>', "marker"),
    ('<section id="sec"><h2>Usage</h2><p>Call it.</p></section>', "sec"),
    ('<div id="wrap"><p>Intro text.</p><h2>Usage</h2><p>Call it.</p></div>', None),  # the div opens elsewhere
    ('<h2>Usage <a href="#other">(more)</a></h2><p>Call it.</p>', None),  # a link, not a permalink
    ("<h2>Usage</h2><p>Call it.</p>", None),
])
def test_where_the_section_id_comes_from(body: str, anchor: str | None) -> None:
    text = section_of(parse_html(body), "Call it.")
    assert text.metadata["headings"][0].startswith("Usage")
    assert text.metadata.get("anchor") == anchor


def test_a_subsection_without_id_links_to_the_nearest_section_with_one() -> None:
    body = ('<h1>Guide</h1><p>Welcome.</p><h2 id="install">Install</h2><p>Use pip.</p>'
            "<h3>On Windows</h3><p>Use py -m pip.</p><h2>Next</h2><p>Read on.</p>")
    elements = parse_html(body)
    assert "anchor" not in section_of(elements, "Welcome.").metadata
    windows = section_of(elements, "Use py -m pip.")
    assert windows.metadata["headings"] == ["Guide", "Install", "On Windows"]
    assert windows.metadata["anchor"] == "install"
    after = section_of(elements, "Read on.")
    assert after.metadata["headings"] == ["Guide", "Next"]
    assert "anchor" not in after.metadata  # the id of a closed section does not leak into the next one
