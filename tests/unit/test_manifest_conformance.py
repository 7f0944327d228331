"""The sqlite manifest passes the manifest conformance suite (the PostgreSQL one: tests/integration)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mmrag.stores.manifest import ManifestStore, SqliteManifest
from mmrag.testing.manifest_conformance import ManifestConformance

_n = itertools.count()


class TestSqliteManifest(ManifestConformance):
    @pytest.fixture
    def make_manifest(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        def make() -> tuple[ManifestStore, tuple[str, ...]]:
            path = tmp_path / f"c{next(_n)}" / "manifest.sqlite"
            return SqliteManifest(path), ("sqlite", str(path))

        return make


def test_sqlite_manifest_is_a_manifest_store(tmp_path: Path) -> None:
    assert isinstance(SqliteManifest(tmp_path / "m.sqlite"), ManifestStore)
