"""``VectorStoreIntegrationTests`` for :class:`~mmrag.chains.vectorstore.MmragVectorStore` on FAISS (the embedded
default) and on pgvector (embedded PostgreSQL), each test on a collection of its own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from mmrag.chains.vectorstore import MmragVectorStore
from mmrag.config import Settings
from mmrag.testing.postgres import EmbeddedPostgres

_names = itertools.count()


class TestFaiss(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        store = MmragVectorStore("standard", self.get_embeddings(), settings=Settings(home=tmp_path / "home"))
        yield store
        store.close()


@pytest.mark.integration
class TestPgVector(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path, postgres: EmbeddedPostgres) -> Iterator[VectorStore]:
        # One PostgreSQL for the module: a fresh collection name per test is a fresh pair of tables.
        settings = Settings(home=tmp_path / "home", vector_store="pgvector", pg_dsn=postgres.dsn)  # type: ignore[arg-type]
        store = MmragVectorStore(f"standard-{next(_names)}", self.get_embeddings(), settings=settings)
        yield store
        store.close()
