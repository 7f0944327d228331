"""The query chain as named LCEL stages: the run tree a callback handler sees, astream_events, swapping each stage,
and a plain LangChain retriever as the retrieve stage. Offline: an in-test keyword retriever and, for generated
answers, LangChain's fake chat model (a fake of the model's output only)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from mmrag.answers import Answer, Hit
from mmrag.chains import (
    build_query_chain,
    decompose_stage,
    fuse_stage,
    relative_fusion,
    retrieve_stage,
    synthesize_stage,
    weighted_fusion,
)
from mmrag.chains.stages import QA_PAIRS_OFFLINE_NOTE

DOCS = [
    Document("The Mazda RX4 has 110 hp and weighs 2.620 thousand lb.", id="mazda",
             metadata={"source": "cars.pdf", "page": 1, "kind": "table"}),
    Document("Call polar (theta, rho) to draw a polar plot in Octave.", id="polar",
             metadata={"source": "plots.html"}),
    Document("Virginica flowers have a petal width of about 2.0 cm.", id="iris",
             metadata={"source": "iris.pdf", "page": 2}),
    Document("A histogram is drawn with hist (y, nbins) in Octave.", id="hist", metadata={"source": "plots.html"}),
]


class KeywordRetriever(BaseRetriever):
    """A plain LangChain retriever: documents sharing the most words with the query, best first."""

    docs: list[Document]
    k: int = 3

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        words = {w.strip("?.,").lower() for w in query.split() if len(w.strip("?.,")) > 3}
        scored = [(len(words & {w.strip("?.,()").lower() for w in d.page_content.split()}), i, d)
                  for i, d in enumerate(self.docs)]
        ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
        return [Document(d.page_content, id=d.id, metadata={**d.metadata, "score": float(n)})
                for n, _, d in ranked[: self.k]]


class Recorder(BaseCallbackHandler):
    """Every run start: (kind, name, run id, parent run id, tags)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, UUID, UUID | None, list[str]]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       tags: list[str] | None = None, **kwargs: Any) -> None:
        self.runs.append(("chain", kwargs.get("name") or "", run_id, parent_run_id, tags or []))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None, **kwargs: Any) -> None:
        self.runs.append(("model", kwargs.get("name") or "chat", run_id, parent_run_id, tags or []))

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                           tags: list[str] | None = None, **kwargs: Any) -> None:
        self.runs.append(("retriever", kwargs.get("name") or "retriever", run_id, parent_run_id, tags or []))

    def named(self, name: str) -> list[tuple[str, str, UUID, UUID | None, list[str]]]:
        return [r for r in self.runs if r[1] == name]

    def ancestors(self, run_id: UUID) -> list[str]:
        parents = {r[2]: r[3] for r in self.runs}
        names = {r[2]: r[1] for r in self.runs}
        out, current = [], parents.get(run_id)
        while current is not None:
            out.append(names[current])
            current = parents.get(current)
        return out


def _model(text: str = "Virginica petals are about 2.0 cm wide [1].") -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(text)]))


def _chain(**stages: Any) -> Any:
    stages.setdefault("decompose", decompose_stage(None))
    stages.setdefault("retriever", KeywordRetriever(docs=DOCS))
    stages.setdefault("synthesize", synthesize_stage(None))
    return build_query_chain(**stages)


def test_the_chain_is_its_stages_joined_with_pipes() -> None:
    chain = _chain()
    names = [step.get_name() for step in chain.bound.steps]  # the RunnableSequence inside the named binding
    assert chain.config["run_name"] == "mmrag_query"
    assert names[0] == "question" and names[-1] == "synthesize"
    stages = (decompose_stage(None), retrieve_stage(KeywordRetriever(docs=DOCS)), fuse_stage(), synthesize_stage(None))
    assert [s.get_name() for s in stages] == ["decompose", "retrieve", "fuse", "synthesize"]
    schemas = [(s.get_input_jsonschema(), s.get_output_jsonschema()) for s in stages]
    assert [(i["type"], o["type"]) for i, o in schemas[:3]] == [("string", "array"), ("array", "object"),
                                                                ("object", "array")]
    assert schemas[3][0]["$defs"]["SynthesisInput"]["required"] == ["question"] and stages[3].OutputType is Answer


