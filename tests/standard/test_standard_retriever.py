"""``RetrieversIntegrationTests`` for :class:`~mmrag.retrievers.multimodal.MultimodalRetriever` over a real
collection (FAISS, hashing embeddings), plus the invoke-time options the suite does not cover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import ValidationError

from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.providers.local.local_text import HashingEmbeddings
from mmrag.retrievers.multimodal import MultimodalRetriever
from mmrag.stores.base import IndexRecord
from mmrag.stores.collection import Collection, SpaceInfo, open_collection

TEXTS = [
    ("a.txt", "Apples grow on apple trees in orchards."),
    ("a.txt", "An apple a day keeps the doctor away."),
    ("b.txt", "Pears and apples are both pome fruits."),
    ("b.txt", "Orchards need bees to pollinate apple blossoms."),
    ("c.txt", "The tables of the report list apple harvests by year."),
]


def _collection(home: Path) -> Collection:
    embeddings = HashingEmbeddings(64)
    collection = open_collection(Settings(home=home), text=SpaceInfo(embeddings.model_id, 64),
                                 image=SpaceInfo("none", 8))
    elements = [Element("text", source, text) for source, text in TEXTS]
    by_source: dict[str, list[Element]] = {}
    for e in elements:
        by_source.setdefault(e.source, []).append(e)
    for source, group in by_source.items():
        collection.manifest.claim(source, [e.id for e in group])
    vectors = embeddings.embed_documents([e.text for e in elements])
    collection.text.add([IndexRecord(e, v, e.text) for e, v in zip(elements, vectors, strict=True)])
    collection.text.persist()
    for source, group in by_source.items():
        collection.manifest.commit(source, source, [(e.id, e.kind, None) for e in group])
    return collection


class TestMultimodalRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _collection(self, tmp_path: Path) -> None:
        self._params = {"collection": _collection(tmp_path / "home"), "text_embeddings": HashingEmbeddings(64)}

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return MultimodalRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self._params

    @property
    def retriever_query_example(self) -> str:
        return "apple orchards"


@pytest.fixture
def retriever(tmp_path: Path) -> MultimodalRetriever:
    return MultimodalRetriever(collection=_collection(tmp_path / "home"), text_embeddings=HashingEmbeddings(64), k=4)


def test_filter_at_invoke_time_narrows_this_call_only(retriever: MultimodalRetriever) -> None:
    narrowed = retriever.invoke("apple orchards", filter={"source": "b.txt"})
    assert narrowed and {d.metadata["source"] for d in narrowed} == {"b.txt"}
    assert {d.metadata["source"] for d in retriever.invoke("apple orchards")} > {"b.txt"}
    assert retriever.k == 4 and retriever.filter is None


def test_score_threshold_at_invoke_time_drops_weak_dense_hits(retriever: MultimodalRetriever) -> None:
    docs = retriever.invoke("apple orchards", score_threshold=0.99, use_bm25=False)
    assert docs == []


def test_an_unknown_option_is_a_type_error_naming_the_accepted_ones(retriever: MultimodalRetriever) -> None:
    with pytest.raises(TypeError, match="top_k.*accepts k, filter"):
        retriever.invoke("apple", top_k=1)


def test_a_bad_k_is_rejected_as_the_constructor_rejects_it(retriever: MultimodalRetriever) -> None:
    with pytest.raises(ValidationError):
        retriever.invoke("apple", k=0)
