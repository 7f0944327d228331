"""The aws extra's floors cover the SDK features mmrag uses (a floor below them installs a broken client)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _floors() -> dict[str, tuple[int, ...]]:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["aws"]
    out = {}
    for requirement in extra:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement)
        assert match, f"{requirement!r} has no >= floor"
        out[match[1].lower()] = tuple(int(p) for p in match[2].split("."))
    return out


def test_floors_cover_the_features_we_use() -> None:
    floors = _floors()
    assert floors["botocore"] >= (1, 35, 2)  # S3 PutObject IfNoneMatch (conditional writes) appears in 1.35.2
    assert floors["boto3"] >= (1, 35, 2)
    assert floors["langchain-aws"] >= (1, 9)  # ChatBedrockConverse.with_structured_output(method="json_schema")


def test_installed_sdk_has_the_operations_and_fields_we_send() -> None:
    botocore_session = pytest.importorskip("botocore.session")
    session = botocore_session.get_session()
    s3 = session.get_service_model("s3")
    assert "IfNoneMatch" in s3.operation_model("PutObject").input_shape.members
    runtime = session.get_service_model("bedrock-runtime")
    assert "outputConfig" in runtime.operation_model("Converse").input_shape.members
