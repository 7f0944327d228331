"""``evaluate`` and ``mmrag eval --judge`` end to end in the Bedrock profile, against the loopback Bedrock emulator.

One small PDF (tabula-data.pdf: mtcars, iris) is ingested with the Bedrock profile (Haiku table summaries, Titan
vectors); then every variant runs with model decomposition (Haiku, structured output), Sonnet synthesis and the
LLM judge (Haiku, structured output). The emulator plays the models: one responder answers each kind of request
from what the request says (fakes of model output only), and validates every request like real Bedrock."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.answers import Answer, Citation, Hit
from mmrag.chains.ingestion import ingest
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.elements import Element
from mmrag.eval.golden import parse_golden
from mmrag.eval.judge import JUDGE_SYSTEM, Judge
from mmrag.eval.runner import evaluate
from mmrag.eval.variants import VARIANTS
from mmrag.providers.bedrock.claude import make_chat_model
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.testing import BedrockEmulator, Fault, RecordedRequest

pytestmark = pytest.mark.integration

PDF = "pdf/tabula-data.pdf"
GOLDEN = [
    {"id": "hp", "question": "What is the horsepower (hp) of the Datsun 710 in the mtcars table?", "modality": "table",
     "expected": [{"source": PDF, "page": 1, "contains": "Datsun 710"}], "answer": "93"},
    {"id": "mpg", "question": "How many miles per gallon (mpg) does the Mazda RX4 do, and how many cylinders?",
     "modality": ["table", "multi-hop"], "expected": [{"source": PDF, "page": 1, "contains": "Mazda RX4"}],
     "answer": "21"},
    {"id": "species",
     "question": "Which species has petal width 1.8 and sepal length 5.9 in row 150 of the iris table?",
     "modality": "table", "expected": [{"source": PDF, "page": 2}], "answer": "virginica"},
]
# What the strong model "answers" (a fake output): right for hp and mpg, wrong for species.
ANSWERS = {"hp": "The Datsun 710 has 93 hp [1].", "mpg": "The Mazda RX4 does 21 mpg with 6 cylinders [1][2].",
           "species": "That row is Iris setosa [1]."}
_FENCED_ANSWER = re.compile(r"<(system_answer_[0-9a-f]{16})>\n(.*?)\n</\1>", re.S)
_REFERENCE = re.compile(r"^Reference answer: (.*)$", re.M)


def _schema_name(request: RecordedRequest) -> str | None:
    """The structured output asked for: the native json_schema's name, or the name of the only tool offered."""
    body = request.body or {}
    fmt = (body.get("outputConfig") or {}).get("textFormat") or {}
    tools = [t["toolSpec"]["name"] for t in (body.get("toolConfig") or {}).get("tools") or [] if "toolSpec" in t]
    return ((fmt.get("structure") or {}).get("jsonSchema") or {}).get("name") or (tools[0] if len(tools) == 1
                                                                                   else None)


def _structured(request: RecordedRequest, name: str, value: dict[str, Any]) -> Any:
    """A structured reply as the request asked for it: JSON text (native) or a tool call."""
    return json.dumps(value) if "outputConfig" in request.body else {"tool": name, "input": value}


def _last_block(request: RecordedRequest) -> str:
    """The last text block of the last user message (synthesis puts the question there)."""
    blocks = request.body["messages"][-1]["content"]
    return next((b["text"] for b in reversed(blocks) if isinstance(b.get("text"), str)), "")


def respond(request: RecordedRequest) -> Any:
    """Every model reply, from what the request asks (fakes of model output)."""
    text = request.last_user_text
    name = _schema_name(request)
    if name == "JudgeVerdict":  # grade by containment of the reference, as a (too) simple judge would
        reference = _REFERENCE.search(text)
        answer = _FENCED_ANSWER.search(text)
        assert reference and answer, text
        ok = reference.group(1).lower() in answer.group(2).lower()
        return _structured(request, name, {
            "verdict": "correct" if ok else "incorrect",
            "reason": f"The answer {'states' if ok else 'does not state'} {reference.group(1)}."})
    if name == "SubQuestions":
        question = text.rsplit("Question: ", 1)[-1]
        parts = [p.strip() for p in question.rstrip("?").split(", and ")]
        return _structured(request, name, {"sub_questions": [p + "?" for p in parts] if len(parts) > 1 else []})
    if _last_block(request).startswith("Question: "):  # synthesis (strong) or a qa-pairs sub-answer (fast)
        question = _last_block(request).split("\n", 1)[0].removeprefix("Question: ")
        return next((a for q in GOLDEN if q["question"] == question for a in [ANSWERS[str(q["id"])]]),
                    "A draft sub-answer [1].")
    return "Summary: a table of rows of measurements (cars or flowers) across named columns."


