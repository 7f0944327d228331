"""HtmlParser on real manual pages (tests/data/html, see its SOURCES.md) and on small synthetic pages."""

from __future__ import annotations

import base64
import csv
import io
import ipaddress
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_from_bytes

import httpx
import pytest
from PIL import Image

from mmrag.elements import Blob, Element
from mmrag.errors import ParseError
from mmrag.parsers._html_images import decode_data_uri, parse_srcset
from mmrag.parsers._report import collect_warnings
from mmrag.parsers.fetch import Fetcher, IPAddress
from mmrag.parsers.html import HtmlParser
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.sources import load_blob, parse_source

HTML = Path(__file__).parents[1] / "data" / "html"
SSL = HTML / "apache2/en/ssl/ssl_intro.html"
REWRITE = HTML / "apache2/en/rewrite/intro.html"
OCTAVE = HTML / "octave/Two_002dDimensional-Plots.html"
SKLEARN = HTML / "sklearn/auto_examples/model_selection/plot_confusion_matrix.html"


def parse_file(path: Path, options: ParseOptions | None = None) -> list[Element]:
    return list(HtmlParser(options).parse(load_blob(str(path))))


def of_kind(elements: list[Element], kind: str) -> list[Element]:
    return [e for e in elements if e.kind == kind]


def src_names(elements: list[Element]) -> list[str]:
    return [Path(e.metadata["src"]).name for e in of_kind(elements, "image")]


