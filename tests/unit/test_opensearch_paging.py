"""OpenSearch Serverless lookups page with a unique tiebreaker (issue 24, item 9): copies of one element that
straddle a page boundary are all found (and so all deleted)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import mmrag.stores.opensearch as opensearch_module
from mmrag.stores.opensearch import OpenSearchIndex

pytest.importorskip("opensearchpy")


class _SortingClient:
    """Answers searches as OpenSearch does: sorted by the request's sort keys, ``search_after`` exclusive."""

    def __init__(self, docs: list[tuple[str, str]]) -> None:
        self.docs = docs  # (_id, element_id)
        self.sent: list[dict[str, Any]] = []
        mapping = {"idx": {"mappings": {"properties": {"vector": {"type": "knn_vector", "dimension": 2, "method": {
            "name": "hnsw", "engine": "faiss", "space_type": "innerproduct"}}}}}}
        self.indices = SimpleNamespace(exists=lambda index: True, get_mapping=lambda index: mapping)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        fields = [next(iter(s)) for s in body["sort"]]

        def key(doc: tuple[str, str]) -> tuple[str, ...]:
            return tuple(doc[0] if f == "_id" else doc[1] for f in fields)

        ranked = sorted(self.docs, key=key)
        if "search_after" in body:
            ranked = [d for d in ranked if key(d) > tuple(body["search_after"])]
        page = ranked[: body["size"]]
        return {"hits": {"hits": [{"_id": d[0], "_source": {"element_id": d[1]}, "sort": list(key(d))}
                                  for d in page]}}


def test_copies_at_a_page_boundary_are_all_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opensearch_module, "_PAGE", 2)
    docs = [("d1", "a"), ("d2", "b"), ("d3", "b"), ("d4", "b"), ("d5", "c")]  # three copies of b over two pages
    client = _SortingClient(docs)
    index = OpenSearchIndex(client, "idx", 2, serverless=True)
    found = index._find({"match_all": {}})
    assert sorted(found) == sorted(docs)
    assert all(body["sort"][-1] == {"_id": "asc"} for body in client.sent)
