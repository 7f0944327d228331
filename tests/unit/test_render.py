"""mmrag.render without a browser: escaping, the hit shape, size budget, regions, tables, links, duplicates."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from mmrag.answers import Answer, Citation, Hit, breadcrumb, source_link
from mmrag.elements import Element
from mmrag.render import HitList, answer_html, gallery_html, hits_html
from mmrag.render._html import href
from mmrag.render._media import link_validity, page_region, thumbnail
from mmrag.retrievers.search import collapse_duplicates, matching_sources
from mmrag.stores.objects import LocalObjectStore

XSS_NAME = "<img src=x onerror=alert(1)>.png"
XSS_CAPTION = "a chart <script>alert('caption')</script> of sales"
HIT_KEYS = {"element_id", "score", "lists", "kind", "source", "page", "bbox", "section", "object_uri", "source_uri",
            "caption", "text", "src", "also_in"}


def _png(data_dir: Path) -> bytes:
    return (data_dir / "images" / "img_029.png").read_bytes()


def _image_hit(store: LocalObjectStore, data: bytes, source: str, caption: str = "", score: float = 0.9) -> Hit:
    key = store.put(data, "image/png")
    element = Element(kind="image", source=source, text="nearby text", mime_type="image/png",
                      metadata={"caption": caption} if caption else {}).detach(key)
    return Hit(element, score, ("image",), store.uri(key))


def _decoded_images(page: str) -> list[Image.Image]:
    out = []
    for payload in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page):
        out.append(Image.open(io.BytesIO(base64.b64decode(payload))))
    return out


def test_document_strings_are_escaped_and_no_script_is_emitted(tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    hit = _image_hit(store, _png(data_dir), f"/docs/{XSS_NAME}", XSS_CAPTION)
    for page in (gallery_html([hit], objects=store, query="<b>q</b>"), hits_html([hit], objects=store)):
        assert "<script" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
        assert "&lt;img src=x onerror=alert(1)&gt;.png" in page
        assert "&lt;script&gt;alert(&#x27;caption&#x27;)&lt;/script&gt;" in page
        assert "<img src=x" not in page
    assert "Content-Security-Policy" in gallery_html([hit], objects=store)


def test_only_safe_link_schemes_become_hrefs() -> None:
    assert href("javascript:alert(1)") is None and href("data:text/html,<script>") is None
    assert href('https://x/a?b=1&c="2"') == "https://x/a?b=1&amp;c=&quot;2&quot;"
    assert href("file:///tmp/a.png") == "file:///tmp/a.png"


def test_hit_shape_is_shared_by_search_and_ask(tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    hit = _image_hit(store, _png(data_dir), "/docs/a.html", "confusion matrix")
    row = hit.to_dict()
    assert row.keys() >= HIT_KEYS
    assert row["object_uri"].startswith("file://") and row["caption"] == "confusion matrix"
    answer = Answer("q", "see [1]", "extractive", ("q",), (Citation.for_element(1, hit.element, hit.object_uri),),
                    (hit,))
    ask_row = answer.to_dict()["hits"][0]
    assert ask_row["rank"] == 1 and ask_row.keys() >= HIT_KEYS and ask_row["object_uri"] == row["object_uri"]


def test_html_section_breadcrumb_and_fragment_link() -> None:
    chunk = Element(kind="text", source="/docs/intro.html", text="Intro > Regular expressions\n\nUse re.",
                    metadata={"section": "Intro > Regular expressions", "anchor": "regular-expressions"})
    assert breadcrumb(chunk) == "intro.html › Intro › Regular expressions"
    assert source_link(chunk) == "file:///docs/intro.html#regular-expressions"
    pdf = Element(kind="text", source="https://example.org/r.pdf", text="x", page=3)
    assert breadcrumb(pdf) == "r.pdf › page 3" and source_link(pdf) == "https://example.org/r.pdf#page=3"
    citation = Citation.for_element(1, chunk)
    assert citation.section == "intro.html › Intro › Regular expressions"
    assert citation.source_uri == "file:///docs/intro.html#regular-expressions"
    page = answer_html(Answer("q?", "Use re [1].", "extractive", citations=(citation,), hits=(Hit(chunk, 1.0),)))
    assert 'href="file:///docs/intro.html#regular-expressions"' in page and "intro.html › Intro ›" in page
    assert '<a href="#cite-1">1</a>' in page and "<blockquote>Use re.</blockquote>" in page


def test_fifty_hits_stay_under_five_megabytes(tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    files = sorted((data_dir / "i2i" / "gallery").glob("*.jpg")) + sorted((data_dir / "images").glob("*.*g"))
    big = Image.merge("RGB", [Image.effect_noise((3000, 2000), 80) for _ in range(3)])  # noise: worst for JPEG
    buf = io.BytesIO()
    big.save(buf, "PNG")
    blobs = [buf.getvalue()] + [p.read_bytes() for p in files]
    hits = [_image_hit(store, blobs[n % len(blobs)] + bytes([n]) * (n >= len(blobs)), f"/d/{n}.png", f"c{n}",
                       1 - n / 100) for n in range(50)]
    page = gallery_html(hits, objects=store, query="all")
    assert len(page.encode()) < 5_000_000
    images = _decoded_images(page)
    assert len(images) == 50 and all(max(i.size) <= 320 for i in images)


def test_pdf_region_is_rendered_with_the_bbox_highlighted(data_dir: Path) -> None:
    pdf = data_dir / "pdf" / "tabula-data.pdf"
    chunk = Element(kind="text", source=str(pdf), text="mtcars", page=1, bbox=(100, 100, 300, 160))
    picture = page_region(chunk)
    assert picture is not None and picture.uri.startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(picture.uri.split(",", 1)[1]))).convert("RGB")
    import numpy as np

    px = np.asarray(img).astype(int)
    orange = int(((px[..., 0] > 200) & (px[..., 1] > 60) & (px[..., 1] < 130) & (px[..., 2] < 60)).sum())
    assert orange > 100  # the outline of the highlighted rectangle
    assert page_region(Element(kind="text", source="/nope.pdf", text="x", page=1, bbox=(0, 0, 1, 1))) is None


def test_page_render_is_cropped_when_the_pdf_is_not_readable(data_dir: Path) -> None:
    import pymupdf

    with pymupdf.open(data_dir / "pdf" / "tabula-data.pdf") as doc:
        rect, png = doc[0].rect, doc[0].get_pixmap(dpi=72).tobytes("png")
    page = Element(kind="page", source="https://example.org/t.pdf", page=1, bbox=(0, 0, rect.width, rect.height),
                   data=png, mime_type="image/png")
    chunk = Element(kind="text", source="https://example.org/t.pdf", text="x", page=1, bbox=(50, 50, 200, 120))
    assert page_region(chunk, page_render=(png, page)) is not None


def test_table_is_rendered_as_a_table() -> None:
    table = Element(kind="table", source="/d/t.html", text="| a | b |",
                    metadata={"csv": "name,hp\nMazda RX4,110\n<x>,1\n"})
    page = answer_html(Answer("hp?", "110 [1]", "extractive", citations=(Citation.for_element(1, table),),
                              hits=(Hit(table, 1.0),)))
    assert "<th>name</th><th>hp</th>" in page and "<td>Mazda RX4</td><td>110</td>" in page
    assert "<td>&lt;x&gt;</td>" in page


def test_table_rows_quoted_in_the_answer_are_a_table_there_too() -> None:
    table = Element(kind="table", source="/d/t.pdf", text="| | hp |\n|---|---|\n| Mazda RX4 | 110 |", page=1)
    text = ("Extractive answer: quoted.\n\nThe hp of a car [1]\n\n| | hp |\n|---|---|\n| Mazda RX4 | 110 |\n"
            "| <b>x</b> | 1 |\n[1]\n\n| not | a table, one row |")
    page = answer_html(Answer("hp?", text, "extractive", citations=(Citation.for_element(1, table),),
                              hits=(Hit(table, 1.0),)))
    answer = page.split('<div class="answer">', 1)[1].split("</div>", 1)[0]
    assert ('<table class="data quoted"><thead><tr><th></th><th>hp</th></tr></thead><tbody><tr><td>Mazda RX4</td>'
            '<td>110</td></tr>') in answer
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in answer and "<b>x" not in answer
    assert '</table>[<a href="#cite-1">1</a>]' in answer and "|---|" not in answer
    assert "| not | a table, one row |" in answer  # a single row stays text


def test_presigned_link_validity_is_stated() -> None:
    url = "https://b.s3.amazonaws.com/k.png?X-Amz-Date=20261130T120000Z&X-Amz-Expires=3600&X-Amz-Signature=ab"
    assert "valid for 1 h (until 2026-11-30 13:00 UTC)" in str(link_validity(url, now=1796040000.0))
    assert "expired" in str(link_validity(url, now=1796040000.0 + 7200))
    assert link_validity("file:///x.png") is None


def test_duplicates_collapse_into_one_hit_with_every_provenance(tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    in_page = _image_hit(store, _png(data_dir), "/d/page.html", score=0.99)
    as_file = _image_hit(store, _png(data_dir), "/d/images/img_029.png", score=0.98)
    other = _image_hit(store, (data_dir / "images" / "img_031.png").read_bytes(), "/d/b.png", score=0.5)
    hits = collapse_duplicates([in_page, as_file, other])
    assert [h.element.source for h in hits] == ["/d/page.html", "/d/b.png"]
    assert [d.source for d in hits[0].duplicates] == ["/d/images/img_029.png"]
    assert hits[0].to_dict()["also_in"][0]["source"] == "/d/images/img_029.png"
    assert "also in:" in gallery_html(hits, objects=store)


def test_source_glob_matches_paths_and_file_names() -> None:
    sources = ["/d/a.pdf", "/d/html/x.html", "https://e.org/y.pdf"]
    assert matching_sources("*.pdf", sources) == ["/d/a.pdf", "https://e.org/y.pdf"]
    assert matching_sources("/d/html/*", sources) == ["/d/html/x.html"]


def test_notebook_reprs_show_pictures(tmp_path: Path, data_dir: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    hit = _image_hit(store, _png(data_dir), "/d/a.png", "matrix")  # the picture is read from its file:// link
    for fragment in (hit._repr_html_(), HitList([hit, hit])._repr_html_()):
        assert fragment.startswith('<div class="mmrag">') and "data:image/jpeg;base64," in fragment
    answer = Answer("q", "It is a matrix [1].", "extractive",
                    citations=(Citation.for_element(1, hit.element, hit.object_uri),), hits=(hit,))
    assert "data:image/jpeg;base64," in answer._repr_html_() and "<html" not in answer._repr_html_()


def test_unreadable_picture_gives_a_placeholder_not_an_error(tmp_path: Path) -> None:
    assert thumbnail(b"not an image") is None
    store = LocalObjectStore(tmp_path / "objects")
    key = store.put(b"not an image", "image/png")
    hit = Hit(Element(kind="image", source="/d/x.png", mime_type="image/png").detach(key), 1.0, (), store.uri(key))
    assert "(no picture)" in gallery_html([hit], objects=store)


@pytest.mark.parametrize("marker_text", ["[1]", "[1, 2]"])
def test_unknown_markers_stay_plain_text(marker_text: str) -> None:
    chunk = Element(kind="text", source="/d/a.html", text="x")
    page = answer_html(Answer("q", f"x {marker_text} [9]", "extractive",
                              citations=(Citation.for_element(1, chunk),), hits=(Hit(chunk, 1.0),)))
    assert '<a href="#cite-1">1</a>' in page and "[9]" in page
