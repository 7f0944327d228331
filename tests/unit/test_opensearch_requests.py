"""The exact OpenSearch request bodies OpenSearchIndex sends, checked against the documented query DSL.

osmem (the integration server) refuses k-NN queries, so the k-NN bodies are pinned here, literally, in the shapes the
OpenSearch documentation gives:

* index + knn_vector mapping: "Methods and engines" (faiss ``hnsw`` supports ``l2``, ``innerproduct``, ``hamming``,
  and ``cosinesimil`` only from 2.19) and "k-NN vector";
* k-NN with a filter inside the ``knn`` clause: "Efficient k-NN filtering" (``query.knn.<field>.{vector, k, filter}``);
* score: "Spaces" (faiss ``innerproduct``: d = -x.y; score = 1/(1+d) if d >= 0, else -d + 1).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmrag.errors import ConfigError, MissingDependencyError, StoreError
from mmrag.stores._opensearch_client import connect, looks_serverless
from mmrag.stores._opensearch_dsl import (
    bulk_batches,
    filter_clause,
    index_body,
    keyword_body,
    knn_body,
    normalise,
    record_document,
    score_to_cosine,
)
from mmrag.stores.opensearch import OpenSearchIndex
from mmrag.testing.conformance import make_record

opensearchpy = pytest.importorskip("opensearchpy")

EXCLUDE_VECTOR = {"excludes": ["vector"]}


def test_index_body_is_a_faiss_hnsw_innerproduct_knn_index() -> None:
    assert index_body(384) == {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "properties": {
                "vector": {
                    "type": "knn_vector",
                    "dimension": 384,
                    "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"},
                },
                "text": {"type": "text", "analyzer": "standard"},
                "element_id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "kind": {"type": "keyword"},
                "mime_type": {"type": "keyword"},
                "page": {"type": "integer"},
                "payload": {"type": "object", "enabled": False},
            }
        },
    }


def test_knn_body_without_filter() -> None:
    assert knn_body([3.0, 4.0], 5) == {
        "size": 5,
        "_source": EXCLUDE_VECTOR,
        "query": {"knn": {"vector": {"vector": [0.6, 0.8], "k": 5}}},
    }


def test_knn_body_with_a_filter_puts_it_inside_the_knn_clause() -> None:
    body = knn_body([0.0, 2.0], 3, {"source": "a.pdf", "kind": "table"})
    assert body == {
        "size": 3,
        "_source": EXCLUDE_VECTOR,
        "query": {
            "knn": {
                "vector": {
                    "vector": [0.0, 1.0],
                    "k": 3,
                    "filter": {"bool": {"filter": [{"term": {"source": "a.pdf"}}, {"term": {"kind": "table"}}]}},
                }
            }
        },
    }


def test_knn_body_with_a_list_filter_uses_terms() -> None:
    body = knn_body([1.0, 0.0], 4, {"kind": ["table", "image"]})
    assert body["query"]["knn"]["vector"]["filter"] == {"bool": {"filter": [{"terms": {"kind": ["table", "image"]}}]}}


def test_knn_body_with_none_matches_a_missing_field() -> None:
    body = knn_body([1.0, 0.0], 4, {"page": None})
    assert body["query"]["knn"]["vector"]["filter"] == {
        "bool": {"filter": [{"bool": {"must_not": [{"exists": {"field": "page"}}]}}]}
    }


def test_a_list_with_none_is_either_a_term_or_a_missing_field() -> None:
    assert filter_clause({"page": [2, None]}) == [
        {"bool": {"should": [{"term": {"page": 2}}, {"bool": {"must_not": [{"exists": {"field": "page"}}]}}],
                  "minimum_should_match": 1}}
    ]


def test_filter_edge_cases() -> None:
    assert filter_clause(None) == [] and filter_clause({}) == []
    assert filter_clause({"kind": []}) == [{"bool": {"must_not": [{"match_all": {}}]}}]  # nothing matches
    assert filter_clause({"kind": ("text", "text")}) == [{"term": {"kind": "text"}}]
    # Clauses come in FILTER_FIELDS order, whatever the order of the dict: request bodies are stable.
    assert filter_clause({"page": 1, "source": "s"}) == [{"term": {"source": "s"}}, {"term": {"page": 1}}]
    with pytest.raises(StoreError, match="cannot filter on 'colour'"):
        knn_body([1.0], 1, {"colour": "red"})


def test_keyword_body_is_a_match_query_with_the_text_as_a_value() -> None:
    text = 'revenue AND (europe "q3" -x* title:y'
    assert keyword_body(text, 7, {"source": ["a.pdf", "b.pdf"]}) == {
        "size": 7,
        "_source": EXCLUDE_VECTOR,
        "query": {
            "bool": {
                "must": [{"match": {"text": {"query": text, "operator": "or"}}}],
                "filter": [{"terms": {"source": ["a.pdf", "b.pdf"]}}],
            }
        },
    }
    assert "filter" not in keyword_body("x", 1)["query"]["bool"]
    assert "query_string" not in json.dumps(keyword_body(text, 1))


@pytest.mark.parametrize(
    ("score", "cosine"),
    [
        (2.0, 1.0),  # ip = 1:    d = -1 < 0, score = -d + 1 = 2
        (1.5, 0.5),  # ip = 0.5:  score = 1.5
        (1.0, 0.0),  # ip = 0:    d = 0, score = 1 / (1 + 0) = 1
        (0.8, -0.25),  # ip = -0.25: d = 0.25, score = 1 / 1.25 = 0.8
        (2 / 3, -0.5),  # ip = -0.5: score = 1 / 1.5
        (0.5, -1.0),  # ip = -1:   score = 1 / 2
    ],
)
def test_innerproduct_score_to_cosine(score: float, cosine: float) -> None:
    assert score_to_cosine(score) == pytest.approx(cosine, abs=1e-12)
    assert score_to_cosine(score, "innerproduct") == pytest.approx(cosine, abs=1e-12)


def test_score_round_trips_the_documented_formula() -> None:
    for i in range(-100, 101):
        ip = i / 100
        d = -ip
        score = 1 / (1 + d) if d >= 0 else -d + 1
        assert math.isclose(score_to_cosine(score), ip, abs_tol=1e-12)
    assert score_to_cosine(3 / math.sqrt(10) + 1) == pytest.approx(3 / math.sqrt(10))  # the conformance query


def test_cosinesimil_score_and_clamping() -> None:
    assert score_to_cosine(1.0, "cosinesimil") == 1.0  # d = 0: score = (2 - 0) / 2
    assert score_to_cosine(0.5, "cosinesimil") == 0.0  # d = 1
    assert score_to_cosine(0.0, "cosinesimil") == -1.0  # d = 2
    assert score_to_cosine(2.0000001) == 1.0  # float noise stays in [-1, 1]
    with pytest.raises(ValueError, match="l2"):
        score_to_cosine(0.5, "l2")


def test_vectors_are_normalised() -> None:
    assert normalise([3, 4]) == [0.6, 0.8]
    assert normalise([0.0, 0.0]) == [0.0, 0.0]
    doc = record_document(make_record("t", [0.0, 2.0, 0.0], page=None, indexed_text="indexed"))
    assert doc["vector"] == [0.0, 1.0, 0.0] and doc["text"] == "indexed" and doc["page"] is None
    assert doc["element_id"] == doc["payload"]["id"] and doc["kind"] == "text" and doc["source"] == "doc.pdf"


def test_bulk_batches_respect_count_and_bytes() -> None:
    actions = [({"index": {"_id": str(i)}}, {"text": "x" * 100}) for i in range(10)]
    batches = list(bulk_batches(actions, max_actions=4))
    assert [count for _, count in batches] == [4, 4, 2]
    bodies = [body for body, _ in batches]
    assert [body.count("\n") for body in bodies] == [8, 8, 4]  # two lines per action
    assert all(body.endswith("\n") for body in bodies)  # _bulk needs the final newline
    assert [json.loads(line) for line in bodies[0].splitlines()[:2]] == [{"index": {"_id": "0"}}, {"text": "x" * 100}]
    by_bytes = [body for body, _ in bulk_batches(actions, max_actions=100, max_bytes=400)]
    assert all(len(b.encode()) <= 400 for b in by_bytes) and sum(b.count("\n") for b in by_bytes) == 20
    huge = list(bulk_batches([({"index": {}}, {"t": "y" * 1000})], max_actions=5, max_bytes=100))
    assert len(huge) == 1  # one action bigger than the limit still goes, alone
    deletes = list(bulk_batches([({"delete": {"_id": "a"}}, None)], max_actions=5))
    assert deletes == [('{"delete":{"_id":"a"}}\n', 1)]
    assert "é" in next(bulk_batches([({"index": {}}, {"t": "é"})], max_actions=1))[0]  # UTF-8, counted in bytes


def test_serverless_is_recognised_from_the_host() -> None:
    assert looks_serverless(connect("https://abc123.eu-west-1.aoss.amazonaws.com", auth="none"))
    assert not looks_serverless(connect("https://search-x.eu-west-1.es.amazonaws.com", auth="none"))


def test_connect_checks_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No credentials anywhere: tests/conftest.py removed the AWS variables; hide files and instance metadata too.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="Serverless.*SigV4"):
        connect("https://x.aoss.amazonaws.com", service="aoss", auth="basic")
    with pytest.raises(ConfigError, match="no user"):
        connect("https://x", password="secret")
    with pytest.raises(ConfigError, match="No AWS credentials"):
        connect("https://x", auth="sigv4", region="eu-west-1")


def test_a_missing_opensearch_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opensearchpy", None)  # what `import opensearchpy` meets when not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[opensearch\]'"):
        connect("http://localhost:9200")


class _StubClient:
    """Answers like OpenSearch does for an existing index, and records what it was sent (no server needed)."""

    def __init__(self, space_type: str, dims: int, hits: list[dict[str, Any]]) -> None:
        self.sent: list[dict[str, Any]] = []
        self._mapping = {"idx": {"mappings": {"properties": {"vector": {
            "type": "knn_vector", "dimension": dims,
            "method": {"name": "hnsw", "engine": "faiss", "space_type": space_type}}}}}}
        self._hits = hits
        self.indices = SimpleNamespace(exists=lambda index: True, get_mapping=lambda index: self._mapping)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        return {"hits": {"total": {"value": len(self._hits), "relation": "eq"}, "hits": self._hits}}


def _hit(record: Any, score: float) -> dict[str, Any]:
    doc = record_document(record)
    del doc["vector"]  # excluded from _source by the request
    return {"_index": "idx", "_id": record.id, "_score": score, "_source": doc}


@pytest.mark.parametrize(("space_type", "scores"), [("innerproduct", [1.9, 0.8]), ("cosinesimil", [0.95, 0.375])])
def test_search_sends_the_knn_body_and_returns_cosine(space_type: str, scores: list[float]) -> None:
    a, b = make_record("a", [1.0, 0.0]), make_record("b", [0.0, 1.0], kind="image")
    client = _StubClient(space_type, 2, [_hit(a, scores[0]), _hit(b, scores[1])])
    index = OpenSearchIndex(client, "idx", 2)
    hits = index.search([2.0, 0.0], k=2, filter={"kind": ["text", "image"]})
    assert client.sent == [knn_body([2.0, 0.0], 2, {"kind": ["text", "image"]})]
    assert [(h.id, h.text) for h in hits] == [(a.id, "a"), (b.id, "b")]
    assert [h.score for h in hits] == pytest.approx([0.9, -0.25])
    assert hits[1].element == b.element


def test_an_existing_l2_index_is_refused() -> None:
    index = OpenSearchIndex(_StubClient("l2", 2, []), "idx", 2)
    with pytest.raises(StoreError, match="space_type 'l2'"):
        index.search([1.0, 0.0], k=1)


def test_sigv4_signs_with_the_session_credentials_and_marks_serverless(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = connect("https://collection-id.example.com", auth="sigv4", service="aoss")  # a custom domain name
    [conn] = client.transport.connection_pool.connections
    assert isinstance(conn, opensearchpy.RequestsHttpConnection)
    signer = conn.session.auth
    assert isinstance(signer, opensearchpy.AWSV4SignerAuth)
    assert (signer.service, signer.signer.region) == ("aoss", "eu-west-1")
    assert looks_serverless(client)  # from the signer: the host does not say so
    assert OpenSearchIndex(client, "idx", 4).refresh is False  # Serverless has no _refresh API
    es = connect("https://search-x.example.com", auth="sigv4", region="us-east-1")
    assert not looks_serverless(es) and OpenSearchIndex(es, "idx", 4).refresh is True