def png(width: int = 120, height: int = 90, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def page(tmp_path: Path, body: str, name: str = "page.html", head: str = "") -> Blob:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'>{head}<title>T</title></head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    return load_blob(str(path))


def parse_with_warnings(blob: Blob, options: ParseOptions | None = None,
                        fetcher: Fetcher | None = None) -> tuple[list[Element], list[str]]:
    with collect_warnings() as warnings:
        elements = list(HtmlParser(options, fetcher).parse(blob))
    return elements, warnings


# --- Apache: SSL/TLS introduction -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ssl_elements() -> list[Element]:
    return parse_file(SSL)


def test_ssl_tables(ssl_elements: list[Element]) -> None:
    tables = of_kind(ssl_elements, "table")
    # This edition has Tables 1, 2 and 4 (there is no Table 3).
    assert [t.metadata["heading"] for t in tables] == [
        "Table 1: Certificate Information", "Table 2: Distinguished Name Information",
        "Table 4: Versions of the SSL protocol"]
    dn = tables[1]
    assert dn.metadata["header"] == ["DN Field", "Abbrev.", "Description", "Example"]
    assert (dn.metadata["rows"], dn.metadata["columns"]) == (6, 4)
    rows = list(csv.reader(io.StringIO(dn.metadata["csv"])))
    assert rows[0] == dn.metadata["header"] and len(rows) == 7
    assert ["Common Name", "CN", "Name being certified", "CN=Joe Average"] in rows
    assert "| Organization or Company | O | Name is associated with this organization | O=Snake Oil, Ltd. |" in dn.text
    assert dn.text.startswith("SSL/TLS Strong Encryption: An Introduction > Certificates > Certificate Contents > "
                              "Table 2: Distinguished Name Information\n")
    versions = tables[2]
    assert versions.metadata["header"] == ["Version", "Source", "Description"]
    assert versions.metadata["rows"] == 6
    assert "| TLS v1.3 | Internet Standard (from IETF) [TLS13] |" in versions.text
    assert tables[0].metadata["rows"] == 4  # the first of its five rows is the header
    assert "| Period of Validity | Not Before Date, Not After Date |" in tables[0].text


def test_ssl_table_text_is_not_repeated_in_text_chunks(ssl_elements: list[Element]) -> None:
    texts = [e.text for e in of_kind(ssl_elements, "text")]
    assert not any("CN=Joe Average" in t or "Vendor Standard (from Netscape Corp.)" in t for t in texts)


def test_ssl_figures_without_alt_get_context(ssl_elements: list[Element]) -> None:
    images = of_kind(ssl_elements, "image")
    assert src_names(ssl_elements) == ["ssl_intro_fig1.gif", "ssl_intro_fig2.gif", "ssl_intro_fig3.gif"]
    assert all(img.metadata["alt"] == "" and img.mime_type == "image/gif" for img in images)
    fig1, fig2, fig3 = images
    assert fig1.text.startswith("Figure 1: Simplified SSL Handshake Sequence")
    assert fig1.metadata["section"].endswith("Secure Sockets Layer (SSL) > Establishing a Session")
    assert fig2.text.startswith("Figure 2: SSL Protocol Stack")
    assert "The encapsulated protocol has no knowledge of the underlying protocol." in fig2.text  # text before it
    assert fig3.text.startswith("Figure 3: SSL Record Protocol")
    assert (fig1.metadata["width"], fig1.metadata["height"]) == (423, 327)


def test_ssl_icons_and_page_furniture_are_dropped(ssl_elements: list[Element]) -> None:
    names = src_names(ssl_elements)
    assert "feather.png" not in names  # the logo sits in the page header, which is navigation
    assert not {"left.gif", "down.gif", "up.gif"} & set(names)  # 11x11 arrows: below min_image_px
    texts = "\n".join(e.text for e in of_kind(ssl_elements, "text"))
    assert "Report a bug" not in texts and "Copyright 2026 The Apache Software Foundation" not in texts


def test_ssl_text_sections(ssl_elements: list[Element]) -> None:
    texts = of_kind(ssl_elements, "text")
    (alice,) = [t for t in texts if "Suppose Alice wants to send a message to her bank" in t.text]
    assert alice.metadata["section"] == ("SSL/TLS Strong Encryption: An Introduction > Cryptographic Techniques > "
                                         "Cryptographic Algorithms")
    assert alice.metadata["heading"] == "Cryptographic Algorithms"
    assert alice.text.startswith(alice.metadata["section"] + "\n\n")
    assert (alice.page, alice.bbox) == (None, None)
    # A "Note" box has its own heading, which ends with the box: the list after it is back in its section.
    (steps,) = [t for t in texts if "Negotiate the Cipher Suite to be used during data transfer" in t.text]
    assert steps.metadata["heading"] == "Establishing a Session"
    assert "1. Negotiate the Cipher Suite to be used during data transfer\n2. Establish" in steps.text
    # Definition lists and the references at the end survive.
    assert any("Conventional cryptography\nalso known as symmetric cryptography" in t.text for t in texts)
    assert any(t.metadata["heading"] == "References" and "Bruce Schneier" in t.text for t in texts)
    # <pre> keeps its line breaks.
    assert any("-----BEGIN CERTIFICATE-----\nMIIC7jCCAlegAwIBAgIBATANBgkqhkiG9w0BAQQFADCBqTELMAkGA1UEBhMC" in t.text
               for t in texts)


# --- Apache: mod_rewrite introduction ---------------------------------------------------------------------

def test_rewrite_regex_table_and_diagrams() -> None:
    elements = parse_file(REWRITE)
    (table,) = of_kind(elements, "table")
    assert table.metadata["header"] == ["Character", "Meaning", "Example"]
    assert table.metadata["rows"] == 10
    rows = list(csv.reader(io.StringIO(table.metadata["csv"])))
    assert [".", "Matches any single character", "c.t will match cat, cot, cut, etc"] in rows
    assert "| . | Matches any single character | c.t will match cat, cot, cut, etc |" in table.text
    assert table.metadata["section"] == "Apache mod_rewrite Introduction > Regular Expressions > Regex vocabulary"
    assert "as well as write your own." in table.text  # the sentence before the table

    images = of_kind(elements, "image")
    assert src_names(elements) == ["rewrite_simplified_overview.png", "rewrite_backreferences.png",
                                   "syntax_rewriterule.png", "syntax_rewritecond.png"]
    overview = images[0]
    alt = ("Simplified flowchart of mod_rewrite processing: request arrives, check RewriteEngine On, iterate rules "
           "in order, test pattern match and RewriteCond, apply substitution if both pass, stop if L or END flag is "
           "set, otherwise continue to next rule")
    assert overview.metadata["alt"] == alt
    assert overview.text.startswith(alt + "\nFigure: Simplified overview of how mod_rewrite processes a request.")
    assert images[1].text.startswith("Diagram showing how backreferences flow between RewriteRule and RewriteCond")
    assert images[1].metadata["heading"] == "Regex Back-Reference Availability"


# --- Octave: two-dimensional plots ------------------------------------------------------------------------

def test_octave_plots_and_chunks() -> None:
    options = ParseOptions(chunk_size=600, chunk_overlap=100)
    elements = parse_file(OCTAVE, options)
    images = of_kind(elements, "image")
    assert src_names(elements) == ["plot.png", "hist.png", "errorbar.png", "polar.png"]
    captions = ["Figure 15.1: Simple Two-Dimensional Plot.", "Figure 15.2: Histogram.", "Figure 15.3: Errorbar plot.",
                "Figure 15.4: Polar plot."]
    for image, alt, caption in zip(images, ["plot", "hist", "errorbar", "polar"], captions, strict=True):
        assert image.metadata["alt"] == alt
        assert image.text.startswith(f"{alt}\n{caption}\n15.2.1 Two-Dimensional Plots\n")
    assert "produces the spiral plot shown in Figure 15.4" in images[3].text

    texts = of_kind(elements, "text")
    assert len(texts) > 50
    assert all(len(t.text) <= 600 for t in texts)
    assert all(t.metadata["section"] == "15.2.1 Two-Dimensional Plots" for t in texts)
    sentence = "The plot function allows you to create simple x-y plots with linear axes."
    (first,) = [t for t in texts if sentence in t.text]
    assert first.text.startswith("15.2.1 Two-Dimensional Plots\n\n" + sentence)
    assert 'x = -10:0.1:10;\nplot (x, sin (x));\nxlabel ("x");' in first.text
    # Old-style manual: no <main>, but the body text (to the last function) survives; the nav header does not.
    joined = "\n".join(t.text for t in texts)
    assert "Produce a simple comet style animation along the trajectory provided by the input coordinate vectors" \
        in joined  # the last function on the page
    assert "Next: Three-Dimensional Plots" not in joined
    # The small format tables (linestyle, marker, color) are data tables.
    tables = of_kind(elements, "table")
    assert len(tables) == 3
    assert ["‘o’", "circle"] in list(csv.reader(io.StringIO(tables[1].metadata["csv"])))


# --- scikit-learn gallery page ----------------------------------------------------------------------------

def test_sklearn_confusion_matrices() -> None:
    elements = parse_file(SKLEARN)
    images = of_kind(elements, "image")
    assert src_names(elements) == ["sphx_glr_plot_confusion_matrix_001.png", "sphx_glr_plot_confusion_matrix_002.png"]
    assert [i.metadata["alt"] for i in images] == ["Confusion matrix, without normalization",
                                                  "Normalized confusion matrix"]
    assert all(i.metadata["section"] == "Confusion matrix" for i in images)
    assert "In real life applications this parameter is usually chosen" in images[0].text  # nearby paragraph
    texts = "\n".join(e.text for e in of_kind(elements, "text"))
    assert "[[13  0  0]\n [ 0 10  6]\n [ 0  0  9]]" in texts  # printed output keeps its layout
    assert "Download Python source code" in texts
    assert "scikit-learn developers (BSD License)" not in texts  # footer is outside role=main


# --- synthetic pages --------------------------------------------------------------------------------------

def test_img_without_src_and_broken_images(tmp_path: Path) -> None:
    (tmp_path / "good.png").write_bytes(png())
    (tmp_path / "corrupt.png").write_bytes(b"this is not a png at all")
    blob = page(tmp_path, "<h1>Top</h1><p>Intro text.</p><img alt='nothing'><img src=''>"
                          "<img src='missing.png' alt='gone'><img src='corrupt.png'><img src='good.png' alt='ok'>"
                          "<p>After the images.</p>")
    elements, warnings = parse_with_warnings(blob)
    assert src_names(elements) == ["good.png"]
    assert any("Intro text." in e.text and "After the images." in e.text for e in of_kind(elements, "text"))
    assert len(warnings) == 2
    missing = str(tmp_path / "missing.png")
    assert any(missing in w and "no such file" in w for w in warnings)
    assert any(str(tmp_path / "corrupt.png") in w and "not a readable image" in w for w in warnings)


def test_data_uri_images(tmp_path: Path) -> None:
    b64 = base64.b64encode(png(100, 80)).decode()
    pct = quote_from_bytes(png(90, 70, (0, 0, 255)))
    blob = page(tmp_path, f"<p>Figures follow.</p><img src='data:image/png;base64,{b64}' alt='red box'>"
                          f"<img src='data:image/png,{pct}' alt='blue box'>"
                          f"<img src='data:image/png;base64,{b64}' alt='same red box again'>")
    elements, warnings = parse_with_warnings(blob)
    images = of_kind(elements, "image")
    assert warnings == []
    assert [(i.metadata["width"], i.metadata["height"]) for i in images] == [(100, 80), (90, 70)]  # deduplicated
    assert images[0].metadata["src"].startswith("data:image/png;base64,… (")
    assert images[0].text.startswith("red box\n")
    assert decode_data_uri("data:,a%20b") == ("text/plain", b"a b")
    with pytest.raises(ValueError):
        decode_data_uri("data:image/png;base64")


def test_srcset_and_picture(tmp_path: Path) -> None:
    for name, size in [("small.png", 70), ("big.png", 400), ("one.png", 80), ("two.png", 160), ("pic.png", 300),
                       ("fallback.png", 100)]:
        (tmp_path / name).write_bytes(png(size, size))
    (tmp_path / "pic.avif").write_bytes(b"not decodable here")
    blob = page(tmp_path, "<img src='small.png' srcset='small.png 100w, big.png 800w' alt='w'>"
                          "<img srcset='one.png 1x, two.png 2x' alt='x'>"
                          "<picture><source type='image/avif' srcset='pic.avif'><source srcset='pic.png 2x'>"
                          "<img src='fallback.png' alt='picture alt'></picture>")
    elements, warnings = parse_with_warnings(blob)
    assert warnings == []
    images = of_kind(elements, "image")
    assert src_names(elements) == ["big.png", "two.png", "pic.png"]
    assert images[2].metadata["alt"] == "picture alt"
    assert parse_srcset("a.png 1x, data:image/png;base64,AA== 2x,b.png") == [
        ("a.png", 1.0, "x"), ("data:image/png;base64,AA==", 2.0, "x"), ("b.png", 1.0, "x")]


def test_layout_tables_are_text(tmp_path: Path) -> None:
    (tmp_path / "icon.png").write_bytes(png(100, 100))
    blob = page(tmp_path, """
        <table><tr><td><h2>Manual</h2><p>Single cell layout holds the real text.</p></td></tr></table>
        <table><tr><td><a href='a.html'><img src='icon.png' alt='home'></a></td><td><a href='b.html'>Next</a></td>
        </tr></table>
        <table role='presentation'><tr><td>Left column words</td><td>Right column words</td></tr>
        <tr><td>more</td><td>words</td></tr></table>
        <table><tr><td>outer<table><tr><th>K</th><th>V</th></tr><tr><td>a</td><td>1</td></tr></table></td>
        <td>side</td></tr></table>""")
    elements, _ = parse_with_warnings(blob)
    tables = of_kind(elements, "table")
    assert [t.metadata["header"] for t in tables] == [["K", "V"]]  # only the nested data table
    text = "\n".join(e.text for e in of_kind(elements, "text"))
    assert "Single cell layout holds the real text." in text and "Left column words" in text
    assert of_kind(elements, "text")[0].metadata["heading"] == "Manual"
    assert src_names(elements) == ["icon.png"]  # images inside layout tables are still found


def test_table_spans_pipes_and_context(tmp_path: Path) -> None:
    blob = page(tmp_path, """<h2>Results</h2><p>Intro. The scores are below.</p>
        <table><caption>Table 9: Scores</caption>
        <thead><tr><th rowspan='2'>Name</th><th colspan='2'>Score</th></tr><tr><th>A</th><th>B</th></tr></thead>
        <tbody><tr><td>x|y</td><td>  1
           </td><td>2</td></tr><tr><td colspan='3'>all</td></tr></tbody></table>""")
    (table,) = of_kind(parse_with_warnings(blob)[0], "table")
    assert table.metadata["header"] == ["Name", "Score A", "Score B"]
    assert table.metadata["caption"] == "Table 9: Scores"
    assert table.text.startswith("Table 9: Scores\nResults\nThe scores are below.\n\n| Name | Score A | Score B |\n")
    assert "| x\\|y | 1 | 2 |" in table.text
    assert "| all | all | all |" in table.text
    assert list(csv.reader(io.StringIO(table.metadata["csv"])))[1] == ["x|y", "1", "2"]


def test_oversized_image_is_skipped_with_warning(tmp_path: Path) -> None:
    big = png(400, 400)
    (tmp_path / "big.png").write_bytes(big)
    (tmp_path / "small.png").write_bytes(png(70, 70))
    blob = page(tmp_path, "<p>Text stays.</p><img src='big.png'><img src='small.png'>"
                          f"<img src='data:image/png;base64,{base64.b64encode(big).decode()}'>")
    options = ParseOptions(max_image_bytes=len(big) - 1)
    elements, warnings = parse_with_warnings(blob, options)
    assert src_names(elements) == ["small.png"]
    assert len(warnings) == 2
    assert all("max_image_bytes" in w for w in warnings)
    assert str(tmp_path / "big.png") in warnings[0] and warnings[1].startswith("skipped image data:image/png;base64")


def test_base_href_and_missing_base(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "pic.png").write_bytes(png())
    blob = page(tmp_path, "<img src='pic.png' alt='based'>", head="<base href='assets/'>")
    assert src_names(parse_with_warnings(blob)[0]) == ["pic.png"]
    loose = Blob(data=b"<p>words</p><img src='pic.png'>", source="inline.html", mime_type="text/html")
    elements, warnings = parse_with_warnings(loose)
    assert of_kind(elements, "image") == [] and "words" in elements[0].text
    assert warnings == ["skipped image pic.png: a relative link, and the page has no base URL or folder"]


def test_main_region_and_boilerplate(tmp_path: Path) -> None:
    with_main = page(tmp_path, "<nav>Home | About</nav><main><h1>Real</h1><p>Main text.</p></main>"
                               "<footer>Footer text</footer>", name="a.html")
    texts = [e.text for e in parse_with_warnings(with_main)[0]]
    assert texts == ["Real\n\nMain text."]
    without = page(tmp_path, "<header><h1>Kept title</h1></header><div class='navbar'>Menu</div>"
                             "<p>Body text.</p><aside>Related links</aside>", name="b.html")
    texts = [e.text for e in parse_with_warnings(without)[0]]
    assert texts == ["Kept title\n\nBody text."]


def test_encodings_and_bad_bytes(tmp_path: Path) -> None:
    latin = b"<html><head><meta charset='windows-1252'></head><body><p>caf\xe9 cr\xe8me</p></body></html>"
    (text,) = HtmlParser().parse(Blob(data=latin, source="l.html", mime_type="text/html"))
    assert "café crème" in text.text
    bom = b"\xef\xbb\xbf<html><body><p>na\xc3\xafve</p></body></html>"
    (text,) = HtmlParser().parse(Blob(data=bom, source="b.html", mime_type="text/html"))
    assert "naïve" in text.text
    garbage = bytes(range(256)) * 8
    list(HtmlParser().parse(Blob(data=garbage, source="g.html", mime_type="text/html")))  # no crash
    plain = Blob(data=b"just some words, no markup", source="p.html", mime_type="text/html")
    assert [e.text for e in HtmlParser().parse(plain)] == ["just some words, no markup"]


@pytest.mark.parametrize("data", [b"", b"  \n\t "])
def test_empty_page_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        HtmlParser().parse(Blob(data=data, source="e.html", mime_type="text/html"))


def test_parse_source_collects_image_warnings(tmp_path: Path) -> None:
    path = tmp_path / "w.html"
    path.write_text("<p>hello</p><img src='nope.png'>")
    result = parse_source(str(path))
    assert result.ok and [e.kind for e in result.elements] == ["text"]
    assert len(result.warnings) == 1 and "nope.png" in result.warnings[0]


# --- remote images go through the safe fetcher ------------------------------------------------------------

def remote_fetcher(routes: dict[str, Callable[[], httpx.Response]], seen: list[str]) -> Fetcher:
    def handler(request: httpx.Request) -> httpx.Response:
        url = f"{request.headers['host']}{request.url.path}"
        seen.append(url)
        return routes[url]() if url in routes else httpx.Response(404)

    def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.216.34")]

    return Fetcher(ParseOptions(), transport=httpx.MockTransport(handler), resolver=resolve)


def test_remote_page_images_use_the_fetcher(tmp_path: Path) -> None:
    seen: list[str] = []
    fetcher = remote_fetcher({"example.org/docs/img/a.png": lambda: httpx.Response(200, content=png())}, seen)
    html = (b"<p>Remote page.</p><img src='img/a.png' alt='a'><img src='img/missing.png'>"
            b"<img src='http://127.0.0.1/secret.png'><img src='file:///etc/hostname'>")
    blob = Blob(data=html, source="https://example.org/docs/page", mime_type="text/html",
                base="https://example.org/docs/page")
    with fetcher:
        elements, warnings = parse_with_warnings(blob, fetcher=fetcher)
    assert [e.metadata["src"] for e in of_kind(elements, "image")] == ["https://example.org/docs/img/a.png"]
    assert "example.org/docs/img/missing.png" in seen and not any("secret" in s for s in seen)
    assert any("img/missing.png: HTTP 404 Not Found" in w for w in warnings)
    assert any("http://127.0.0.1/secret.png" in w and "loopback" in w for w in warnings)
    assert any("file:///etc/hostname" in w and "may not read local files" in w for w in warnings)
