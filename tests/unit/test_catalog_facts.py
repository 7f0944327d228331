"""The model table against its one source (langchain-aws's generated profiles), and the geo/global rules."""

from __future__ import annotations

import pytest

from mmrag.errors import ConfigError
from mmrag.providers.bedrock.catalog import MODELS, geo_of, resolve

profiles = pytest.importorskip("langchain_aws.data._profiles")._PROFILES



def _entry(base_id: str) -> dict | None:  # type: ignore[type-arg]
    """The source's entry for a base id, or for one of its profile ids (some models are listed only that way)."""
    keys = [k for k in profiles if k == base_id or k.split(".", 1)[-1] == base_id]
    return profiles[min(keys, key=len)] if keys else None


CLAUDE_LISTED = [m for m in MODELS.values() if m.kind == "chat" and _entry(m.base_id) is not None]


def test_every_current_claude_model_is_in_the_source() -> None:
    current = [m.base_id for m in MODELS.values() if m.kind == "chat" and m.lifecycle != "retired"]
    assert current and set(current) <= {m.base_id for m in CLAUDE_LISTED}


@pytest.mark.parametrize("facts", CLAUDE_LISTED, ids=lambda m: m.base_id)
def test_model_facts_match_the_source(facts) -> None:  # type: ignore[no-untyped-def]
    source = _entry(facts.base_id)
    assert source is not None
    assert facts.structured_output is bool(source.get("structured_output")), "structured_output"
    assert facts.temperature is bool(source.get("temperature", True)), "temperature"
    assert facts.max_output_tokens == source["max_output_tokens"], "max_output_tokens"
    geos = {key.split(".", 1)[0] for key in profiles if key.split(".", 1)[-1] == facts.base_id and key != facts.base_id}
    assert set(facts.profiles) == geos, "inference profiles"


@pytest.mark.parametrize(("model", "region", "expected"), [
    ("anthropic.claude-opus-5", "ap-southeast-2", "au."),
    ("anthropic.claude-sonnet-5", "ap-northeast-3", "jp."),
    ("anthropic.claude-haiku-5-5", "ap-northeast-1", "jp."),
    ("anthropic.claude-opus-5", "ap-south-1", "in."),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "ap-south-2", "in."),
])
def test_geo_scope_picks_the_narrow_geography(model: str, region: str, expected: str) -> None:
    assert resolve(model, region, scope="geo").model_id == expected + model


def test_geo_scope_refuses_instead_of_routing_globally() -> None:
    with pytest.raises(ConfigError, match="MMRAG_BEDROCK_INFERENCE_SCOPE=global"):
        resolve("anthropic.claude-haiku-4-5-20251001-v1:0", "sa-east-1", scope="geo")
    assert resolve("anthropic.claude-haiku-4-5-20251001-v1:0", "sa-east-1", scope="global").model_id.startswith(
        "global.")


@pytest.mark.parametrize("region", ["us-gov-west-1", "us-gov-east-1"])
def test_govcloud_is_not_a_global_source_region(region: str) -> None:
    assert not geo_of("global", region)
    assert geo_of("global", "us-east-2") and geo_of("global", "us-west-1")
    with pytest.raises(ConfigError):
        resolve("anthropic.claude-sonnet-4-5-20250929-v1:0", region, scope="global")
