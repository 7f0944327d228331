"""The one price table of mmrag's Bedrock cost estimates: ingest reports and ``eval`` usage.

On-demand list prices in US dollars, us-east-1, as of :data:`PRICES_AS_OF`. Sources:

- [pricing] Amazon Bedrock pricing page (https://aws.amazon.com/bedrock/pricing/): per-model token and image prices.
  Read on the date below through summaries that quote it (no internet here); re-check before quoting a figure.
- [global]  Bedrock user guide, "Global cross-Region inference"
  (https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html): for Claude 4.5 and
  later, global profiles cost about 10% less than geographic ones (and in-Region calls), priced by source Region.

Prices marked ``assumed`` are the tier's list price (Haiku, Sonnet, Opus) for a model whose own price was not
found at the date: estimates that use them say so. A model not in this table has no price (the estimate is then
incomplete, never silently zero). An estimate, for comparing runs and configurations: not a bill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmrag.providers.bedrock.catalog import facts_for, split_model_id

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = ["AOSS_OCU_HOUR", "PRICES", "PRICES_AS_OF", "PRICE_SOURCE", "Price", "call_cost", "estimate_ingest_cost",
           "ingest_cost", "opensearch_serverless_floor", "price_for"]

PRICES_AS_OF = "2026-12-07"
PRICE_SOURCE = "https://aws.amazon.com/bedrock/pricing/ (us-east-1 on-demand)"
GEO_PREMIUM = 1.10  # [global] geo / in-Region vs global, Claude 4.5+


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens, and per image; ``geo_premium``: the global price is the base and
    geo profiles cost that much more ([global]); ``assumed``: the tier's price, not the model's own."""

    input_per_mtok: float
    output_per_mtok: float = 0.0
    per_image: float = 0.0
    geo_premium: bool = False
    assumed: bool = False


_HAIKU, _SONNET, _OPUS = (1.00, 5.00), (3.00, 15.00), (5.00, 25.00)  # [pricing] Claude 4.5+ tiers, global

PRICES: dict[str, Price] = {
    # [pricing] + [global]: global rates; geo profiles +10%.
    "anthropic.claude-haiku-4-5-20251001-v1:0": Price(*_HAIKU, geo_premium=True),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": Price(*_SONNET, geo_premium=True),
    "anthropic.claude-sonnet-4-6": Price(*_SONNET, geo_premium=True),
    "anthropic.claude-opus-4-7": Price(*_OPUS, geo_premium=True),
    # Not found on the pricing page at the date: their tier's price.
    "anthropic.claude-haiku-5-5": Price(*_HAIKU, geo_premium=True, assumed=True),
    "anthropic.claude-sonnet-5": Price(*_SONNET, geo_premium=True, assumed=True),
    "anthropic.claude-sonnet-5-5": Price(*_SONNET, geo_premium=True, assumed=True),
    "anthropic.claude-opus-4-8": Price(*_OPUS, geo_premium=True, assumed=True),
    "anthropic.claude-opus-5": Price(*_OPUS, geo_premium=True, assumed=True),
    "anthropic.claude-sonnet-4-20250514-v1:0": Price(3.00, 15.00),  # one price for every scope
    # [pricing] embeddings: Titan Text V2 $0.00002 / 1K tokens; Titan Multimodal G1 $0.0008 / 1K text tokens and
    # $0.00006 per image.
    "amazon.titan-embed-text-v2:0": Price(0.02),
    "amazon.titan-embed-image-v1": Price(0.80, per_image=0.00006),
}


def price_for(model_id: str) -> tuple[float, float, float, bool] | None:
    """``(input USD/Mtok, output USD/Mtok, USD/image, assumed)`` for the id mmrag calls (profile prefix and scope
    included: a geo profile of a Claude 4.5+ model costs :data:`GEO_PREMIUM` times the global price); None when
    the model has no price here."""
    prefix, base = split_model_id(model_id)
    facts = facts_for(model_id)
    price = PRICES.get(facts.base_id if facts is not None else base)
    if price is None:
        return None
    factor = GEO_PREMIUM if price.geo_premium and prefix != "global" else 1.0
    return price.input_per_mtok * factor, price.output_per_mtok * factor, price.per_image, price.assumed


def call_cost(model_id: str, input_tokens: int = 0, output_tokens: int = 0, images: int = 0) -> float | None:
    """Estimated USD of calls to one model; None when the model has no price."""
    price = price_for(model_id)
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000 + images * price[2]


# Tokens per call assumed by the ingest estimate (calls are counted, tokens are not): a caption request carries
# a resized image (~1.6k tokens) and the fenced context, and returns ~120 tokens (more for models that think:
# token_factor); a text chunk is ~250 tokens; an image embedding carries its caption (<= 128 tokens) and one image.
_CAPTION_IN, _CAPTION_OUT, _CHUNK, _IMAGE_TEXT = 1_600, 120, 250, 128


def estimate_ingest_cost(roles: Mapping[str, str], calls: Mapping[str, int]) -> float:
    """Estimated USD of an ingest run's new model calls.

    Args:
        roles: model id called per role: ``captions``, ``text embeddings``, ``image embeddings``.
        calls: new calls per role (what the ingest report counts).

    Models without a price add nothing (the report's figure is then a lower bound).
    """
    total = 0.0
    for role, n in calls.items():
        model = roles.get(role)
        if not model or n <= 0:
            continue
        if role == "captions":
            facts = facts_for(model)
            out = _CAPTION_OUT * (facts.token_factor if facts is not None else 1.0)
            cost = call_cost(model, _CAPTION_IN, int(out))
        elif role == "text embeddings":
            cost = call_cost(model, _CHUNK)
        elif role == "image embeddings":
            cost = call_cost(model, _IMAGE_TEXT, images=1)
        else:
            cost = None
        total += (cost or 0.0) * n
    return total


def ingest_cost(settings: Settings, calls: Mapping[str, int]) -> float:
    """:func:`estimate_ingest_cost` for the models ``settings`` resolve to (the ids and scope mmrag calls)."""
    from mmrag.errors import ConfigError
    from mmrag.providers.bedrock.client import resolve_roles

    try:
        roles = resolve_roles(settings)
    except ConfigError:
        return 0.0
    ids = {"captions": roles.fast.model_id, "text embeddings": roles.text_embedding.model_id,
           "image embeddings": roles.image_embedding.model_id}
    return estimate_ingest_cost(ids, calls)


# Standing cost that dominates small deployments: OpenSearch Serverless bills OCU-hours whether or not anything
# is indexed or searched. OpenSearch Service developer guide, "Managing capacity limits for Amazon OpenSearch
# Serverless": a vector collection scales down to 1 OCU for indexing and 1 for search with redundancy (0.5 x 2
# each), 0.5 + 0.5 without; vector collections do not share OCUs with other collection types. Price per OCU-hour
# from https://aws.amazon.com/opensearch-service/pricing/ (us-east-1, read via summaries on PRICES_AS_OF).
AOSS_OCU_HOUR = 0.24
HOURS_PER_MONTH = 730


def opensearch_serverless_floor(*, redundant: bool = True) -> float:
    """USD per month of the minimum OCUs of an OpenSearch Serverless vector collection, idle."""
    ocus = 2.0 if redundant else 1.0
    return ocus * AOSS_OCU_HOUR * HOURS_PER_MONTH
