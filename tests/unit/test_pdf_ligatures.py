"""TeX T1-encoded ligatures in Type3 fonts: MuPDF reads their codes as spaces; the words are mended."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from mmrag.parsers._pdf_text import mend_ligatures, read_page


def _w(x0: float, text: str, line: int = 0) -> tuple[float, float, float, float, str, int, int, int]:
    return (x0, 10.0, x0 + 6 * len(text), 20.0, text, 0, line, 0)


def test_mend_ligatures_joins_the_pieces_around_each_code() -> None:
    words = [_w(0, "a"), _w(10, "uni"), _w(40, "ed"), _w(60, "uctuation"), _w(130, "o"), _w(140, "ers"),
             _w(0, "modi", line=1), _w(40, "ed", line=2)]
    text = "a uni\x1ced \x1ductuation o\x1bers\nmodi\x1c\ned"
    mended = mend_ligatures(words, text)
    assert [w[4] for w in mended] == ["a", "unified", "fluctuation", "offers", "modifi", "ed"]
    unified = mended[1]
    assert (unified[0], unified[2]) == (10, 40 + 6 * 2)  # the box spans both pieces
    assert mend_ligatures(words[:1], "a") == words[:1]  # no codes: unchanged
    assert [w[4] for w in mend_ligatures([_w(0, "b")], "x\x1cy")] == ["b"]  # pieces not found: skipped


def test_the_strucchange_vignette_reads_fluctuation(data_dir: Path) -> None:
    with pymupdf.open(data_dir / "pdf" / "strucchange-intro.pdf") as doc:
        blocks, _ = read_page(doc[0])
    text = "\n".join(b.text for b in blocks)
    assert "fluctuation" in text and "unified" in text and "signific" in text
    assert " uctuation" not in text and "uni ed" not in text
