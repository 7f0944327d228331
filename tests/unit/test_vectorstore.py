"""MmragVectorStore beyond the standard suite: filters, MMR, the one-line swap (from_texts, as_retriever), the
embedding check, writes through the manifest (idempotent, seen by ``mmrag search``) and LangChain's index()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.indexing import InMemoryRecordManager, index

from mmrag import MmragVectorStore
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.errors import ConfigError
from mmrag.providers.local.local_text import HashingEmbeddings

FRUIT = ["apples are red fruit", "bananas are yellow fruit", "cherries are small red fruit",
         "kiwis are green fruit", "lemons are sour yellow fruit"]


class Counting(Embeddings):
    """Hashing embeddings that count the texts they embed (to prove what is not embedded again)."""

    def __init__(self) -> None:
        self.inner = HashingEmbeddings(64)
        self.model_id = self.inner.model_id
        self.dimensions = 64
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", ocr="off")


@pytest.fixture
def store(settings: Settings) -> MmragVectorStore:
    store = MmragVectorStore.from_texts(
        FRUIT, HashingEmbeddings(64), metadatas=[{"colour": c, "n": i} for i, c in
                                                 enumerate(["red", "yellow", "red", "green", "yellow"])],
        ids=[f"f{i}" for i in range(5)], collection="fruit", settings=settings)
    yield store
    store.close()


def test_dict_filter_on_any_metadata_key_and_list_values(store: MmragVectorStore) -> None:
    red = store.similarity_search("fruit", k=5, filter={"colour": "red"})
    assert sorted(d.id for d in red) == ["f0", "f2"]
    some = store.similarity_search("fruit", k=5, filter={"colour": ["green", "yellow"], "n": [3, 4]})
    assert sorted(d.id for d in some) == ["f3", "f4"]
    assert store.similarity_search("fruit", k=5, filter=lambda d: d.metadata["n"] == 1)[0].id == "f1"


def test_a_filter_finds_matches_beyond_the_first_page_of_hits(settings: Settings) -> None:
    texts = [f"alpha document number {i}" for i in range(60)] + ["zeta omega"]
    store = MmragVectorStore.from_texts(texts, HashingEmbeddings(64), [{"tag": "a"}] * 60 + [{"tag": "z"}],
                                        collection="many", settings=settings)
    [found] = store.similarity_search("alpha document number 1", k=1, filter={"tag": "z"})
    assert found.page_content == "zeta omega"
    store.close()


def test_source_filter_goes_to_the_index_and_source_page_become_the_elements(settings: Settings) -> None:
    store = MmragVectorStore("docs", HashingEmbeddings(64), settings=settings)
    store.add_documents([Document("pears in the report", metadata={"source": "/r/report.pdf", "page": 2}),
                         Document("pears in the notes", metadata={"source": "/r/notes.txt"})])
    [doc] = store.similarity_search("pears", k=4, filter={"source": "/r/report.pdf"})
    assert doc.metadata == {"source": "/r/report.pdf", "page": 2}
    collection = store.collection
    assert collection is not None
    [hit] = collection.text.search(HashingEmbeddings(64).embed_query("pears"), k=1, filter={"source": "/r/report.pdf"})
    assert (hit.element.source, hit.element.page) == ("/r/report.pdf", 3)  # LangChain pages count from 0
    store.close()


def test_scores_are_cosine_similarities_and_relevance_scores_agree(store: MmragVectorStore) -> None:
    (doc, score), *_ = store.similarity_search_with_score(FRUIT[3], k=2)
    assert doc.id == "f3" and score == pytest.approx(1.0, abs=1e-5)
    [(_, relevance)] = store.similarity_search_with_relevance_scores(FRUIT[3], k=1)
    assert relevance == pytest.approx(score)


def test_mmr_prefers_a_diverse_second_result(settings: Settings) -> None:
    texts = ["red apple pie recipe", "red apple pie recipe!", "green kiwi smoothie"]
    store = MmragVectorStore.from_texts(texts, HashingEmbeddings(64), collection="mmr", settings=settings)
    plain = [d.page_content for d in store.similarity_search("red apple pie", k=2)]
    diverse = [d.page_content for d in store.max_marginal_relevance_search("red apple pie", k=2, fetch_k=3,
                                                                           lambda_mult=0.3)]
    assert set(plain) == set(texts[:2])
    assert diverse[0] in texts[:2] and diverse[1] == "green kiwi smoothie"
    store.close()


def test_as_retriever_honours_search_kwargs(store: MmragVectorStore) -> None:
    assert len(store.as_retriever(search_kwargs={"k": 1}).invoke("red fruit")) == 1
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "filter": {"colour": "yellow"}})
    assert sorted(d.id for d in mmr.invoke("fruit")) == ["f1", "f4"]


def test_reads_on_a_missing_collection_create_nothing(settings: Settings) -> None:
    store = MmragVectorStore("nothing-yet", HashingEmbeddings(64), settings=settings)
    assert store.similarity_search("x") == [] and store.get_by_ids(["a"]) == []
    assert store.max_marginal_relevance_search("x") == [] and store.delete(["a"])
    assert not (Path(settings.home) / "nothing-yet").exists()


def test_another_embedding_for_an_existing_collection_is_a_clear_error(store: MmragVectorStore,
                                                                       settings: Settings) -> None:
    other = MmragVectorStore("fruit", DeterministicFakeEmbedding(size=64), settings=settings)
    with pytest.raises(ConfigError, match="built with text model 'local:hashing-64'.*not 'DeterministicFakeEmbedding'"):
        other.similarity_search("apples")


def test_unchanged_documents_are_not_embedded_again(settings: Settings) -> None:
    counting = Counting()
    store = MmragVectorStore("idem", counting, settings=settings)
    docs = [Document("one fish", id="1"), Document("two fish", id="2", metadata={"k": 1})]
    store.add_documents(docs)
    store.add_documents(docs)
    assert counting.texts == ["one fish", "two fish"]
    store.add_documents([Document("two fish", id="2", metadata={"k": 2})])  # metadata changed: written again
    assert counting.texts[-1] == "two fish" and len(counting.texts) == 3
    assert store.get_by_ids(["2"])[0].metadata == {"k": 2}
    store.close()


def test_writes_are_committed_sources_of_the_manifest(store: MmragVectorStore) -> None:
    collection = store.collection
    assert collection is not None
    sources = {e.source for e in collection.manifest.sources()}
    assert sources == {f"langchain:f{i}" for i in range(5)}
    assert collection.manifest.uncommitted_count() == 0
    store.delete(["f0", "f1"])
    assert {e.source for e in collection.manifest.sources()} == {"langchain:f2", "langchain:f3", "langchain:f4"}
    assert collection.text.count() == 3
    store.delete()
    assert collection.manifest.sources() == [] and collection.text.count() == 0


def test_documents_added_with_the_default_model_are_found_by_mmrag_search(settings: Settings,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(settings.home))
    monkeypatch.setenv("MMRAG_OCR", "off")
    store = MmragVectorStore("shared")  # the settings' own text model, as `mmrag ingest` uses
    store.add_documents([Document("The quarterly harvest of quinces rose sharply.",
                                  metadata={"source": "harvest.txt", "page": 0}, id="q1"),
                         Document("Unrelated notes about bicycles.", id="b1")])
    store.close()
    result = CliRunner().invoke(cli, ["search", "quinces harvest", "-c", "shared", "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.output.splitlines()[0])
    assert first["source"] == "harvest.txt" and first["page"] == 1
    # and the store reads back what mmrag ingest-style readers see
    again = MmragVectorStore("shared")
    assert again.get_by_ids(["q1"])[0].metadata == {"source": "harvest.txt", "page": 0}
    again.close()


def test_index_with_a_record_manager_incremental_and_full_cleanup(settings: Settings) -> None:
    store = MmragVectorStore("synced", HashingEmbeddings(64), settings=settings)
    manager = InMemoryRecordManager("mmrag/synced")
    manager.create_schema()
    a = [Document("alpha one", metadata={"source": "a.txt"}), Document("alpha two", metadata={"source": "a.txt"})]
    b = [Document("beta one", metadata={"source": "b.txt"})]
    first = index(a + b, manager, store, cleanup="incremental", source_id_key="source",
                  key_encoder="sha256")
    assert (first["num_added"], first["num_skipped"], first["num_deleted"]) == (3, 0, 0)
    again = index(a + b, manager, store, cleanup="incremental", source_id_key="source",
                  key_encoder="sha256")
    assert (again["num_added"], again["num_skipped"], again["num_deleted"]) == (0, 3, 0)
    changed = [Document("alpha one, revised", metadata={"source": "a.txt"})]
    step = index(changed, manager, store, cleanup="incremental", source_id_key="source",
                  key_encoder="sha256")
    assert (step["num_added"], step["num_deleted"]) == (1, 2)
    assert {d.page_content for d in store.similarity_search("alpha beta", k=10)} == {"alpha one, revised",
                                                                                    "beta one"}
    # b.txt is gone from the folder: full cleanup removes what this run did not see.
    full = index(changed, manager, store, cleanup="full", source_id_key="source", key_encoder="sha256")
    assert (full["num_skipped"], full["num_deleted"]) == (1, 1)
    assert [d.page_content for d in store.similarity_search("alpha beta", k=10)] == ["alpha one, revised"]
    collection = store.collection
    assert collection is not None and len(collection.manifest.sources()) == 1
    store.close()


def test_a_store_over_an_open_collection_checks_the_embedding_too(store: MmragVectorStore) -> None:
    collection = store.collection
    assert collection is not None
    shared = MmragVectorStore(collection, HashingEmbeddings(64))
    assert shared.get_by_ids(["f1"])[0].page_content == FRUIT[1]
    shared.close()  # leaves the caller's collection open
    assert store.get_by_ids(["f2"])[0].page_content == FRUIT[2]
    with pytest.raises(ConfigError, match="built with text model"):
        MmragVectorStore(collection, HashingEmbeddings(32)).similarity_search("apples")


def test_mmrag_remove_takes_a_document_by_its_source_name(store: MmragVectorStore, settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(settings.home))
    store.close()
    result = CliRunner().invoke(cli, ["remove", "-c", "fruit", "langchain:f3"])
    assert result.exit_code == 0, result.output
    assert [d.id for d in store.get_by_ids(["f2", "f3"])] == ["f2"]
