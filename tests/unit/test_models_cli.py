from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.errors import ConfigError
from mmrag.providers.factory import EXTRACTIVE_LABEL, build_providers, describe_roles


def test_models_local_profile_says_what_serves_each_role() -> None:
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    roles = {r["role"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert {"text embeddings", "image space", "captions / table summaries", "decomposition", "synthesis"} <= set(roles)
    assert all(r["profile"] == "local" for r in roles.values())
    assert "MiniLM" in roles["text embeddings"]["model"]
    assert roles["synthesis"]["model"] == EXTRACTIVE_LABEL
    # Honesty: the offline profile says it has no vision model.
    assert "no vision model" in roles["captions / table summaries"]["why"]


def test_models_bedrock_profile_lists_model_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_PROFILE", "bedrock")
    monkeypatch.setenv("MMRAG_FAST_MODEL", "us.anthropic.claude-haiku-4-5-20251001-v1:0")
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0
    assert "profile: bedrock" in result.stdout
    assert "us.anthropic.claude-haiku-4-5-20251001-v1:0 (maxTokens 1024)" in result.stdout
    assert "amazon.titan-embed-text-v2:0" in result.stdout


def test_default_model_ids_are_not_retired() -> None:
    settings = Settings()
    for model in (settings.fast_model, settings.strong_model):
        assert "claude-3-sonnet" not in model and "claude-3-5-haiku" not in model and "claude-v2" not in model


def test_ocr_off_is_reported_as_unavailable() -> None:
    roles = {r.role: r for r in describe_roles(Settings(ocr="off"))}
    assert not roles["captions / table summaries"].available


def test_clip_folder_selects_clip_and_a_wrong_folder_fails_early(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(clip_model=tmp_path)
    role = {r.role: r for r in describe_roles(settings)}["image space"]
    has_clip = all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))
    assert "CLIP" in role.model and role.available is has_clip  # without the clip extra: listed, unavailable
    assert role.why == ("MMRAG_CLIP_MODEL is set" if has_clip else "CLIP needs pip install 'mmrag[clip]'")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: no config.json")):
        build_providers(settings)  # the folder holds no CLIP model: said at construction, naming the folder


def test_embedding_dimensions_can_be_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_TEXT_EMBEDDING_DIMS", "256")
    monkeypatch.setenv("MMRAG_IMAGE_EMBEDDING_DIMS", "384")
    settings = Settings()
    assert (settings.text_embedding_dims, settings.image_embedding_dims) == (256, 384)
    monkeypatch.setenv("MMRAG_TEXT_EMBEDDING_DIMS", "300")
    with pytest.raises(ValueError, match="256, 512 or 1024"):
        Settings()


def test_models_bedrock_without_aws_config_says_nothing_was_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "MMRAG_AWS_REGION", "MMRAG_AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("MMRAG_PROFILE", "bedrock")
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    bedrock = [line for line in result.stdout.splitlines() if "bedrock:" in line]
    assert len(bedrock) == 5 and all(line.startswith("✗") for line in bedrock)
    assert "(from your AWS config)" not in result.stdout and "No AWS region configured" in result.stdout
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    result = CliRunner().invoke(cli, ["models"])
    bedrock = [line for line in result.stdout.splitlines() if "bedrock:" in line]
    assert all(line.startswith("✗") for line in bedrock) and "No AWS credentials found" in result.stdout
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    result = CliRunner().invoke(cli, ["models", "--json"])
    synthesis = [json.loads(line) for line in result.stdout.splitlines() if '"synthesis"' in line][0]
    assert synthesis["available"] and synthesis["model"].startswith("eu.anthropic.claude-sonnet-4-5")
    assert "eu. inference profile for eu-west-1" in synthesis["why"]


def test_image_model_is_selectable_by_its_short_name(monkeypatch: pytest.MonkeyPatch) -> None:
    nova = "amazon.nova-2-multimodal-embeddings-v1:0"
    monkeypatch.setenv("MMRAG_IMAGE_MODEL", nova)
    assert Settings().image_embedding_model == nova
    assert Settings(image_embedding_model="amazon.titan-embed-image-v1").image_embedding_model.startswith("amazon.t")


def test_models_marks_dimensions_the_model_does_not_offer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_PROFILE", "bedrock")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MMRAG_IMAGE_MODEL", "cohere.embed-v4:0")
    monkeypatch.setenv("MMRAG_IMAGE_EMBEDDING_DIMS", "384")  # Titan MM and Nova offer 384; Cohere does not
    roles = {r.role: r for r in describe_roles(Settings())}
    image = roles["image space"]
    assert not image.available and "(384 dims)" in image.model
    assert "offers 1536, 1024, 512, 256 dimensions, not 384: set MMRAG_IMAGE_EMBEDDING_DIMS=1536" in image.why
    assert roles["text embeddings"].available  # Titan Text at its default 1024
    with pytest.raises(ConfigError, match="not 384"):  # what building the providers would say, found earlier
        build_providers(Settings())
    monkeypatch.setenv("MMRAG_IMAGE_EMBEDDING_DIMS", "1024")
    assert {r.role: r for r in describe_roles(Settings())}["image space"].available
