"""Collections never share a pgvector table: ``team-a`` and ``team_a`` used to both be ``mmrag_team_a_text``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.errors import StoreError
from mmrag.stores.base import IndexRecord
from mmrag.stores.collection import SpaceInfo, open_collection
from mmrag.stores.pgvector import PgVectorIndex
from mmrag.testing.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration

DIMS = 8


@pytest.fixture(scope="module")
def pg() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as server:
        yield server


def _settings(pg: EmbeddedPostgres, home: Path, name: str) -> Settings:
    return Settings(home=home, collection=name, vector_store="pgvector", pg_dsn=pg.dsn)  # type: ignore[arg-type]


def test_team_a_and_team_underscore_a_do_not_see_each_other(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    spaces = {"text": SpaceInfo("m", DIMS), "image": SpaceInfo("i", DIMS)}
    dash = open_collection(_settings(pg, tmp_path, "team-a"), **spaces)
    under = open_collection(_settings(pg, tmp_path, "team_a"), **spaces)
    secret = Element(kind="text", source="a-secrets.pdf", text="the merger closes on Friday")
    vector = [1.0] + [0.0] * (DIMS - 1)
    dash.text.add([IndexRecord(secret, vector, secret.text)])
    dash.text.persist()
    assert [h.element.source for h in dash.text.search(vector, k=5)] == ["a-secrets.pdf"]
    assert under.text.search(vector, k=5) == []
    assert under.text.keyword_search("merger", k=5) == []
    assert dash.text.table != under.text.table  # type: ignore[attr-defined]
    for c in (dash, under):
        c.text.close()  # type: ignore[attr-defined]
        c.image.close()  # type: ignore[attr-defined]


def test_a_table_owned_by_another_collection_is_refused(pg: EmbeddedPostgres) -> None:
    first = PgVectorIndex(pg.dsn, "shared_text", DIMS, owner="alpha")
    first.warm_up()
    first.close()
    with pytest.raises(StoreError, match="belongs to collection 'alpha', not 'beta'"):
        PgVectorIndex(pg.dsn, "shared_text", DIMS, owner="beta").warm_up()
    again = PgVectorIndex(pg.dsn, "shared_text", DIMS, owner="alpha")
    assert again.count() == 0
    again.close()