def test_callbacks_see_the_nested_run_tree_and_tags_reach_the_model() -> None:
    recorder = Recorder()
    question = "What is the petal width of virginica flowers, and how do you draw a polar plot?"
    answer = _chain(synthesize=synthesize_stage(_model())).invoke(
        question, config={"callbacks": [recorder], "tags": ["my-app"]})
    assert isinstance(answer, Answer) and answer.mode == "generated" and answer.citations[0].element_id == "iris"
    (root,) = [r for r in recorder.runs if r[3] is None]
    assert root[1] == "mmrag_query"
    for stage in ("decompose", "retrieve", "fuse", "synthesize"):
        (run,) = recorder.named(stage)
        assert recorder.ancestors(run[2])[-1] == "mmrag_query", stage
    retrievals = [r for r in recorder.runs if r[0] == "retriever"]
    assert len(retrievals) == len(answer.sub_questions) == 3  # one retriever run per question, under retrieve
    assert all("retrieve" in recorder.ancestors(r[2]) for r in retrievals)
    (model,) = [r for r in recorder.runs if r[0] == "model"]
    assert recorder.ancestors(model[2])[0] == "synthesize" and "my-app" in model[4]
    order = [r[1] for r in recorder.runs if r[1] in ("decompose", "retrieve", "fuse", "synthesize")]
    assert order == ["decompose", "retrieve", "fuse", "synthesize"]


def test_astream_events_v2_yields_stage_events_in_order() -> None:
    chain = _chain()

    async def events() -> list[dict[str, Any]]:
        return [e async for e in chain.astream_events("How do you draw a polar plot?", version="v2")]

    seen = asyncio.run(events())
    stage_names = ("mmrag_query", "decompose", "retrieve", "fuse", "synthesize")
    assert [e["name"] for e in seen if e["event"] == "on_chain_start" and e["name"] in stage_names][0] == "mmrag_query"
    ends = [e["name"] for e in seen if e["event"] == "on_chain_end" and e["name"] in stage_names]
    assert ends == ["decompose", "retrieve", "fuse", "synthesize", "mmrag_query"]
    first_token = next(i for i, e in enumerate(seen) if e["event"] == "on_chain_stream" and e["name"] == "synthesize")
    fused = next(i for i, e in enumerate(seen) if e["event"] == "on_chain_end" and e["name"] == "fuse")
    assert fused < first_token
    streamed = [e["data"]["chunk"] for e in seen if e["event"] == "on_chain_stream" and e["name"] == "synthesize"]
    assert len(streamed) > 3 and isinstance(streamed[-1], Answer)
    assert "".join(c for c in streamed if isinstance(c, str)) == streamed[-1].text
    assert seen[-1]["event"] == "on_chain_end" and seen[-1]["name"] == "mmrag_query"
    assert isinstance(seen[-1]["data"]["output"], Answer)


def test_offline_answer_streams_piece_by_piece_and_invoke_agrees() -> None:
    chain = _chain()
    pieces = list(chain.stream("How do you draw a polar plot?"))
    assert isinstance(pieces[-1], Answer) and len(pieces) > 5
    assert all(isinstance(p, str) and p for p in pieces[:-1])
    assert "".join(pieces[:-1]) == pieces[-1].text and pieces[-1].mode == "extractive"
    assert chain.invoke("How do you draw a polar plot?").text == pieces[-1].text
    assert pieces[-1].citations[0].element_id == "polar"


