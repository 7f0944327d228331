"""Gallery cards say which lists found a hit instead of a raw RRF score (0.03 means nothing to a person), and an
image→image page shows the query picture (issue 25, item 9)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mmrag.answers import Hit
from mmrag.cli import cli
from mmrag.elements import Element
from mmrag.render import gallery_html


def test_a_card_shows_rank_and_the_lists_that_found_it_not_the_rrf_score() -> None:
    chunk = Element(kind="text", source="/d/a.pdf", text="mod_rewrite maps URLs to files", page=2)
    page = gallery_html([Hit(chunk, 0.0327, ("dense:q1", "bm25:q1", "bm25:q2"))], query="rewrite")
    card = page.split('<figure class="hit"', 1)[1]
    assert "<b>#1</b>" in card and "found by meaning + keywords, 3 lists" in card
    visible = card.replace('title="score 0.0327"', "")
    assert "0.0327" not in visible and "score 0.03" not in visible


def test_the_image_to_image_page_shows_the_query_picture(tmp_path: Path, data_dir: Path, i2i_queries: Path) -> None:
    env = {"MMRAG_HOME": str(tmp_path / "home"), "MMRAG_OCR": "off"}
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(data_dir / "i2i" / "gallery"), "--json"], env=env).exit_code == 0
    out = tmp_path / "similar.html"
    found = runner.invoke(cli, ["search", "--image", str(i2i_queries / "q01_crop.jpg"), "-k", "3", "--json",
                                "--html", str(out)], env=env)
    assert found.exit_code == 0, found.output
    assert Path(json.loads(found.stdout.splitlines()[0])["source"]).name == "img_002.jpg"
    html = out.read_text()
    query = html.split('<figure class="query">', 1)[1].split("</figure>", 1)[0]
    assert '<img src="data:image/jpeg;base64,' in query and "the query picture" in query
    assert html.index('<figure class="query">') < html.index('<figure class="hit"')
