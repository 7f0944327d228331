"""Cited-region outlines in a real browser: the visual answer for PDF passages and tables whose parser bbox cuts
their text (a code line on strucchange-intro.pdf page 13, a table on vcd-residual-shadings.pdf page 4 whose bbox
misses its first column's header), loaded in headless Chromium. In the page, a probe finds the drawn outline in
each evidence picture's pixels (the orange stroke) and places the cited words there (their PDF positions, from
PyMuPDF, through the picture's ``data-pdf-region``); every cited word must lie inside the stroke (issue 25, item 8).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from _browser import Browser

from mmrag.answers import Answer, Citation, Hit
from mmrag.elements import Element
from mmrag.parsers import parse_sources
from mmrag.render import answer_html

pytestmark = pytest.mark.integration

_WORD = re.compile(r"\w+")
TOLERANCE_PX = 1.0  # JPEG and downscaling blur the stroke's edge by about a pixel

# After ``load``: per evidence picture, the stroke's outer and inner edges (from its pixels, in CSS pixels of the
# page) and the cited words' boxes (PDF points mapped through data-pdf-region). Canvas pixels of a data: URI are
# readable (not cross-origin).
_PROBE = """<script>
window.addEventListener('load', function () {
  var cited = CITED_JSON;
  var out = [];
  function orange(d, i) { var r = d[i], g = d[i + 1], b = d[i + 2];
    return r > 170 && g < 160 && b < 110 && r - g > 80; }
  function bands(counts) {  // first and last run of lines that are mostly stroke
    var top = Math.max.apply(null, counts), hit = counts.map(function (c) { return c >= 0.6 * top && top > 0; });
    var a = hit.indexOf(true), b = a; while (b + 1 < hit.length && hit[b + 1]) b++;
    var d = hit.lastIndexOf(true), c = d; while (c - 1 >= 0 && hit[c - 1]) c--;
    return [a, b + 1, c, d + 1];  // outer start, inner start, inner end, outer end (pixel edges)
  }
  document.querySelectorAll('section.cite').forEach(function (section) {
    var img = section.querySelector('img[data-pdf-region]');
    if (!img) { out.push({id: section.id, error: 'no picture'}); return; }
    var w = img.naturalWidth, h = img.naturalHeight, canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
    var d = ctx.getImageData(0, 0, w, h).data, rows = new Array(h).fill(0), cols = new Array(w).fill(0);
    for (var y = 0; y < h; y++) for (var x = 0; x < w; x++) if (orange(d, (y * w + x) * 4)) { rows[y]++; cols[x]++; }
    var r = img.getBoundingClientRect(), sx = r.width / w, sy = r.height / h;
    var vy = bands(rows), vx = bands(cols);
    var region = img.getAttribute('data-pdf-region').split(' ').map(Number);
    var px = r.width / (region[2] - region[0]), py = r.height / (region[3] - region[1]);
    var words = (cited[section.id] || []).map(function (q) {
      return {text: q[4], x0: r.left + (q[0] - region[0]) * px, y0: r.top + (q[1] - region[1]) * py,
              x1: r.left + (q[2] - region[0]) * px, y1: r.top + (q[3] - region[1]) * py};
    });
    out.push({id: section.id, shown: [r.left, r.top, r.right, r.bottom],
              outer: [r.left + vx[0] * sx, r.top + vy[0] * sy, r.left + vx[3] * sx, r.top + vy[3] * sy],
              inner: [r.left + vx[1] * sx, r.top + vy[1] * sy, r.left + vx[2] * sx, r.top + vy[2] * sy],
              words: words});
  });
  var pre = document.createElement('pre'); pre.id = 'outline-probe'; pre.textContent = JSON.stringify(out);
  document.documentElement.appendChild(pre);
});
</script>"""


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in _WORD.findall(text)}


def _own(word: tuple[Any, ...], tokens: set[str]) -> bool:
    found = _WORD.findall(str(word[4]).lower())
    return bool(found) and all(t in tokens for t in found)


def _cited_words(pdf: Path, element: Element) -> list[tuple[Any, ...]]:
    """The element's words on its page: on each text line the bbox touches, the words of the element's text (a
    table: its CSV's cells), left and right of the bbox included; for a table also the lines of its rows."""
    assert element.bbox is not None and element.page is not None
    x0, y0, x1, y1 = element.bbox
    tokens = _tokens(element.text + " " + str(element.metadata.get("csv", "")))
    with pymupdf.open(pdf) as doc:
        words = doc[element.page - 1].get_text("words")
    touched = {(w[5], w[6]) for w in words if w[2] > x0 and w[0] < x1 and w[3] > y0 and w[1] < y1}
    return [w for w in words if (w[5], w[6]) in touched and _own(w, tokens)]


def _clipped(element: Element, words: list[tuple[Any, ...]]) -> list[str]:
    assert element.bbox is not None
    x0, y0, x1, y1 = element.bbox
    return [str(w[4]) for w in words if not (x0 <= w[0] and y0 <= w[1] and w[2] <= x1 and w[3] <= y1)]


def _case(data_dir: Path, name: str, pick: Any) -> tuple[Path, Element]:
    pdf = data_dir / "pdf" / name
    [result] = parse_sources([str(pdf)])
    return pdf, next(e for e in result.elements if e.bbox is not None and e.page is not None and pick(e))


def test_outlines_contain_every_cited_word(chromium: Browser, tmp_path: Path, data_dir: Path) -> None:
    cases = [
        _case(data_dir, "strucchange-intro.pdf",
              lambda e: e.kind == "text" and e.page == 13 and e.text.startswith("> USIncExp3 <- window")),
        _case(data_dir, "vcd-residual-shadings.pdf",
              lambda e: e.kind == "table" and e.page == 4 and "compressor" in e.text),
    ]
    cited: dict[str, list[tuple[Any, ...]]] = {}
    hits, citations = [], []
    for n, (pdf, element) in enumerate(cases, 1):
        words = _cited_words(pdf, element)
        # The cases only test something while the parser's bbox cuts the cited text (else pick other pages).
        assert _clipped(element, words), f"the bbox of {pdf.name} page {element.page} no longer cuts its text"
        cited[f"cite-{n}"] = [tuple(w[:5]) for w in words]
        hits.append(Hit(element, 1.0 / n, ("dense",)))
        citations.append(Citation.for_element(n, element))
    answer = Answer("Which lines and cells are cited?", "See [1] and [2].", "extractive", citations=tuple(citations),
                    hits=tuple(hits))
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", answer_html(answer))  # lets the probe run
    page = page.replace("<head>", "<head>" + _PROBE.replace("CITED_JSON", json.dumps(cited)), 1)
    path = tmp_path / "answer.html"
    path.write_text(page, encoding="utf-8")
    match = re.search(r'<pre id="outline-probe">(.*?)</pre>', chromium.dump_dom(path), re.DOTALL)
    assert match, "the probe did not run"
    figures = json.loads(html.unescape(match.group(1)))
    assert [f["id"] for f in figures] == ["cite-1", "cite-2"] and not any("error" in f for f in figures), figures

    for figure in figures:
        inner, outer, words = figure["inner"], figure["outer"], figure["words"]
        assert outer[2] - outer[0] > 20 and outer[3] - outer[1] > 10, f"no outline found in {figure['id']}"
        assert inner[0] > outer[0] and inner[1] > outer[1], f"the stroke of {figure['id']} was not seen"
        outside = [w["text"] for w in words if w["x0"] < inner[0] - TOLERANCE_PX or w["y0"] < inner[1] - TOLERANCE_PX
                   or w["x1"] > inner[2] + TOLERANCE_PX or w["y1"] > inner[3] + TOLERANCE_PX]
        assert words and not outside, f"{figure['id']}: cited words under or outside the outline: {outside}"
