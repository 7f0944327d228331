"""kill -9 at every point of the write order: searches never see uncommitted records, the re-run is exact,
and no record or object is left behind (or lost)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _fault_ingest import run

from mmrag.chains.upkeep import collect_garbage, remove_sources
from mmrag.stores.collection import Collection

pytestmark = [pytest.mark.faults, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

HERE = Path(__file__).parent
PAGE = "html/octave/Two_002dDimensional-Plots.html"


def _copy_docs(root: Path, data_dir: Path) -> Path:
    (root / "html/octave").mkdir(parents=True)
    shutil.copy(data_dir / PAGE, root / PAGE)
    for png in (data_dir / "html/octave").glob("*.png"):
        shutil.copy(png, root / "html/octave" / png.name)
    shutil.copy(data_dir / "pdf/tabula-data.pdf", root / "tabula-data.pdf")
    shutil.copy(data_dir / "images/img_029.png", root / "img_029.png")
    shutil.copy(data_dir / "images/img_023.jpg", root / "added.jpg")
    return root


@pytest.fixture
def docs(tmp_path: Path, data_dir: Path) -> Path:
    return _copy_docs(tmp_path / "docs", data_dir)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The second version of the documents ingested once, without a crash: what every re-run must reach."""
    root = tmp_path_factory.mktemp("expected")
    docs = _copy_docs(root / "docs", Path(__file__).parents[1] / "data")
    _change_page(docs)
    report, col = run(root / "home", [*_sources(docs), str(docs / "added.jpg")])
    assert report.ok
    state = _state(col)
    return {"committed": len(state["committed"]), "objects": state["objects"], "elements": report.elements}


def _sources(docs: Path) -> list[str]:
    return [str(docs / PAGE), str(docs / "tabula-data.pdf"), str(docs / "img_029.png")]


def _change_page(docs: Path) -> None:
    """New text, and one image link moved to another picture: stale elements and an object to release."""
    page = docs / PAGE
    html = page.read_text(encoding="utf-8")
    assert 'src="hist.png"' in html
    page.write_text(html.replace('src="hist.png"', 'src="../../img_029.png"').replace(
        "</body>", "<p>A paragraph added by the second version of the page.</p></body>"), encoding="utf-8")


def _child(home: Path, sources: list[str], env: dict[str, str], *args: str) -> int:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]), **env}
    proc = subprocess.run([sys.executable, str(HERE / "_fault_ingest.py"), str(home), *args, *sources], env=full,
                          capture_output=True, timeout=600)
    return proc.returncode


def _state(col: Collection) -> dict[str, set[str]]:
    committed = {i for e in col.manifest.sources() for i in col.manifest.element_ids(e.source)}
    return {
        "committed": committed,
        "text_all": {h.id for h in col.text.inner.search([1.0] * 384, k=100_000)},  # type: ignore[attr-defined]
        "text_visible": {h.id for h in col.text.search([1.0] * 384, k=100_000)},
        "image_visible": {h.id for h in col.image.search([1.0] * col.image.dimensions, k=100_000)},
        "objects": set(col.objects.yield_keys()),  # type: ignore[attr-defined]
        "referenced": col.manifest.referenced_keys(),
    }


@pytest.mark.parametrize("point", ["objects", "index", "delete", "commit"])
def test_kill_at_each_write_point(point: str, docs: Path, tmp_path: Path, expected: dict[str, object],
                                  record: Callable[..., None]) -> None:
    home = tmp_path / "home"
    first, col = run(home, _sources(docs))
    assert first.ok
    before = _state(col)
    _change_page(docs)
    sources = [*_sources(docs), str(docs / "added.jpg")]  # a changed page and a new image: one group, 2 commits
    assert _child(home, sources, {"MMRAG_CRASH_AT": point}) == -signal.SIGKILL

    _, col = run(home, [])  # reopen without ingesting anything
    crashed = _state(col)
    assert crashed["text_visible"] <= crashed["committed"], "a search returned an uncommitted record"
    assert crashed["image_visible"] <= crashed["committed"]
    if point in ("index", "delete"):
        assert crashed["text_all"] - crashed["committed"], "the crash point did not leave uncommitted records"

    report, col = run(home, sources)
    assert report.ok
    after = _state(col)
    assert after["text_all"] == after["text_visible"] <= after["committed"]  # nothing uncommitted left over
    assert col.text.count() == len(after["text_all"])  # no duplicates
    assert after["objects"] == after["referenced"], "orphaned or missing objects"
    assert not any(col.manifest.pending_ids(s) for s in sources)
    lost = max(0, int(expected["committed"]) - len(after["committed"]))  # type: ignore[call-overload]
    assert len(after["committed"]) == expected["committed"] and report.elements == expected["elements"]
    assert after["objects"] == expected["objects"]
    assert before["objects"] - after["objects"], "the page's old image was never deleted"
    record(f"kill -9 at '{point}' then re-run", held=len(after["committed"]), lost=lost)


def test_gc_removes_uncommitted_records_and_orphans(docs: Path, tmp_path: Path, record: Callable[..., None]) -> None:
    home = tmp_path / "home"
    sources = _sources(docs)
    assert _child(home, sources, {"MMRAG_CRASH_AT": "index"}) == -signal.SIGKILL
    _, col = run(home, [])
    left = _state(col)
    assert left["committed"] == set() and left["text_all"] and left["text_visible"] == set()
    stray = col.objects.root / "sha256" / ".mmrag-tmp-deadbeef"  # type: ignore[attr-defined]
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half an object")
    os.utime(stray, (1, 1))
    report = collect_garbage(collection=col)
    clean = _state(col)
    assert clean["text_all"] == set() and col.text.count() == 0 and col.image.count() == 0
    assert clean["objects"] == set() and not stray.exists()
    assert report.temp_files == 1 and report.objects_deleted == len(left["objects"]) > 0
    assert sum(report.uncommitted.values()) >= len(left["text_all"]) > 0
    record("gc after kill -9 with nothing committed", held=0, lost=0)


def test_remove_deletes_a_source_and_only_its_unshared_objects(docs: Path, tmp_path: Path,
                                                               record: Callable[..., None]) -> None:
    home = tmp_path / "home"
    shutil.copy(docs / "img_029.png", docs / "copy.png")  # same bytes, another source: one shared object
    sources = [*_sources(docs), str(docs / "copy.png")]
    report, col = run(home, sources)
    assert report.ok
    removed = remove_sources([str(docs / PAGE), str(docs / "img_029.png")], collection=col)
    assert [r["source"] for r in removed] == [str(docs / PAGE), str(docs / "img_029.png")]
    state = _state(col)
    assert {Path(e.source).name for e in col.manifest.sources()} == {"tabula-data.pdf", "copy.png"}
    assert state["objects"] == state["referenced"]  # the shared picture stays, the page's images are gone
    assert {Path(h.element.source).name for h in col.text.search([1.0] * 384, k=1000)} <= {"tabula-data.pdf",
                                                                                         "copy.png"}
    assert col.text.count() == len(state["text_all"]) == len(state["committed"] & state["text_all"])
    record("remove 2 of 4 sources (one object shared)", held=len(state["committed"]), lost=0)
