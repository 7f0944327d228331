"""The one table of Bedrock model facts, used by the providers AND by the loopback emulator (``mmrag.testing``).

Every fact carries its source in a comment. Sources, abbreviated below:

- [profiles]  AWS, Bedrock user guide, "Supported Regions and models for inference profiles"
  (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html): a geo profile
  (``us.``/``eu.``/``apac.``/``jp.``/``au.``) can only be called from a source Region of its geography;
  ``global.`` from every commercial Region.
- [lc-aws]    langchain-aws 1.9.1 ``langchain_aws/data/_profiles.py`` (generated from models.dev): which profile
  ids exist per model, ``max_output_tokens``, ``temperature`` (accepted or not), ``structured_output``. This is
  the one source for those four facts of every Claude model it lists: tests/unit/test_catalog_facts.py compares
  this table with it field by field, so a drift fails a test instead of a user's first call.
- [anthropic] Anthropic docs, "Models overview" / "Migrating to Claude 4.5": Sonnet 4.5 and Haiku 4.5 accept
  ``temperature`` or ``top_p``, not both; extended/adaptive thinking is incompatible with forced ``tool_choice``.
- [on-demand] Bedrock user guide, "Supported foundation models": Claude 4.x+ show "*" (cross-Region inference
  only); invoking their base id returns ``ValidationException: Invocation of model ID ... with on-demand
  throughput isn't supported``.
- [titan-v2]  Bedrock user guide, "Amazon Titan Text Embeddings": V2 "8,192 tokens or 50,000 characters",
  dimensions 1024/512/256.
- [titan-mm]  Bedrock user guide, "Amazon Titan Multimodal Embeddings G1": 256 text tokens, 25 MB, 2048x2048 px,
  dimensions 1024/384/256; Regions from "Supported Regions and models for model sharing".
- [nova-mme]  Amazon Nova user guide, "Complete embeddings request and response schema" and "Using Nova
  Embeddings": 8K tokens, dimensions 3072/1024/384/256, launched in us-east-1.
- [cohere-v4] Bedrock user guide, "Cohere Embed v4" (https://docs.aws.amazon.com/bedrock/latest/userguide/
  model-parameters-embed-v4.html): request ``{input_type, texts | images | inputs, embedding_types,
  output_dimension: 256|512|1024|1536, max_tokens, truncate: NONE|LEFT|RIGHT}``, at most 96 texts or images per
  call, ~128K tokens of context; and its model card (https://docs.aws.amazon.com/bedrock/latest/userguide/
  model-card-cohere-embed-v4.html): id ``cohere.embed-v4:0``, geo profiles ``us.``/``eu.`` and ``global.``. The
  card also lists an in-Region endpoint, but not which Regions serve it on demand: mmrag calls the model through
  its profiles (which need no Region list), and the emulator therefore treats the base id as profile-only.
- [lifecycle] Bedrock user guide, "Model lifecycle": retired ids answer ``ResourceNotFoundException: This model
  version has reached the end of its life``.

Region lists are the documented ones at the time of writing; a Region missing here only changes which id/Region
mmrag picks and what ``mmrag models`` says, and an explicit ``MMRAG_*_MODEL`` profile id or ARN is always
honoured (mmrag then only checks a geo prefix against the Region).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from mmrag.errors import ConfigError

__all__ = [
    "GEO_PREFIXES",
    "MODELS",
    "ModelFacts",
    "Resolved",
    "approx_tokens",
    "facts_for",
    "structured_output_kwargs",
    "geo_of",
    "lifecycle_warning",
    "resolve",
    "split_model_id",
    "truncate_to_tokens",
]

Kind = Literal["chat", "text-embedding", "multimodal-embedding"]
Lifecycle = Literal["active", "legacy", "retired"]

# [profiles] geography of each system-defined profile prefix -> Region name prefixes that are its source Regions.
# Cross-checked with AWS's own CDK construct (aws-cdk, @aws-cdk/aws-bedrock-alpha, cross-region-inference-profile.ts:
# the Regions each geography "might include" and the prefixes it grants IAM on): EU = eu-*, US = us-* (commercial),
# APAC = ap-* plus Middle East (UAE) me-central-1, JP = ap-northeast-1/3, AU = ap-southeast-2/4, US-GOV = us-gov-*.
# Still an approximation per model: a given model's profile may list fewer source Regions ([profiles]: the exact
# list comes from GetInferenceProfile called in the source Region). ca-central-1 under "us" is an unconfirmed
# earlier entry: neither source lists it.
_GEO_SOURCES: dict[str, tuple[str, ...]] = {
    "us": ("us-east-", "us-west-", "ca-central-"),
    "eu": ("eu-",),
    "apac": ("ap-", "me-central-1"),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "in": ("ap-south-1", "ap-south-2"),
    "us-gov": ("us-gov-",),
    "global": ("us-east-", "us-west-", "ca-", "eu-", "ap-", "sa-", "me-", "af-", "il-", "mx-"),
}
GEO_PREFIXES = tuple(_GEO_SOURCES)
# Preference when several geo profiles cover a Region: the narrowest geography first (jp/au/in before apac).
_GEO_ORDER = ("jp", "au", "in", "us-gov", "us", "eu", "apac")

# [lc-aws] profile ids per model (``<geo>.anthropic.<model>`` keys of _PROFILES).
_CLAUDE_45_GEOS = ("us", "eu", "jp", "au", "global")  # sonnet-4-5 / sonnet-4-6
_HAIKU_45_GEOS = ("us", "eu", "jp", "au", "in", "global")
_CLAUDE_5_GEOS = ("us", "eu", "jp", "au", "global")  # haiku-5-5 / opus-4-7 / opus-4-8
_CLAUDE_5_IN_GEOS = ("us", "eu", "jp", "au", "in", "global")  # sonnet-5 / opus-5
_SONNET_55_GEOS = ("us", "eu", "global")


@dataclass(frozen=True)
class ModelFacts:
    """What mmrag and the emulator need to know about one Bedrock model.

    Attributes:
        base_id: the foundation-model id, without profile prefix.
        name: human name.
        kind: ``chat``, ``text-embedding`` or ``multimodal-embedding``.
        lifecycle: ``active``, ``legacy`` (still callable, being phased out) or ``retired`` (calls fail).
        regions: Regions where the base id can be invoked on demand; empty when it needs an inference profile.
        profiles: geo prefixes of the system-defined inference profiles that exist for it.
        max_output_tokens: the largest ``maxTokens`` the service accepts.
        max_input_tokens: input token limit (embeddings: per text).
        max_input_chars: input character limit (Titan Text V2).
        temperature: whether ``temperature`` is accepted.
        temperature_xor_top_p: ``temperature`` and ``topP`` cannot both be sent.
        forced_tool_choice: whether ``toolChoice`` ``any``/``tool`` is accepted.
        structured_output: Bedrock native structured output (``outputConfig.textFormat`` json_schema).
        token_factor: how many more output tokens the same answer costs than on Claude 4.5 (adaptive thinking,
            newer tokenizer); mmrag scales its ``maxTokens`` budgets by it.
        dimensions: output vector sizes (embeddings), default first.
        end_of_life: the EOL date ([lifecycle], ISO ``YYYY-MM-DD``) once AWS has published one, else None.
        prefill: whether a conversation may end with an assistant message (prefill). [anthropic] Sonnet 4.6,
            Opus 4.6 and later answer "This model does not support assistant message prefill. The conversation
            must end with a user message."
    """

    base_id: str
    name: str
    kind: Kind
    lifecycle: Lifecycle = "active"
    regions: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    max_output_tokens: int | None = None
    max_input_tokens: int | None = None
    max_input_chars: int | None = None
    temperature: bool = True
    temperature_xor_top_p: bool = False
    forced_tool_choice: bool = True
    structured_output: bool = False
    token_factor: float = 1.0
    dimensions: tuple[int, ...] = ()
    end_of_life: str | None = None
    prefill: bool = True


def _claude(base_id: str, name: str, *, profiles: tuple[str, ...], max_out: int, max_in: int = 200_000,
            temperature: bool = True, xor: bool = False, forced_tool: bool = True, structured: bool = True,
            factor: float = 1.0, lifecycle: Lifecycle = "active", prefill: bool | None = None) -> ModelFacts:
    return ModelFacts(base_id, name, "chat", lifecycle, (), profiles, max_out, max_in, None, temperature, xor,
                      forced_tool, structured, factor, prefill=temperature if prefill is None else prefill)


MODELS: dict[str, ModelFacts] = {
    m.base_id: m
    for m in (
        # -- Claude, current. [on-demand] none is invocable by base id; [lc-aws] profiles, max output, temperature.
        _claude("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", profiles=_HAIKU_45_GEOS,
                max_out=64_000, xor=True),  # [anthropic] temperature xor top_p
        _claude("anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", profiles=_CLAUDE_45_GEOS,
                max_out=64_000, xor=True),  # [anthropic] temperature xor top_p
        _claude("anthropic.claude-sonnet-4-6", "Claude Sonnet 4.6", profiles=_CLAUDE_45_GEOS, max_out=128_000,
                max_in=1_000_000, xor=True, prefill=False),
        # [lc-aws] "temperature": False and "structured_output": True (so mmrag never needs forced tool choice);
        # adaptive thinking by default -> no forced tool choice [anthropic], and ~30% more tokens per answer (new
        # tokenizer + thinking) -> token_factor.
        _claude("anthropic.claude-haiku-5-5", "Claude Haiku 5.5", profiles=_CLAUDE_5_GEOS, max_out=128_000,
                max_in=1_000_000, temperature=False, forced_tool=False, factor=1.3),
        _claude("anthropic.claude-sonnet-5", "Claude Sonnet 5", profiles=_CLAUDE_5_IN_GEOS, max_out=128_000,
                max_in=1_000_000, temperature=False, forced_tool=False, factor=1.3),
        _claude("anthropic.claude-sonnet-5-5", "Claude Sonnet 5.5", profiles=_SONNET_55_GEOS, max_out=128_000,
                max_in=1_000_000, temperature=False, forced_tool=False, factor=1.3),
        _claude("anthropic.claude-opus-4-7", "Claude Opus 4.7", profiles=_CLAUDE_5_GEOS, max_out=128_000,
                max_in=1_000_000, temperature=False, forced_tool=False, factor=1.3),
        _claude("anthropic.claude-opus-4-8", "Claude Opus 4.8", profiles=_CLAUDE_5_GEOS, max_out=128_000,
                max_in=1_000_000, temperature=False, forced_tool=False, factor=1.3),
        _claude("anthropic.claude-opus-5", "Claude Opus 5", profiles=_CLAUDE_5_IN_GEOS, max_out=128_000,
                max_in=1_000_000, temperature=False, forced_tool=False, factor=1.3),
        # -- Claude, older. [lc-aws] Sonnet 4 has us/eu/apac/global profiles and no structured_output flag.
        _claude("anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", profiles=("us", "eu", "apac", "global"),
                max_out=64_000, structured=False, lifecycle="legacy"),
        # [lifecycle] retired on Bedrock (absent from [lc-aws] 1.9.1 profiles); calls fail.
        _claude("anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", profiles=("us",), max_out=8_192,
                structured=False, lifecycle="retired"),
        _claude("anthropic.claude-3-5-sonnet-20240620-v1:0", "Claude 3.5 Sonnet", profiles=("us", "eu", "apac"),
                max_out=8_192, structured=False, lifecycle="retired"),
        _claude("anthropic.claude-3-5-sonnet-20241022-v2:0", "Claude 3.5 Sonnet v2", profiles=("us", "apac"),
                max_out=8_192, structured=False, lifecycle="retired"),
        _claude("anthropic.claude-3-sonnet-20240229-v1:0", "Claude 3 Sonnet", profiles=("us", "eu", "apac"),
                max_out=4_096, structured=False, lifecycle="retired"),
        # -- Embeddings: invoked in-Region by base id (no inference profiles).
        ModelFacts(  # [titan-v2] limits; Regions: Bedrock "Supported foundation models" (Titan Text Embeddings V2)
            "amazon.titan-embed-text-v2:0", "Titan Text Embeddings V2", "text-embedding",
            regions=("us-east-1", "us-east-2", "us-west-2", "ca-central-1", "eu-central-1", "eu-central-2",
                     "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "ap-northeast-1", "ap-northeast-2",
                     "ap-south-1", "ap-southeast-1", "ap-southeast-2", "sa-east-1"),
            max_input_tokens=8_192, max_input_chars=50_000, dimensions=(1024, 512, 256)),
        ModelFacts(  # [titan-mm]
            "amazon.titan-embed-image-v1", "Titan Multimodal Embeddings G1", "multimodal-embedding",
            regions=("us-east-1", "us-west-2", "ap-south-1", "ap-southeast-2", "eu-west-1", "eu-west-3"),
            max_input_tokens=256, dimensions=(1024, 384, 256)),
        ModelFacts(  # [nova-mme]
            "amazon.nova-2-multimodal-embeddings-v1:0", "Nova Multimodal Embeddings", "multimodal-embedding",
            regions=("us-east-1",), max_input_tokens=8_192, dimensions=(3072, 1024, 384, 256)),
        ModelFacts(  # [cohere-v4] profiles and limits; in-Region Regions not documented there (see above)
            "cohere.embed-v4:0", "Cohere Embed v4", "multimodal-embedding", profiles=("us", "eu", "global"),
            max_input_tokens=128_000, dimensions=(1536, 1024, 512, 256)),
    )
}


# -- ids and Regions -----------------------------------------------------------------------------------------
def split_model_id(model_id: str) -> tuple[str | None, str]:
    """``(geo prefix or None, base id)`` of a model id, profile id or ARN (``.../us.anthropic...`` too)."""
    base = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    head, _, rest = base.partition(".")
    if head in _GEO_SOURCES and "." in rest:
        return head, rest
    return None, base


def facts_for(model_id: str) -> ModelFacts | None:
    """The facts of a model id, profile id or ARN; None for a model this table does not know."""
    return MODELS.get(split_model_id(model_id)[1])


def structured_output_kwargs(llm: object) -> dict[str, str]:
    """Keyword arguments for LangChain's ``with_structured_output``: ``method="json_schema"`` (Bedrock native
    structured output) for a chat model this table says supports it, else none (the model's default: tool
    calling for ``ChatBedrockConverse``). Used by decomposition, the eval judge and question drafting alike."""
    facts = facts_for(str(getattr(llm, "model_id", "") or ""))
    return {"method": "json_schema"} if facts is not None and facts.structured_output else {}


def geo_of(prefix: str, region: str) -> bool:
    """Whether ``region`` is a source Region of the geo profile ``prefix`` ([profiles])."""
    return region.startswith(_GEO_SOURCES.get(prefix, ("\0",)))


def lifecycle_warning(model_id: str, *, today: date | None = None, facts: ModelFacts | None = None) -> str | None:
    """What to warn about a configured model ([lifecycle]): legacy, or past (or near) its end-of-life date."""
    facts = facts or facts_for(model_id)
    if facts is None:
        return None
    today = today or date.today()
    if facts.end_of_life is not None:
        eol = date.fromisoformat(facts.end_of_life)
        if eol <= today:
            return f"{facts.name} ({facts.base_id}) reached its end of life on {eol}: calls fail; choose another"
        return f"{facts.name} ({facts.base_id}) is legacy and reaches its end of life on {eol}: plan to move"
    if facts.lifecycle == "legacy":
        return f"{facts.name} ({facts.base_id}) is legacy on Bedrock (being phased out): plan to move to a newer one"
    if facts.lifecycle == "retired":
        return f"{facts.name} ({facts.base_id}) is retired on Bedrock: calls fail; choose a current model"
    return None


@dataclass(frozen=True)
class Resolved:
    """The id mmrag will call, the Region it calls it in, and why."""

    model_id: str
    region: str
    why: str


def _nearest_region(facts: ModelFacts, region: str) -> str:
    """A Region that serves ``facts`` in-Region: the same geography first, else the first listed."""
    area = region.split("-", 1)[0]
    return next((r for r in facts.regions if r.split("-", 1)[0] == area), facts.regions[0])


def resolve(model_id: str, region: str, *, scope: Literal["geo", "global"] = "geo") -> Resolved:
    """The id to call for ``model_id`` from ``region`` (and the Region to call it in).

    - ARNs and unknown ids are used as given.
    - A base id of a model that needs an inference profile becomes the profile of the Region's geography
      (``scope="geo"``: narrowest geography first; never ``global.``) or ``global.`` (``scope="global"``, when the
      model has one and the Region is commercial; else the geo profile).
    - A geo profile id called from outside its geography raises ConfigError naming the id that works.
    - An in-Region model not offered in ``region`` is called in the nearest Region that offers it.

    Raises:
        ConfigError: the model is retired, the given profile cannot be called from ``region``, or ``scope="geo"``
            and only ``global.`` covers ``region``.
    """
    if model_id.startswith("arn:"):
        return Resolved(model_id, region, "ARN, used as given")
    prefix, base = split_model_id(model_id)
    facts = MODELS.get(base)
    if facts is not None and facts.lifecycle == "retired":
        raise ConfigError(f"{base} ({facts.name}) is retired on Bedrock: choose a current model, e.g. "
                          f"anthropic.claude-haiku-4-5-20251001-v1:0, in MMRAG_FAST_MODEL / MMRAG_STRONG_MODEL")
    if prefix is not None:
        if not geo_of(prefix, region):
            fix = resolve(base, region, scope=scope).model_id if facts is not None else f"the profile for {region}"
            raise ConfigError(
                f"{model_id} is a {prefix!r} inference profile: it can only be called from its own Regions, not "
                f"{region} (Bedrock answers 'The provided model identifier is invalid'). Use {fix}, or the base id "
                f"{base} and mmrag picks the profile for the Region"
            )
        return Resolved(model_id, region, f"{prefix}. inference profile, callable from {region}")
    if facts is None:
        return Resolved(model_id, region, "not in mmrag's model table: used as given")
    if facts.regions:
        if region in facts.regions:
            return Resolved(base, region, f"on demand in {region}")
        home = _nearest_region(facts, region)
        return Resolved(base, home, f"not offered in {region}: called in {home}")
    candidates = [g for g in _GEO_ORDER if g in facts.profiles and geo_of(g, region)]
    has_global = "global" in facts.profiles and geo_of("global", region)
    if scope == "global" and has_global:
        return Resolved(f"global.{base}", region, "global inference profile")
    if candidates:
        return Resolved(f"{candidates[0]}.{base}", region,
                        f"{candidates[0]}. inference profile for {region} (the base id needs a profile)")
    if has_global:
        # [profiles] a geo profile keeps data in its geography; global. does not. Users who chose "geo" chose data
        # residency, so mmrag never trades it for global. silently.
        raise ConfigError(
            f"{facts.name} ({base}) has no geo inference profile for {region} (it has {_listing(facts)}); "
            f"MMRAG_BEDROCK_INFERENCE_SCOPE=geo keeps requests in one geography, so mmrag does not route them "
            f"globally. Set MMRAG_BEDROCK_INFERENCE_SCOPE=global to allow global.{base}, or choose a Region of "
            f"one of its geographies (MMRAG_AWS_REGION)"
        )
    raise ConfigError(f"{facts.name} ({base}) has no inference profile callable from {region} (it has "
                      f"{_listing(facts)}): choose another Region (MMRAG_AWS_REGION) or model")


def _listing(facts: ModelFacts) -> str:
    return ", ".join(f"{g}." for g in facts.profiles) or "no inference profiles"


# -- token counts --------------------------------------------------------------------------------------------
# ASCII word runs, single non-ASCII word characters, single punctuation marks.
_PIECE = re.compile(r"[A-Za-z0-9_]+|[^\W\x00-\x7f]|[^\w\s]")


def _piece_cost(piece: str) -> int:
    # Conservative: real tokenizers split long or rare words (a token per ~5 letters here), and non-Latin scripts
    # often cost a token per character; counting that way errs on the side of more tokens, never fewer.
    return 1 + (len(piece) - 1) // 5


def approx_tokens(text: str) -> int:
    """A conservative, tokenizer-like token count: never below ``len(text) / 4`` for prose.

    Used by the providers to cut inputs and by the emulator to enforce limits, so a text the providers cut to
    a limit passes the emulator, and the emulator does not undercount what a real tokenizer would count.
    """
    pieces = sum(_piece_cost(m.group()) for m in _PIECE.finditer(text))
    return max(pieces, math.ceil(len(text.strip()) / 4))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` whose :func:`approx_tokens` count is at most ``max_tokens``."""
    if approx_tokens(text) <= max_tokens:
        return text
    low, high = 0, min(len(text), max_tokens * 4)
    while low < high:  # binary search on the prefix length: approx_tokens is monotone in it
        mid = (low + high + 1) // 2
        if approx_tokens(text[:mid]) <= max_tokens:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip()
