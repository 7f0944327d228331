"""The PostgreSQL manifest: the conformance suite, one transaction with the vectors, errors that name the store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from mmrag.errors import NotFoundError, StoreError
from mmrag.stores._pg_session import PgSession
from mmrag.stores.manifest import ManifestStore
from mmrag.stores.pg_manifest import PgManifest, manifest_table, pg_collection_names
from mmrag.stores.pgvector import PgVectorIndex
from mmrag.testing.conformance import make_record
from mmrag.testing.manifest_conformance import ManifestConformance
from mmrag.testing.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration

_n = itertools.count()


@pytest.fixture
def sessions(postgres: EmbeddedPostgres) -> Iterator[list[PgSession]]:
    made: list[PgSession] = []
    yield made
    for session in made:
        session.drop()


class TestPgManifest(ManifestConformance):
    @pytest.fixture
    def make_manifest(self, postgres: EmbeddedPostgres, sessions: list[PgSession]):  # type: ignore[no-untyped-def]
        def make() -> tuple[ManifestStore, tuple[str, ...]]:
            name = f"conf-{next(_n)}"
            session = PgSession(postgres.dsn)
            sessions.append(session)
            return PgManifest(session, name, create=True), ("postgres", postgres.dsn, name)

        return make


def test_vectors_and_commit_are_one_transaction(postgres: EmbeddedPostgres, sessions: list[PgSession]) -> None:
    session = PgSession(postgres.dsn)
    sessions.append(session)
    manifest = PgManifest(session, "atomic", create=True)
    index = PgVectorIndex(postgres.dsn, "mmrag_atomic_text", 8, owner="atomic", session=session)
    index.warm_up()
    record = make_record("hello", [1.0] + [0.0] * 7, source="a.pdf")
    manifest.claim("a.pdf", [record.element.id])
    with pytest.raises(RuntimeError), manifest.atomic():
        index.add([record])
        index.persist()  # inside the block: does not commit
        manifest.commit("a.pdf", "fp", [(record.element.id, "text", None)])
        raise RuntimeError("killed between the index write and the end of the block")
    with psycopg.connect(postgres.dsn) as conn:  # another machine: nothing of the block
        assert conn.execute("SELECT count(*) FROM mmrag_atomic_text").fetchone() == (0,)
    other = PgManifest(PgSession(postgres.dsn), "atomic")
    assert other.get("a.pdf") is None and other.pending_ids("a.pdf") == {record.element.id}
    with manifest.atomic():
        index.add([record])
        index.persist()
        manifest.commit("a.pdf", "fp", [(record.element.id, "text", None)])
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM mmrag_atomic_text").fetchone() == (1,)
    assert other.element_ids("a.pdf") == {record.element.id}
    other.close()


def test_discovery_creates_nothing(postgres: EmbeddedPostgres, sessions: list[PgSession]) -> None:
    session = PgSession(postgres.dsn)
    sessions.append(session)
    before = pg_collection_names(session)
    with pytest.raises(NotFoundError):
        PgManifest(session, "never-made").meta()
    assert pg_collection_names(session) == before
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SELECT to_regclass(%s)", [manifest_table("never-made", "meta")]).fetchone() == (None,)
    PgManifest(session, "team-a", create=True).meta()
    PgManifest(session, "team_a", create=True).meta()  # names that differ only in - and _ stay apart
    assert {"team-a", "team_a"} <= set(pg_collection_names(session))


def test_newer_schema_and_missing_tables_are_refused(postgres: EmbeddedPostgres, sessions: list[PgSession]) -> None:
    session = PgSession(postgres.dsn)
    sessions.append(session)
    PgManifest(session, "future", create=True).meta()
    PgManifest(session, "broken", create=True).meta()
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {manifest_table('future', 'meta')} SET value = '99' WHERE key = 'schema_version'")
        conn.execute(f"DROP TABLE {manifest_table('broken', 'places')}")
    with pytest.raises(StoreError, match=r"newer mmrag \(manifest schema 99; this mmrag reads 1\): upgrade mmrag"):
        PgManifest(PgSession(postgres.dsn), "future").meta()
    with pytest.raises(StoreError, match=r"incomplete \(missing tables: mmrag_broken_mf_places\)"):
        PgManifest(PgSession(postgres.dsn), "broken").meta()


def test_unreachable_database_names_the_store_not_the_password() -> None:
    session = PgSession("postgresql://app:s3cret-pw@127.0.0.1:1/db", connect_timeout=2)
    with pytest.raises(StoreError) as caught:
        PgManifest(session, "x").meta()
    assert "127.0.0.1:1/db" in str(caught.value) and "s3cret-pw" not in str(caught.value)


def test_permission_denied_is_one_line_with_the_fix(postgres: EmbeddedPostgres, sessions: list[PgSession]) -> None:
    admin = PgSession(postgres.dsn)
    sessions.append(admin)
    PgManifest(admin, "locked", create=True).meta()
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS reader")
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'pw-reader'")
    dsn = postgres.dsn.replace(postgres.dsn.split("//", 1)[1].split("@", 1)[0], "reader:pw-reader")
    with pytest.raises(StoreError) as caught:
        PgManifest(PgSession(dsn), "locked").meta()
    text = str(caught.value)
    assert "\n" not in text and "grant this database user" in text and "pw-reader" not in text
