"""The decomposition's fallback to rules is reported in the Answer, in `ask --json` and in `ask`'s human output
(issue 12, defect 6): the bedrock profile against the strict emulator, real boto3 and langchain-aws."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mmrag.answers import Answer
from mmrag.chains.decomposition import decompose_chain, decomposition_of
from mmrag.chains.ingestion import ingest
from mmrag.chains.query import QueryOptions, build_query_chain
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.providers._concurrency import RetryPolicy
from mmrag.providers.bedrock.claude import make_chat_model
from mmrag.providers.bedrock.client import make_bedrock_client
from mmrag.providers.offline import decompose_rule_based
from mmrag.testing import BedrockEmulator, Fault

pytestmark = pytest.mark.integration

QUESTION = "What is the boiling point of water, and who first measured the speed of sound?"
SUBS = ["What is the boiling point of water?", "Who first measured the speed of sound?"]
REJECTED = "This model doesn't support the toolChoice field. Remove toolChoice and try again."
EXPECTED = f"rules (model error: ValidationException: {REJECTED})"


@pytest.fixture(scope="module")
def settings(bedrock_emulator: BedrockEmulator, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    emu = bedrock_emulator
    home = tmp_path_factory.mktemp("decomposition") / ".mmrag"
    settings = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1", home=home,
                        answer_cache=False)
    page = home.parent / "facts.html"
    page.write_text("<html><body><h1>Facts</h1><p>Water boils at 100 degrees Celsius at sea level.</p>"
                    "<p>Marin Mersenne measured the speed of sound in 1636.</p></body></html>", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in emu.environ().items():
            mp.setenv(name, value)
        report = ingest([page], settings)
    assert report.complete, report.to_dict()
    return settings


def _env(settings: Settings, emu: BedrockEmulator) -> dict[str, str]:
    return {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
            "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(settings.home), "MMRAG_ANSWER_CACHE": "0"}


def test_the_stage_says_model_or_rules_with_the_error(emu: BedrockEmulator, settings: Settings) -> None:
    llm = make_chat_model(settings, "fast", client=make_bedrock_client(settings))
    chain = decompose_chain(llm, policy=RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.01))
    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}])
    out = chain.invoke(QUESTION)
    assert out == [QUESTION, *SUBS] and decomposition_of(out) == "model"

    emu.add_fault(Fault("validation", times=1, model="*haiku*", operation="Converse", message=REJECTED))
    out = chain.invoke(QUESTION)
    assert out == decompose_rule_based(QUESTION) and decomposition_of(out) == EXPECTED
    assert [r.status for r in emu.requests if r.operation == "Converse"] == [200, 400]  # not retried
    assert decomposition_of(decompose_chain(None).invoke(QUESTION)) == "rules"
    assert decomposition_of([QUESTION]) is None  # a custom stage's plain list says nothing


def test_the_answer_reports_the_fallback(emu: BedrockEmulator, settings: Settings) -> None:
    emu.add_fault(Fault("validation", times=1, model="*haiku*", operation="Converse", message=REJECTED))
    emu.script_chat(["Water boils at 100 degrees Celsius [1]."], model="*sonnet*")
    answer = build_query_chain(settings).invoke(QUESTION)
    assert isinstance(answer, Answer) and answer.mode == "generated"
    assert answer.decomposition == EXPECTED and answer.to_dict()["decomposition"] == EXPECTED
    assert list(answer.sub_questions) == decompose_rule_based(QUESTION)

    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}], model="*haiku*")
    emu.script_chat(["Water boils at 100 degrees Celsius [1]."], model="*sonnet*")
    assert build_query_chain(settings).invoke(QUESTION).decomposition == "model"
    off = build_query_chain(settings, options=QueryOptions(decompose=False))
    emu.script_chat(["Water boils at 100 degrees Celsius [1]."], model="*sonnet*")
    assert off.invoke(QUESTION).decomposition == "off"


def test_ask_shows_it_in_json_and_as_one_dim_line(emu: BedrockEmulator, settings: Settings) -> None:
    env = _env(settings, emu)
    emu.add_fault(Fault("validation", times=1, model="*haiku*", operation="Converse", message=REJECTED))
    emu.script_chat(["Water boils at 100 degrees Celsius [1]."], model="*sonnet*")
    result = CliRunner().invoke(cli, ["ask", QUESTION, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decomposition"] == EXPECTED

    emu.add_fault(Fault("validation", times=1, model="*haiku*", operation="Converse", message=REJECTED))
    emu.script_chat(["Water boils at 100 degrees Celsius [1]."], model="*sonnet*")
    result = CliRunner().invoke(cli, ["ask", QUESTION], env=env, color=True)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "decomposition" in line]
    assert len(lines) == 1 and f"(decomposition: {EXPECTED})" in lines[0] and "\x1b[2m" in lines[0]  # dim

    emu.script_chat([{"tool": "SubQuestions", "input": {"sub_questions": SUBS}}], model="*haiku*")
    emu.script_chat(["Water boils at 100 degrees Celsius [1]."], model="*sonnet*")
    result = CliRunner().invoke(cli, ["ask", QUESTION], env=env)
    assert result.exit_code == 0 and "decomposition" not in result.stderr  # the model split it: nothing to say
