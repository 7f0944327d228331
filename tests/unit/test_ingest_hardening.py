"""Ingest edge cases: a page whose linked image changed, the size cap per source, a locked manifest."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from mmrag.chains.ingestion import ingest
from mmrag.config import Settings
from mmrag.errors import StoreError
from mmrag.stores.manifest import Manifest

OCTAVE = "html/octave"
PAGE = "Two_002dDimensional-Plots.html"


def _run(home: Path, sources: list[str]):  # type: ignore[no-untyped-def]
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
    from _fault_ingest import run

    return run(home, sources)


def test_a_page_whose_linked_image_changed_is_updated(tmp_path: Path, data_dir: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(data_dir / OCTAVE, site)
    page = str(site / PAGE)
    first, col = _run(tmp_path / "home", [page])
    assert first.ok and first.sources[0].status == "new"
    before = set(col.objects.yield_keys())  # type: ignore[attr-defined]
    unchanged, _ = _run(tmp_path / "home", [page])
    assert unchanged.sources[0].status == "unchanged" and unchanged.model_calls["new"] == 0

    shutil.copy(data_dir / "images" / "img_029.png", site / "hist.png")  # same name, another picture
    second, col = _run(tmp_path / "home", [page])
    assert second.sources[0].status == "updated", "a changed linked image went unnoticed"
    assert second.sources[0].added == 1 and second.sources[0].removed == 1
    after = set(col.objects.yield_keys())  # type: ignore[attr-defined]
    assert len(before - after) == 1 and len(after - before) == 1  # the old picture's object is deleted
    assert after == col.manifest.referenced_keys()


def test_a_source_over_the_size_cap_fails_alone_with_the_fix(tmp_path: Path, data_dir: Path) -> None:
    big = tmp_path / "big.html"
    big.write_text("<html><body>" + "<p>lots of words here</p>" * 200 + "</body></html>")
    small = tmp_path / "small.html"
    small.write_text("<html><body><p>A page well under the cap.</p></body></html>")
    report = ingest([big, small], Settings(home=tmp_path / "home", max_source_bytes=4096, ocr="off"))
    failed, ok = report.sources
    assert failed.status == "failed" and ok.status == "new"
    assert failed.error is not None and "over the 4,096-byte cap per source (max_source_bytes)" in failed.error
    assert "MMRAG_MAX_SOURCE_BYTES" in failed.error


def test_a_locked_manifest_waits_then_fails_as_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    Manifest(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a commit
    try:
        manifest = Manifest(path, timeout=0.2)
        with pytest.raises(StoreError, match="locked by another mmrag process for 0.2 s"):
            manifest.claim("a.pdf", ["x"])
        assert manifest.get("a.pdf") is None  # reads still work under WAL
        manifest.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
