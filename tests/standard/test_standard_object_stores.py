"""``BaseStoreSyncTests`` and ``BaseStoreAsyncTests`` for the object stores, which are LangChain
``BaseStore[str, bytes]``: the local folder store, and S3 through real boto3 against a moto server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.stores import BaseStore
from langchain_tests.integration_tests import BaseStoreAsyncTests, BaseStoreSyncTests

from mmrag.stores.objects import LocalObjectStore
from mmrag.stores.s3 import S3ObjectStore
from mmrag.testing.s3 import MotoS3Server

_buckets = itertools.count()
VALUES = (b"foo bytes", b"\x00\xffbar", b"buzz" * 1000)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


def _s3(moto: MotoS3Server) -> S3ObjectStore:
    client = moto.client()
    bucket = f"standard-{next(_buckets)}"  # moto keeps state per process: a bucket per test
    client.create_bucket(Bucket=bucket)
    return S3ObjectStore(bucket, "collection/", client=client)


class TestLocalSync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, tmp_path: Path) -> BaseStore[str, bytes]:
        return LocalObjectStore(tmp_path / "objects")

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return VALUES


class TestLocalAsync(BaseStoreAsyncTests[bytes]):
    # A plain fixture: making a store is synchronous (the tests themselves call amget, amset... on it).
    @pytest.fixture
    def kv_store(self, tmp_path: Path) -> BaseStore[str, bytes]:
        return LocalObjectStore(tmp_path / "objects")

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return VALUES


@pytest.mark.integration
class TestS3Sync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, moto: MotoS3Server) -> BaseStore[str, bytes]:
        return _s3(moto)

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return VALUES


@pytest.mark.integration
class TestS3Async(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, moto: MotoS3Server) -> BaseStore[str, bytes]:
        return _s3(moto)

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return VALUES
