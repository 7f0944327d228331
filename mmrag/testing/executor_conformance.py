"""The conformance suite every ingest executor passes (local threads, Ray).

Subclass :class:`ExecutorConformance` and provide ``run_ingest``: a callable
``run_ingest(sources, settings, **kwargs) -> IngestReport`` that ingests with the executor under test. The
suite compares it with the local executor on the same files (same element ids, object keys and counts), and
checks what users rely on: a re-run is unchanged and makes no model call, a bad source fails alone with its
reason, and the report has the same shape.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmrag.chains.ingestion import IngestReport, ingest
from mmrag.config import Settings

__all__ = ["ExecutorConformance", "collection_state"]

Runner = Callable[..., IngestReport]
_FILES = ("pdf/tabula-data.pdf", "pdf/octave-refcard-a4.pdf", "images/img_029.png",
          "html/octave/Two_002dDimensional-Plots.html")


def collection_state(settings: Settings) -> dict[str, Any]:
    """Committed element ids by source, and object keys, of ``settings``' collection."""
    from mmrag.chains.upkeep import open_existing

    collection = open_existing(settings)
    manifest = collection.manifest
    by_source = {e.source: manifest.element_ids(e.source) for e in manifest.sources()}
    return {"ids": by_source, "objects": {k.rsplit("/", 1)[-1] for k in manifest.referenced_keys()},
            "pending": manifest.sources_with_pending()}


class ExecutorConformance:
    """Behaviour every executor must have (see the module docstring)."""

    @pytest.fixture
    def run_ingest(self) -> Runner:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    @pytest.fixture
    def base_settings(self, tmp_path: Path) -> Settings:
        """Settings of the collections the suite fills (override for shared stores)."""
        return Settings(home=tmp_path / "home", ocr="off")  # type: ignore[call-arg]

    @pytest.fixture
    def docs(self, tmp_path: Path, data_dir: Path) -> list[str]:
        out = []
        for rel in _FILES:
            target = tmp_path / "docs" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(data_dir / rel, target)
            out.append(str(target))
        for png in (data_dir / "html/octave").glob("*.png"):
            shutil.copy(png, tmp_path / "docs/html/octave" / png.name)
        broken = tmp_path / "docs" / "broken.pdf"
        broken.write_bytes(b"%PDF-1.7\n this is not a PDF at all")
        return [*out, str(broken)]

    def test_same_collection_as_the_local_executor(self, run_ingest: Runner, base_settings: Settings,
                                                   docs: list[str]) -> None:
        local = base_settings.model_copy(update={"collection": "by-local"})
        other = base_settings.model_copy(update={"collection": "by-executor"})
        expected = ingest(docs, local)
        got = run_ingest(docs, other)
        assert [s.source for s in got.sources] == [s.source for s in expected.sources]
        assert [s.status for s in got.sources] == [s.status for s in expected.sources], [
            (s.source, s.error) for s in got.sources if s.error]
        assert got.elements == expected.elements and sum(got.elements.values()) > 0
        assert collection_state(other) == collection_state(local)
        assert set(got.to_dict()) == set(expected.to_dict())

    def test_a_bad_source_fails_alone_with_its_reason(self, run_ingest: Runner, base_settings: Settings,
                                                      docs: list[str]) -> None:
        report = run_ingest(docs, base_settings.model_copy(update={"collection": "with-broken"}))
        failed = [s for s in report.sources if s.status == "failed"]
        assert [Path(s.source).name for s in failed] == ["broken.pdf"]
        assert failed[0].error and "\n" not in failed[0].error
        assert all(s.status == "new" for s in report.sources if s not in failed)

    def test_a_rerun_is_unchanged_and_calls_no_model(self, run_ingest: Runner, base_settings: Settings,
                                                     docs: list[str]) -> None:
        settings = base_settings.model_copy(update={"collection": "rerun"})
        first = run_ingest(docs[:-1], settings)
        # (a shared model cache may already hold these inputs from another collection: cached calls count)
        assert first.ok and first.model_calls["new"] + first.model_calls["cached"] > 0
        again = run_ingest(docs[:-1], settings)
        assert [s.status for s in again.sources] == ["unchanged"] * len(docs[:-1])
        assert again.model_calls["new"] == 0
