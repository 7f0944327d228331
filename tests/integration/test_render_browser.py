"""The HTML surfaces in real headless Chromium: the search gallery and the visual answer render, every picture
loads, the screenshot is not blank, and document strings (file names, captions) stay text."""

from __future__ import annotations

from pathlib import Path

import pytest
from _browser import Browser, pixel_variance

from mmrag.answers import Answer, Citation, Hit
from mmrag.elements import Element
from mmrag.parsers.sources import parse_source
from mmrag.render import answer_html, gallery_html
from mmrag.stores.objects import LocalObjectStore

pytestmark = pytest.mark.integration

XSS_SOURCE = "<img src=x onerror=alert(1)>.png"
XSS_CAPTION = "Sales <script>alert('caption')</script> by region"


def _image_hits(store: LocalObjectStore, data_dir: Path, n: int) -> list[Hit]:
    files = sorted((data_dir / "i2i" / "gallery").glob("img_*.jpg"))[:n]
    hits = []
    for rank, path in enumerate(files):
        key = store.put(path.read_bytes(), "image/jpeg")
        element = Element(kind="image", source=str(path), text=f"picture {path.stem}", mime_type="image/jpeg",
                          metadata={"caption": f"caption of {path.stem}"}).detach(key)
        hits.append(Hit(element, 1.0 - rank / 100, ("image",), store.uri(key)))
    return hits


def _xss_hit(store: LocalObjectStore, data_dir: Path, folder: Path) -> Hit:
    data = (data_dir / "images" / "img_029.png").read_bytes()
    key = store.put(data, "image/png")
    element = Element(kind="image", source=str(folder / XSS_SOURCE), mime_type="image/png",
                      metadata={"caption": XSS_CAPTION, "alt": "<b onmouseover=alert(2)>x</b>"}).detach(key)
    return Hit(element, 0.5, ("image",), store.uri(key))


def _pdf_chunk(data_dir: Path) -> Element:
    """A text chunk on page 1 of a real PDF, over the region of its first table."""
    pdf = parse_source(str(data_dir / "pdf" / "tabula-data.pdf"))
    table = next(e for e in pdf.elements if e.kind == "table" and e.bbox and e.page == 1)
    return Element(kind="text", source=table.source, text="mpg cyl disp hp: " + table.text[:120], page=1,
                   bbox=table.bbox, mime_type="text/plain")


def test_gallery_renders_with_every_picture_loaded(chromium: Browser, tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    hits = _image_hits(store, data_dir, 12)
    hits.append(Hit(_pdf_chunk(data_dir), 0.1, ("dense",)))  # shown as its highlighted page region
    page = gallery_html(hits, objects=store, query="pictures", collection="default")
    probe = chromium.probe(page, tmp_path)
    assert len(probe.images) == 13
    assert all(i["complete"] and i["naturalWidth"] > 0 for i in probe.images), probe.images
    assert probe.alerts == [] and probe.scripts == 0
    assert "caption of img_001" in probe.text and "tabula-data.pdf › page 1" in probe.text
    path = tmp_path / "gallery.html"
    path.write_text(page, encoding="utf-8")
    assert pixel_variance(chromium.screenshot(path)) > 200  # thumbnails, not a blank page


def test_visual_answer_shows_each_citations_evidence(chromium: Browser, tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    [image] = _image_hits(store, data_dir, 1)
    pdf = parse_source(str(data_dir / "pdf" / "tabula-data.pdf"))
    table = next(e for e in pdf.elements if e.kind == "table" and e.bbox and e.metadata.get("csv"))
    text = _pdf_chunk(data_dir)
    html_page = parse_source(str(data_dir / "html" / "sklearn" / "auto_examples" / "model_selection"
                                 / "plot_confusion_matrix.html"))
    section = next(e for e in html_page.elements if e.kind == "text" and e.metadata.get("section"))
    hits = (image, Hit(table, 0.9), Hit(text, 0.8), Hit(section, 0.7))
    citations = tuple(Citation.for_element(n, h.element, h.object_uri) for n, h in enumerate(hits, 1))
    answer = Answer("What do the sources show?", "An astronaut [1]; the mtcars table [2][3]; a matrix [4].",
                    "extractive", ("What do the sources show?",), citations, hits)
    page = answer_html(answer, objects=store)
    probe = chromium.probe(page, tmp_path)
    # the image itself, then the table's and the text's page regions with the bbox highlighted
    assert len(probe.images) == 3 and all(i["naturalWidth"] > 0 for i in probe.images), probe.images
    assert "<th>" in probe.dom and "Mazda RX4" in probe.text
    crumb = section.metadata["section"].split(" > ")[-1]
    assert "plot_confusion_matrix.html › " in probe.text and crumb in probe.text
    assert probe.alerts == [] and probe.scripts == 0
    path = tmp_path / "answer.html"
    path.write_text(page, encoding="utf-8")
    assert pixel_variance(chromium.screenshot(path)) > 200


def test_file_names_and_captions_render_as_text(chromium: Browser, tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    hit = _xss_hit(store, data_dir, tmp_path)
    answer = Answer(f"Why {XSS_CAPTION}?", f"Because <script>alert(3)</script> [1] {XSS_SOURCE}", "extractive",
                    citations=(Citation.for_element(1, hit.element, hit.object_uri),), hits=(hit,))
    for name, page in (("gallery.html", gallery_html([hit], objects=store, query=XSS_SOURCE)),
                       ("answer.html", answer_html(answer, objects=store))):
        probe = chromium.probe(page, tmp_path, name)
        assert probe.alerts == [], probe.alerts  # no handler, no script ran (and the probe would have caught it)
        assert probe.scripts == 0
        assert all(i["src"].startswith("data:image/") for i in probe.images), probe.images  # no <img src=x>
        assert all(i["naturalWidth"] > 0 for i in probe.images)
        assert XSS_SOURCE in probe.text and "<script>alert('caption')</script>" in probe.text
