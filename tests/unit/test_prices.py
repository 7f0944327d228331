"""The one price table (issue 24, item 8): per model, per token and image, per scope; every catalog model priced."""

from __future__ import annotations

import pytest

from mmrag.config import Settings
from mmrag.eval.usage import estimate_cost
from mmrag.providers.bedrock.catalog import MODELS
from mmrag.providers.bedrock.prices import PRICES_AS_OF, call_cost, estimate_ingest_cost, ingest_cost, price_for

SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"


def test_the_table_has_a_date_and_prices_every_current_model_mmrag_can_be_configured_with() -> None:
    assert PRICES_AS_OF[:4].isdigit()
    unpriced = {m.base_id for m in MODELS.values() if m.lifecycle != "retired" and price_for(m.base_id) is None}
    # Nova Multimodal Embeddings and Cohere Embed v4: no price found at the date (their estimate is incomplete).
    assert unpriced == {"amazon.nova-2-multimodal-embeddings-v1:0", "cohere.embed-v4:0"}


def test_geo_costs_ten_percent_more_than_global_for_claude_45() -> None:
    geo, glob = price_for(f"eu.{SONNET_45}"), price_for(f"global.{SONNET_45}")
    assert geo is not None and glob is not None
    assert geo[0] == pytest.approx(glob[0] * 1.1) and geo[1] == pytest.approx(glob[1] * 1.1)
    assert call_cost(f"global.{HAIKU_45}", 1_000_000, 1_000_000) == pytest.approx(6.0)


def test_eval_usage_prices_every_current_claude_model_per_model() -> None:
    chat = [m.base_id for m in MODELS.values() if m.kind == "chat" and m.lifecycle != "retired"]
    costs = {m: estimate_cost(f"global.{m}", 1000, 1000) for m in chat if "global" in MODELS[m].profiles}
    assert all(c is not None and c > 0 for c in costs.values()), costs
    assert costs["anthropic.claude-opus-5"] > costs["anthropic.claude-sonnet-5"] > costs["anthropic.claude-haiku-5-5"]


def test_ingest_estimate_follows_the_configured_models() -> None:
    calls = {"captions": 10, "text embeddings": 100, "image embeddings": 10}
    haiku = estimate_ingest_cost({"captions": f"us.{HAIKU_45}", "text embeddings": "amazon.titan-embed-text-v2:0",
                                  "image embeddings": "amazon.titan-embed-image-v1"}, calls)
    opus = estimate_ingest_cost({"captions": "us.anthropic.claude-opus-4-7", "text embeddings":
                                 "amazon.titan-embed-text-v2:0", "image embeddings": "amazon.titan-embed-image-v1"},
                                calls)
    assert 0 < haiku < opus
    fast = Settings(profile="bedrock", aws_region="us-east-1", fast_model=HAIKU_45)
    scoped = Settings(profile="bedrock", aws_region="us-east-1", fast_model=HAIKU_45, bedrock_inference_scope="global")
    assert ingest_cost(fast, {"captions": 10}) == pytest.approx(ingest_cost(scoped, {"captions": 10}) * 1.1)
