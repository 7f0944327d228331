"""OpenSearchIndex against a real OpenSearch-compatible server: osmem-server on 127.0.0.1, and a live cluster when
MMRAG_OPENSEARCH_URL is set.

osmem implements mappings, bulk, mget, BM25 ``match``, bool/term(s)/exists filters, ``_count``, ``_refresh`` and
``delete_by_query``, but answers every ``knn`` query with 400 ``unsupported_operation_exception`` (checked below), so
its conformance run has vector search off; the k-NN request bodies are asserted in
tests/unit/test_opensearch_requests.py, and the live run covers real k-NN scores.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mmrag.elements import Element
from mmrag.errors import StoreError
from mmrag.stores.base import IndexRecord, VectorIndex
from mmrag.stores.opensearch import OpenSearchIndex, connect
from mmrag.testing.conformance import DIMS, VectorIndexConformance, make_record

opensearchpy = pytest.importorskip("opensearchpy")
osmem_server = pytest.importorskip("osmem_server")

pytestmark = pytest.mark.integration

# Read at import time: the autouse fixture in tests/conftest.py removes every MMRAG_* variable before each test.
LIVE_URL = os.environ.get("MMRAG_OPENSEARCH_URL")
LIVE_OPTIONS: dict[str, Any] = {
    "auth": os.environ.get("MMRAG_OPENSEARCH_AUTH", "basic"),
    "service": os.environ.get("MMRAG_OPENSEARCH_SERVICE", "es"),
    "user": os.environ.get("MMRAG_OPENSEARCH_USER"),
    "password": os.environ.get("MMRAG_OPENSEARCH_PASSWORD"),
    "verify_certs": os.environ.get("MMRAG_OPENSEARCH_VERIFY_CERTS", "true").lower() not in ("0", "false", "no"),
}

_names = itertools.count()


@pytest.fixture(scope="module")
def osmem() -> Iterator[Any]:
    """One osmem-server process for the module; closed (stdin, then kill) when the module is done."""
    server = osmem_server.OsmemServer.start(japanese=False)
    try:
        yield server
    finally:
        server.close()
    assert server.process.poll() is not None, "osmem-server did not stop"


@pytest.fixture
def osmem_url(osmem: Any) -> Iterator[str]:
    """A fresh, empty clone of the base cluster for one test, on its own 127.0.0.1 port."""
    clone = osmem.clone()
    assert clone.url.startswith("http://127.0.0.1:")
    try:
        yield clone.url
    finally:
        clone.close()


# Generous: on a loaded 2-core CI machine osmem shares the CPUs with everything else (a slow answer is not a failure).
TIMEOUT = 120


@pytest.fixture
def client(osmem_url: str) -> Any:
    return connect(osmem_url, auth="none", timeout=TIMEOUT)


class TestOpenSearchIndex(VectorIndexConformance):
    """The shared suite on osmem: everything but k-NN, which osmem refuses."""

    supports_vector_search = False

    @pytest.fixture
    def make_index(self, client: Any) -> Callable[[int], VectorIndex]:
        return lambda dims: OpenSearchIndex(client, f"mmrag-test-{next(_names)}", dims, batch_size=100)

    @pytest.fixture
    def reopen(self) -> Callable[[VectorIndex], VectorIndex]:
        def again(index: VectorIndex) -> VectorIndex:
            assert isinstance(index, OpenSearchIndex)
            return OpenSearchIndex(index.client, index.index_name, index.dimensions)

        return again


class TestOpenSearchIndexServerlessMode(TestOpenSearchIndex):
    """The same suite with the Serverless code path: server-assigned _ids, lookups by element_id, no _refresh.

    osmem makes writes searchable without a refresh, so the suite's persist-then-read steps hold here; on real
    Serverless they hold after the collection's own refresh (seconds), which is why the suite is not run there.
    """

    @pytest.fixture
    def make_index(self, client: Any) -> Callable[[int], VectorIndex]:
        return lambda dims: OpenSearchIndex(client, f"mmrag-aoss-{next(_names)}", dims, batch_size=100, serverless=True)

    @pytest.fixture
    def reopen(self) -> Callable[[VectorIndex], VectorIndex]:
        def again(index: VectorIndex) -> VectorIndex:
            assert isinstance(index, OpenSearchIndex)
            return OpenSearchIndex(index.client, index.index_name, index.dimensions, serverless=True)

        return again


# The live run reaches a host other than 127.0.0.1, so it enables sockets. A SigV4 (AWS) cluster also needs AWS
# credentials, which tests/conftest.py keeps only for `live` tests (run with MMRAG_LIVE=1); a cluster with basic or
# no auth (e.g. a local container) needs nothing but the URL.
_LIVE_MARKS = [pytest.mark.live] if LIVE_OPTIONS["auth"] == "sigv4" else []


@pytest.mark.enable_socket
@pytest.mark.skipif(LIVE_URL is None, reason="set MMRAG_OPENSEARCH_URL to run the suite with k-NN on a real cluster")
class TestOpenSearchIndexLive(VectorIndexConformance):
    """The full suite, k-NN included, on the cluster at MMRAG_OPENSEARCH_URL (indexes are deleted afterwards)."""

    pytestmark = _LIVE_MARKS

    @pytest.fixture
    def live_client(self) -> Any:
        assert LIVE_URL is not None
        return connect(LIVE_URL, **LIVE_OPTIONS)

    @pytest.fixture
    def make_index(self, live_client: Any) -> Iterator[Callable[[int], VectorIndex]]:
        made: list[str] = []

        def make(dims: int) -> VectorIndex:
            made.append(f"mmrag-conformance-{os.getpid()}-{next(_names)}")
            return OpenSearchIndex(live_client, made[-1], dims)

        yield make
        for name in made:
            live_client.indices.delete(index=name, ignore_unavailable=True)

    @pytest.fixture
    def reopen(self) -> Callable[[VectorIndex], VectorIndex]:
        def again(index: VectorIndex) -> VectorIndex:
            assert isinstance(index, OpenSearchIndex)
            return OpenSearchIndex(index.client, index.index_name, index.dimensions)

        return again


# --- what the conformance suite cannot see -------------------------------------------------------------------


def _unit(i: int) -> list[float]:
    return [1.0 if j == i % DIMS else 0.0 for j in range(DIMS)]


def test_the_index_is_created_with_the_documented_mapping(client: Any) -> None:
    index = OpenSearchIndex(client, "mapped", DIMS)
    assert index.count() == 0  # first use creates it
    props = client.indices.get_mapping(index="mapped")["mapped"]["mappings"]["properties"]
    assert props["vector"]["type"] == "knn_vector" and props["vector"]["dimension"] == DIMS
    assert props["vector"]["method"] == {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"}
    assert props["text"]["type"] == "text"
    assert {props[f]["type"] for f in ("source", "kind", "mime_type", "element_id")} == {"keyword"}
    assert props["page"]["type"] == "integer"
    assert props["payload"] == {"type": "object", "enabled": False}
    settings = client.indices.get_settings(index="mapped")["mapped"]["settings"]["index"]
    assert str(settings["knn"]).lower() == "true"


def test_an_existing_index_with_another_dimension_is_refused(client: Any) -> None:
    OpenSearchIndex(client, "dims", DIMS).count()
    with pytest.raises(StoreError, match=rf"holds {DIMS}-dimensional vectors but the embedding model gives 16"):
        OpenSearchIndex(client, "dims", 16).count()


def test_an_index_not_made_by_mmrag_is_refused(client: Any) -> None:
    client.indices.create(index="foreign", body={"mappings": {"properties": {"title": {"type": "text"}}}})
    with pytest.raises(StoreError, match="no knn_vector field 'vector'"):
        OpenSearchIndex(client, "foreign", DIMS).add([make_record("x", _unit(0))])


def test_vectors_are_stored_unit_length_and_documents_keyed_by_element_id(client: Any) -> None:
    index = OpenSearchIndex(client, "stored", DIMS)
    record = make_record("scaled", [3.0, 4.0] + [0.0] * (DIMS - 2))
    index.add([record])
    doc = client.get(index="stored", id=record.id)
    assert doc["_source"]["element_id"] == record.id
    assert doc["_source"]["vector"][:2] == pytest.approx([0.6, 0.8])
    assert doc["_source"]["text"] == "scaled" and doc["_source"]["payload"]["id"] == record.id


class _BulkRecorder:
    """The real client, with the body of every ``bulk`` call recorded on its way through."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.bodies: list[str] = []

    def bulk(self, body: str, **kwargs: Any) -> Any:
        self.bodies.append(body)
        return self._client.bulk(body=body, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_adds_are_split_into_bounded_bulk_requests(client: Any) -> None:
    recorder = _BulkRecorder(client)
    index = OpenSearchIndex(recorder, "batched", DIMS, batch_size=7)
    records = [make_record(f"chunk {i}", _unit(i)) for i in range(50)]
    # ~3.3 MB of JSON, in the stored payload (not analysed): megabytes in the BM25 ``text`` field cost osmem 10-25 s
    # of CPU on a loaded 2-core machine, past the client timeout; the abandoned request then kept running in the
    # server, and deleting its clone in the middle of it stalled the whole osmem process for the next test.
    big = make_record("x" * 3_300_000, _unit(1), indexed_text="one big record")
    index.add([*records, big, *records[:3]])  # repeated ids in one call upsert, never duplicate
    index.persist()
    assert index.count() == 51
    actions = [body.count("\n") // 2 for body in recorder.bodies]
    assert sum(actions) == 51 and max(actions) <= 7
    sizes = [len(body.encode()) for body in recorder.bodies]
    assert max(sizes) <= 5 * 1024 * 1024 and max(sizes) > 3_000_000  # the big record, sent without overflowing
    [got] = index.get([big.id])
    assert got.text == "x" * 3_300_000


@pytest.mark.parametrize("serverless", [False, True])
def test_a_rejected_document_raises_store_error_naming_its_id(client: Any, serverless: bool) -> None:
    index = OpenSearchIndex(client, "conflict", DIMS, serverless=serverless)  # Serverless: named by element id too
    good = make_record("fine", _unit(0), page=3)
    bad = IndexRecord(  # a page number beyond the mapping's 32-bit integer: the server rejects this one item
        element=Element(kind="text", source="a.pdf", text="bad page", page=2**40), vector=_unit(1), text="bad page"
    )
    with pytest.raises(StoreError) as raised:
        index.add([good, bad])
    message = str(raised.value)
    assert bad.id in message and good.id not in message
    assert "1 of 2 documents" in message and "mapper_parsing_exception" in message
    index.persist()
    assert [e.id for e in index.get([good.id, bad.id])] == [good.id]  # the good item of the batch was written


def test_osmem_refuses_knn_and_the_error_is_a_store_error(client: Any) -> None:
    """Why supports_vector_search is False here: osmem answers a k-NN query with HTTP 400."""
    index = OpenSearchIndex(client, "knn", DIMS)
    index.add([make_record("a", _unit(0))])
    index.persist()
    with pytest.raises(StoreError, match=r"k-NN search failed on index 'knn' at http://127\.0\.0\.1:\d+.*HTTP 400"):
        index.search(_unit(0), k=1)
    with pytest.raises(StoreError, match=str(DIMS)):
        index.search([1.0, 0.0], k=1)


def test_keyword_filters_cover_lists_with_none_and_empty_lists(client: Any) -> None:
    index = OpenSearchIndex(client, "filters", DIMS)
    index.add([
        make_record("alpha report pdf", _unit(0), source="a.pdf", page=1),
        make_record("alpha report html", _unit(1), source="b.html", page=None),
        make_record("alpha report page two", _unit(2), source="a.pdf", page=2),
    ])
    index.persist()
    pages = {h.element.page for h in index.keyword_search("alpha", k=5, filter={"page": [1, None]})}
    assert pages == {1, None}
    assert index.keyword_search("alpha", k=5, filter={"page": []}) == []
    assert [h.element.page for h in index.keyword_search("alpha", k=5, filter={"source": "a.pdf", "page": 2})] == [2]
    assert len(index.keyword_search("alpha", k=2)) == 2


def test_serverless_mode_lets_the_server_assign_document_ids(client: Any) -> None:
    index = OpenSearchIndex(client, "aoss", DIMS, serverless=True)
    record = make_record("one element", _unit(0))
    index.add([record])
    index.add([make_record("one element", _unit(3))])  # same element, new vector: replaces the first copy
    hits = client.search(index="aoss", body={"query": {"match_all": {}}})["hits"]["hits"]
    assert len(hits) == 1 and hits[0]["_id"] != record.id
    assert hits[0]["_source"]["element_id"] == record.id and hits[0]["_source"]["vector"] == _unit(3)
    assert index.delete([record.id, "absent"]) == 1


def test_a_cluster_that_does_not_answer_in_time_is_a_store_error_saying_so() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        index = OpenSearchIndex(connect(f"http://127.0.0.1:{port}", auth="none", timeout=0.5), "slow", DIMS)
        with pytest.raises(StoreError, match=r"no answer within 0\.5 s.*longer timeout") as raised:
            index.add([make_record("a", _unit(0))])
    assert "is the cluster up" not in str(raised.value)


def test_unreachable_cluster_is_a_store_error_with_a_hint() -> None:
    client = connect("http://127.0.0.1:9", auth="none", timeout=2)  # discard port: nothing listens
    index = OpenSearchIndex(client, "nowhere", DIMS)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:9.*is the cluster up and the URL right"):
        index.count()