@pytest.fixture(autouse=True)
def _scripted(emu: BedrockEmulator) -> None:
    """The conftest's emulator (reset, in the environment) answering every request with ``respond``."""
    emu.script_chat(respond)


@pytest.fixture(scope="module")
def settings(bedrock_emulator: BedrockEmulator, tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Settings:
    emu = bedrock_emulator
    home = tmp_path_factory.mktemp("eval-bedrock") / ".mmrag"
    # Default vector sizes: the CLI test opens the same collection from MMRAG_* variables alone.
    settings = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", home=home, ocr="off")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in emu.environ().items():
            mp.setenv(name, value)
        emu.script_chat(respond)
        report = ingest([data_dir / PDF], settings)
    assert report.ok and report.caption_failures == 0, report.to_dict()
    emu.reset()
    return settings


def test_every_variant_with_model_decomposition_synthesis_and_the_judge(emu: BedrockEmulator,
                                                                         settings: Settings) -> None:
    golden = parse_golden(json.dumps(q) for q in GOLDEN)
    report = evaluate(golden, settings, variants=list(VARIANTS), k=5, concurrency=3, judge=True)

    assert report.variants == tuple(VARIANTS) and report.profile == "bedrock"
    assert len(report.results) == len(GOLDEN) * len(VARIANTS)
    assert not [r.error for r in report.results if r.error]
    fast = f"us.{settings.fast_model}"
    assert report.judge_model == fast and report.judge_label == f"LLM judge ({fast})"
    for r in report.results:
        assert r.answer == ANSWERS[r.id]  # Sonnet's (scripted) answer reached the report
        assert r.judge_score == (0.0 if r.id == "species" else 1.0), (r.id, r.variant, r.judge_reason)
        assert r.judge_reason and ("does not state" in r.judge_reason) == (r.id == "species")
        assert r.judge_model == fast and r.judge_usage.calls == 1
        assert r.judge_usage.cost_usd is not None and r.judge_usage.cost_usd > 0
        # the answer, and (but for BM25 alone) the query embeddings
        assert r.usage.calls >= (1 if r.variant == "bm25" else 2), (r.id, r.variant, r.usage)
        assert r.usage.cost_usd is not None and r.usage.cost_usd > 0
    mpg = {r.variant: r for r in report.results if r.id == "mpg"}
    assert len(mpg["decompose+rrf"].sub_questions) == 3  # the model's two sub-questions after the original
    assert mpg["decompose+rrf"].usage.calls > mpg["hybrid"].usage.calls  # decomposition + more query embeddings
    assert mpg["qa-pairs"].usage.calls > mpg["decompose+rrf"].usage.calls  # the sub-answers
    summary = {(row["variant"], row["modality"]): row for row in report.summary()}
    for variant in VARIANTS:
        row = summary[(variant, "all")]
        assert row["judge_score"] == pytest.approx(2 / 3) and row["judged"] == 3 and row["judge_calls"] == 3
        assert row["model_calls"] > 0 and row["cost_usd"] > 0 and row["judge_cost_usd"] > 0
        assert summary[(variant, "multi-hop")]["judge_score"] == 1.0
    assert f"LLM judge ({fast})" in report.to_markdown()

    # The judge's requests: Haiku via its inference profile, native structured output, the rubric, the fenced
    # answer and the cited evidence (the table rows the answer cited).
    judged = [r for r in emu.requests if _schema_name(r) == "JudgeVerdict"]
    assert len(judged) == len(report.results)
    for request in judged:
        assert request.operation == "Converse" and request.model_id == fast
        assert request.body["system"] == [{"text": JUDGE_SYSTEM}]
        assert "inputSchema" not in json.dumps(request.body.get("toolConfig") or {})
        text = request.last_user_text
        assert "partially correct (0.5)" in text and "<cited_evidence_" in text
    hp = next(r.last_user_text for r in judged if "Datsun 710 has 93 hp" in r.last_user_text)
    assert re.search(r"\[1\] \w+ from \S*tabula-data\.pdf, page \d", hp)


def test_cli_eval_judge_json_and_html(emu: BedrockEmulator, settings: Settings, tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps(q) for q in GOLDEN) + "\n", encoding="utf-8")
    page = tmp_path / "report.html"
    env = {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
           "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(settings.home), "MMRAG_OCR": "off"}
    result = CliRunner().invoke(cli, ["eval", str(golden), "--variants", "hybrid,decompose+rrf", "--judge", "--json",
                                      "--html", str(page)], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    rows = [line for line in lines if line["type"] == "question"]
    assert len(rows) == 6
    fast = f"us.{settings.fast_model}"
    for row in rows:
        assert row["judge_model"] == fast and row["judge_reason"] and row["judge_calls"] == 1
        assert row["judge_score"] == (0.0 if row["id"] == "species" else 1.0)
        assert row["model_calls"] > 0 and row["cost_usd"] > 0 and row["judge_cost_usd"] > 0
    (report,) = [line for line in lines if line["type"] == "report"]
    assert report["judge_label"] == f"LLM judge ({fast})"
    assert {row["variant"]: row["judge_score"] for row in report["summary"] if row["modality"] == "all"} == \
        pytest.approx({"hybrid": 2 / 3, "decompose+rrf": 2 / 3})
    html = page.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 8  # the seven metrics and the judge's
    assert f"LLM judge ({fast}): mean grade" in html and "The answer does not state virginica." in html


def _graded_answer(text: str) -> tuple[Answer, list[Hit]]:
    table = Element("table", "/docs/tabula-data.pdf", "| car | hp |\n| Datsun 710 | 93 |", page=1)
    hits = [Hit(table, 0.02, ("bm25:q1",))]
    return Answer(str(GOLDEN[0]["question"]), text, "generated", (), (Citation(1, table.id, "table", table.source, 1),),
                  tuple(hits)), hits


@pytest.mark.parametrize("model", ["anthropic.claude-haiku-4-5-20251001-v1:0",  # native structured output
                                   "anthropic.claude-sonnet-4-20250514-v1:0"])  # no native: a JudgeVerdict tool
def test_the_judge_reads_either_structured_reply_and_reports_a_malformed_one(emu: BedrockEmulator,
                                                                             settings: Settings, model: str) -> None:
    chosen = settings.model_copy(update={"fast_model": model})
    judge = Judge(make_chat_model(chosen, "fast", client=make_bedrock_client(chosen)))
    right, hits = _graded_answer("The Datsun 710 has 93 hp [1].")
    wrong, _ = _graded_answer("The Datsun 710 has 110 hp [1].")

    good, bad = judge.grade("hp?", ["93"], right, hits), judge.grade("hp?", ["93"], wrong, hits)

    assert (good.score, good.reason, good.error) == (1.0, "The answer states 93.", None)
    assert (bad.score, bad.reason) == (0.0, "The answer does not state 93.")
    assert good.model == f"us.{model}" and good.usage.calls == 1 and good.usage.input_tokens > 0
    assert good.usage.cost_usd is not None and good.usage.cost_usd > 0
    requests = [r for r in emu.requests if _schema_name(r) == "JudgeVerdict"]
    native = requests[0].body.get("outputConfig") is not None
    assert native == (model == "anthropic.claude-haiku-4-5-20251001-v1:0") and len(requests) == 2

    emu.script_chat([_structured(requests[0], "JudgeVerdict", {"verdict": "splendid", "reason": "-"})])
    malformed = judge.grade("hp?", ["93"], right, hits)
    assert malformed.score is None and malformed.error is not None and "malformed verdict" in malformed.error


def test_a_throttled_judge_is_retried_and_a_failing_one_is_reported(emu: BedrockEmulator, settings: Settings) -> None:
    judge = Judge(make_chat_model(settings, "fast", client=make_bedrock_client(settings)))
    answer, hits = _graded_answer("The Datsun 710 has 93 hp [1].")

    emu.add_fault(Fault("throttle", times=1, model="*haiku*"))
    retried = judge.grade("hp?", ["93"], answer, hits)
    assert (retried.score, retried.error) == (1.0, None)
    assert [r.error_code for r in emu.requests] == ["ThrottlingException", None]

    emu.add_fault(Fault("model_error", times=None, model="*haiku*"))
    failed = judge.grade("hp?", ["93"], answer, hits)
    assert failed.score is None and failed.error is not None and "ModelError" in failed.error


def test_cli_exits_1_when_the_judge_fails(emu: BedrockEmulator, settings: Settings, tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text(json.dumps(GOLDEN[0]) + "\n", encoding="utf-8")
    env = {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
           "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(settings.home), "MMRAG_OCR": "off"}
    emu.add_fault(Fault("model_error", times=None, model="*haiku*"))  # only the judge uses Haiku in `hybrid`
    result = CliRunner().invoke(cli, ["eval", str(golden), "--variants", "hybrid", "--judge", "--json"], env=env)
    assert result.exit_code == 1, result.output
    assert "the LLM judge failed on 1 answer(s)" in result.stderr
    (row,) = [line for line in map(json.loads, result.stdout.splitlines()) if line["type"] == "question"]
    assert row["judge_score"] is None and row["judge_reason"].startswith("(the judge failed: ")
    assert row["answer"] == ANSWERS["hp"] and row["error"] is None  # the answer itself was scored
