"""``mmrag models --iam``: one IAM policy per use, valid in JSON shape and ARNs (issue 24, items 1 and 3)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.cli import cli
from mmrag.providers.bedrock.catalog import MODELS, lifecycle_warning

# IAM policy grammar (IAM user guide, "IAM JSON policy elements reference"): Version, Statement[{Sid (alphanumeric),
# Effect, Action (service:Action), Resource (ARN or *), Condition {operator: {key: value(s)}}}].
_ARN = re.compile(r"^arn:aws(?:-us-gov|-cn)?:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*|\*):(?P<account>\d{12}|\*|):"
                  r"(?P<resource>.+)$")
_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z*]+$")


def _valid(policy: dict[str, Any]) -> list[str]:
    assert set(policy) == {"Version", "Statement"} and policy["Version"] == "2012-10-17"
    resources: list[str] = []
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"]) and statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert actions and all(_ACTION.match(a) for a in actions), actions
        found = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for arn in found:
            assert arn == "*" or _ARN.match(arn), arn
        for operator, pairs in statement.get("Condition", {}).items():
            assert operator in ("StringEquals", "StringLike") and all(":" in k for k in pairs)
        resources += found
    return resources


def _iam(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> dict[str, Any]:
    monkeypatch.setenv("MMRAG_PROFILE", "bedrock")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["models", "--iam", "--json", "--account", "123456789012", *args])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line.get("policy", "note"): line.get("document", line.get("note")) for line in lines}


def test_one_policy_per_use_with_inference_profiles_and_marketplace(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _iam(monkeypatch, MMRAG_AWS_REGION="eu-west-1")
    ingest, query = _valid(docs["ingest role"]), _valid(docs["query role"])
    profile = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert profile in ingest and profile in query
    sonnet = "inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert any(r.endswith(sonnet) for r in query) and not any(r.endswith(sonnet) for r in ingest)
    assert "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-embed-text-v2:0" in ingest
    assert "arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0" in ingest
    actions = {a for s in docs["query role"]["Statement"] for a in s["Action"]}
    assert {"aws-marketplace:Subscribe", "aws-marketplace:ViewSubscriptions", "bedrock:GetInferenceProfile",
            "bedrock:InvokeModelWithResponseStream"} <= actions
    assert "global" not in json.dumps(docs["query role"])


def test_global_profiles_need_the_region_less_foundation_model_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _iam(monkeypatch, MMRAG_AWS_REGION="us-east-1", MMRAG_BEDROCK_INFERENCE_SCOPE="global")
    resources = _valid(docs["query role"])
    assert "arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0" in resources
    assert ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0"
            in resources)


def test_stores_kms_and_serverless_data_access(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    docs = _iam(monkeypatch, "--kms-key", key, MMRAG_AWS_REGION="eu-west-1", MMRAG_S3_BUCKET="corp-docs",
                MMRAG_VECTOR_STORE="opensearch", MMRAG_OPENSEARCH_URL="https://x1y2z3.eu-west-1.aoss.amazonaws.com",
                MMRAG_OPENSEARCH_AUTH="sigv4", MMRAG_OPENSEARCH_SERVICE="aoss")
    ingest, query = docs["ingest role"]["Statement"], docs["query role"]["Statement"]
    _valid(docs["ingest role"])
    _valid(docs["query role"])
    by_sid = {s["Sid"]: s for s in ingest + query}
    assert by_sid["IngestObjects"]["Resource"] == "arn:aws:s3:::corp-docs/mmrag/*"
    assert "s3:PutObject" in by_sid["IngestObjects"]["Action"] and by_sid["QueryObjects"]["Action"] == ["s3:GetObject"]
    assert by_sid["IngestBucketKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert by_sid["QueryBucketKey"]["Resource"] == key
    assert by_sid["QueryServerlessApi"]["Resource"] == "arn:aws:aoss:eu-west-1:123456789012:collection/x1y2z3"
    rules = docs["OpenSearch Serverless data-access policy"]
    assert {r["Description"] for r in rules} == {"mmrag ingest", "mmrag query"}
    for rule_set in rules:
        assert all(_ARN.match(p) for p in rule_set["Principal"])
        (rule,) = rule_set["Rules"]
        assert rule["ResourceType"] == "index" and rule["Resource"] == ["index/*/mmrag-default-*"]
        assert all(p.startswith("aoss:") for p in rule["Permission"])


def test_human_output_is_one_json_document_per_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_PROFILE", "bedrock")
    monkeypatch.setenv("MMRAG_AWS_REGION", "us-west-2")
    result = CliRunner().invoke(cli, ["models", "--iam"])
    assert result.exit_code == 0, result.output
    chunks = [c for c in re.split(r"^# .*$", result.stdout, flags=re.M) if c.strip()]
    assert len(chunks) == 2 and all(_valid(json.loads(c)) for c in chunks)
    assert "use-case form" in result.stdout


def test_models_warns_about_a_legacy_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_PROFILE", "bedrock")
    monkeypatch.setenv("MMRAG_AWS_REGION", "us-east-1")
    monkeypatch.setenv("MMRAG_STRONG_MODEL", "anthropic.claude-sonnet-4-20250514-v1:0")
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert "warning: Claude Sonnet 4" in result.stderr and "legacy" in result.stderr


def test_lifecycle_warning_uses_the_end_of_life_date() -> None:
    from dataclasses import replace

    facts = replace(MODELS["anthropic.claude-sonnet-4-20250514-v1:0"], end_of_life="2027-01-31")
    assert "reaches its end of life on 2027-01-31" in str(lifecycle_warning("", facts=facts, today=date(2027, 1, 1)))
    assert "reached its end of life" in str(lifecycle_warning("", facts=facts, today=date(2027, 2, 1)))
    assert lifecycle_warning("anthropic.claude-haiku-4-5-20251001-v1:0") is None


def test_models_marks_only_the_role_whose_model_the_region_cannot_call(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Any) -> None:
    for key, value in {"MMRAG_PROFILE": "bedrock", "MMRAG_AWS_REGION": "ap-northeast-1",
                       "MMRAG_IMAGE_MODEL": "cohere.embed-v4:0", "AWS_ACCESS_KEY_ID": "x",
                       "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    roles = {r["role"]: r for r in map(json.loads, result.stdout.splitlines()) if "role" in r}
    image = roles["image space"]
    assert not image["available"] and "MMRAG_BEDROCK_INFERENCE_SCOPE=global" in image["why"]
    assert roles["synthesis"]["available"] and roles["synthesis"]["model"].startswith("jp.anthropic.")