def test_a_plain_retriever_is_the_retrieve_stage_and_stages_work_alone() -> None:
    retrieve = retrieve_stage(KeywordRetriever(docs=DOCS), list_name="kw")
    lists = retrieve.invoke(["polar plot", "petal width virginica"])
    assert list(lists) == ["kw:q1", "kw:q2"]
    assert lists["kw:q1"][0].element.id == "polar" and lists["kw:q2"][0].element.id == "iris"
    assert lists["kw:q1"][0].element.source == "plots.html" and lists["kw:q2"][0].element.page == 2
    batched = retrieve.batch([["polar"], ["histogram"]])
    assert [next(iter(b.values()))[0].element.id for b in batched] == ["polar", "hist"]
    hits = fuse_stage().invoke(lists)
    assert {h.element.id for h in hits} >= {"polar", "iris"} and all(isinstance(h, Hit) for h in hits)

    async def streamed() -> list[Any]:
        return [p async for p in synthesize_stage(None).astream(
            {"question": "polar plot?", "sub_questions": ["polar plot?"], "hits": hits})]

    pieces = asyncio.run(streamed())
    assert isinstance(pieces[-1], Answer) and "".join(pieces[:-1]) == pieces[-1].text
    assert decompose_stage(None, enabled=False).invoke("A and  B?") == ["A and B?"]


def test_swapping_decompose_changes_the_questions_retrieval_runs() -> None:
    chain = _chain(decompose=RunnableLambda(lambda q: [q, "histogram"], name="my_decompose"))
    answer = chain.invoke("How do you draw a polar plot?")
    assert answer.sub_questions == ("How do you draw a polar plot?", "histogram")
    assert "hist" in {h.element.id for h in answer.hits}
    assert "hist" not in {h.element.id for h in _chain().invoke("How do you draw a polar plot?").hits}


def test_swapping_fuse_changes_the_ranking() -> None:
    decompose = RunnableLambda(lambda q: [q, "virginica petal width"])
    base = _chain(decompose=decompose).invoke("polar plot in Octave")
    assert base.hits[0].element.id == "polar"
    # Weight the second question's list 5x: its top document leads.
    weighted = _chain(decompose=decompose, fuse=weighted_fusion({"retriever:q2": 5.0})).invoke("polar plot in Octave")
    assert weighted.hits[0].element.id == "iris"
    assert relative_fusion().invoke({"a:q1": base.hits})[0].element.id == "polar"
    custom = _chain(fuse=RunnableLambda(lambda lists: [h for hits in lists.values() for h in hits][-1:]))
    answer = custom.invoke("polar plot in Octave")
    assert len(answer.hits) == 1


def test_swapping_synthesize_with_prompt_and_model() -> None:
    prompt = ChatPromptTemplate.from_template("Answer {question} from:\n{context}")
    seen: list[str] = []

    def capture(value: Any) -> Any:
        seen.append(value.to_string())
        return value

    synthesize = prompt | RunnableLambda(capture) | _model("Polar plots use polar.") | StrOutputParser()
    out = _chain(synthesize=synthesize).invoke("How do you draw a polar plot?")
    assert out == "Polar plots use polar."
    assert "[1] text from plots.html" in seen[0] and "Call polar (theta, rho)" in seen[0]
    assert "<retrieved_data_" in seen[0]


def test_empty_question_and_bad_fusion() -> None:
    with pytest.raises(ValueError, match="empty"):
        _chain().invoke("   ")
    with pytest.raises(ValueError, match="fusion"):
        fuse_stage("borda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights need"):
        fuse_stage("rrf", weights={"image": 2})


def test_dict_input_and_batch() -> None:
    chain = _chain()
    answers = chain.batch([{"question": "polar plot?"}, "histogram in Octave?"])
    assert [a.citations[0].element_id for a in answers] == ["polar", "hist"]




def test_qa_pairs_without_a_chat_model_says_it_ran_as_fusion() -> None:
    question = "What is the petal width of virginica flowers, and how do you draw a polar plot?"
    fusion = _chain().invoke(question)
    pieces = list(_chain(synthesize=synthesize_stage(None, mode="qa-pairs")).stream(question))
    answer = pieces[-1]
    assert answer.text == f"{QA_PAIRS_OFFLINE_NOTE}\n\n{fusion.text}" and "".join(pieces[:-1]) == answer.text
    assert answer.text.startswith("(Mode qa-pairs needs a chat model")
    assert [c.to_dict() for c in answer.citations] == [c.to_dict() for c in fusion.citations]
    assert not _chain().invoke(question).text.startswith("(Mode qa-pairs")
