"""The boto3 Bedrock clients every Bedrock provider shares, and which model id each role calls from which Region.

Who retries: mmrag's own layer (:mod:`mmrag.providers._concurrency`) does, for every call the providers make.
botocore's retries are therefore off by default (``total_max_attempts=1``): with both on, attempts would multiply
(botocore's N x ours M) and the adaptive limiter would never see the throttles botocore swallowed. Pass
``botocore_retries=True`` for a client used by code outside that layer (e.g. a chat model invoked directly in an
LCEL chain); botocore's ``adaptive`` mode then retries up to ``max_retries`` times.

Every client comes from the one session of :func:`mmrag._aws.aws_session` (``MMRAG_AWS_PROFILE``,
``MMRAG_AWS_REGION``). ``MMRAG_BEDROCK_ENDPOINT_URL`` applies to ``bedrock-runtime`` only: the control-plane
``bedrock`` client keeps its own endpoint. It is one URL, or one per Region (``ap-northeast-1=https://vpce-...,
us-east-1=https://vpce-...``): a client signs for its Region, and an endpoint of another Region rejects the request
(``InvalidSignatureException: Credential should be scoped to a valid region``), so an endpoint whose host names a
Region (VPC endpoint DNS names do) is used for that Region only (:func:`endpoint_for`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mmrag._aws import NO_CREDENTIALS, NO_REGION, aws_region, aws_session
from mmrag.config import Settings
from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.providers.bedrock.catalog import Resolved, resolve

__all__ = ["NO_CREDENTIALS", "POOL_HEADROOM", "BedrockRoles", "bedrock_region", "endpoint_for",
           "make_bedrock_client", "resolve_roles"]

POOL_HEADROOM = 4
"""Extra pooled connections beyond ``max_concurrency``: a slot released while its socket closes never waits."""


def bedrock_region(settings: Settings) -> str:
    """The Region Bedrock calls are made from: ``MMRAG_AWS_REGION``, else the AWS environment/config.

    Raises:
        ConfigError: no Region is configured anywhere.
    """
    region = aws_region(settings.aws_profile, settings.aws_region, feature="the bedrock profile")
    if not region:
        raise ConfigError(NO_REGION)
    return region


# An AWS host names its Region: bedrock-runtime.<region>.amazonaws.com, vpce-<id>.bedrock-runtime.<region>.vpce...
_HOST_REGION = re.compile(r"\.(?P<region>(?:[a-z]{2}-gov|[a-z]{2})-[a-z]+-\d+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$")


def endpoint_for(settings: Settings, region: str) -> str | None:
    """The ``bedrock-runtime`` endpoint URL for a client of ``region`` (None: AWS's default endpoint).

    ``MMRAG_BEDROCK_ENDPOINT_URL`` is one URL, or ``region=url`` pairs separated by commas. One URL whose host names
    a Region serves that Region only; one URL without a Region in its host (a proxy, the emulator) serves all.

    Raises:
        ConfigError: the configured endpoints do not serve ``region`` (the message says how to add one).
    """
    value = (settings.bedrock_endpoint_url or "").strip()
    if not value:
        return None
    if "=" in value.split("//", 1)[0]:
        pairs = dict(part.strip().split("=", 1) for part in value.split(",") if "=" in part)
        pairs = {k.strip(): v.strip() for k, v in pairs.items()}
        if region in pairs:
            return pairs[region] or None
        raise ConfigError(
            f"MMRAG_BEDROCK_ENDPOINT_URL has endpoints for {', '.join(sorted(pairs))} but not for {region}, where a "
            f"model is called (`mmrag models` shows which): add {region}=<its endpoint URL>, or {region}= for AWS's "
            "public endpoint"
        )
    match = _HOST_REGION.search(urlsplit(value).hostname or "")
    if match is not None and match["region"] != region:
        raise ConfigError(
            f"MMRAG_BEDROCK_ENDPOINT_URL ({value}) is an endpoint of {match['region']}, but a model is called in "
            f"{region} (`mmrag models` shows which): a client signs for {region} and that endpoint rejects it. Give "
            f"one endpoint per Region: MMRAG_BEDROCK_ENDPOINT_URL='{match['region']}={value},{region}=<endpoint of "
            f"{region}>' ({region}= for AWS's public endpoint)"
        )
    return value


@dataclass(frozen=True)
class BedrockRoles:
    """The id and Region each Bedrock role calls (see :func:`mmrag.providers.bedrock.catalog.resolve`)."""

    fast: Resolved
    strong: Resolved
    text_embedding: Resolved
    image_embedding: Resolved


def resolve_roles(settings: Settings, region: str | None = None) -> BedrockRoles:
    """The ids the Bedrock roles call from ``region`` (default :func:`bedrock_region`).

    Raises:
        ConfigError: no Region, a retired model, or a geo profile that the Region cannot call.
    """
    region = region or bedrock_region(settings)
    scope = settings.bedrock_inference_scope
    return BedrockRoles(
        fast=resolve(settings.fast_model, region, scope=scope),
        strong=resolve(settings.strong_model, region, scope=scope),
        text_embedding=resolve(settings.text_embedding_model, region, scope=scope),
        image_embedding=resolve(settings.image_embedding_model, region, scope=scope),
    )


def make_bedrock_client(
    settings: Settings,
    *,
    service: str = "bedrock-runtime",
    botocore_retries: bool = False,
    region: str | None = None,
    **client_config: Any,
) -> Any:
    """A boto3 client for Bedrock built from settings (profile, Region, endpoint URL, pool size, timeouts).

    Building it resolves credentials but sends no request.

    Args:
        settings: mmrag settings.
        service: ``bedrock-runtime`` (models) or ``bedrock`` (control plane; never gets the runtime endpoint URL).
        botocore_retries: let botocore retry (adaptive mode, ``max_retries`` retries) instead of mmrag's layer.
        region: the Region to call (default: ``MMRAG_AWS_REGION`` / the AWS config); a model that the configured
            Region does not offer is called in another one (:func:`resolve_roles`).
        **client_config: overrides of ``botocore.config.Config`` arguments (e.g. ``max_pool_connections``,
            ``read_timeout``, ``retries``).

    Raises:
        MissingDependencyError: boto3 is not installed.
        ConfigError: no credentials, no region, or an unknown AWS profile; the message says the fix.
    """
    try:
        from botocore.config import Config
        from botocore.exceptions import NoCredentialsError, NoRegionError
    except ImportError as exc:
        raise MissingDependencyError("boto3", "aws", feature="the bedrock profile") from exc

    attempts = settings.max_retries + 1 if botocore_retries else 1
    options: dict[str, Any] = {
        "max_pool_connections": max(settings.max_concurrency, 10) + POOL_HEADROOM,
        "read_timeout": settings.request_timeout,
        "connect_timeout": min(10.0, settings.request_timeout),
        "retries": {"mode": "adaptive" if botocore_retries else "standard", "total_max_attempts": attempts},
        "user_agent_extra": "mmrag",
    }
    options.update(client_config)
    session = aws_session(settings.aws_profile, settings.aws_region, feature="the bedrock profile")
    try:
        if session.get_credentials() is None:
            raise ConfigError(NO_CREDENTIALS)
        region_name = region or aws_region(settings.aws_profile, settings.aws_region, feature="the bedrock profile")
        if not region_name:
            raise ConfigError(NO_REGION)
        endpoint = endpoint_for(settings, region_name) if service == "bedrock-runtime" else None
        return session.client(service, region_name=region_name, endpoint_url=endpoint, config=Config(**options))
    except NoCredentialsError as exc:
        raise ConfigError(NO_CREDENTIALS) from exc
    except NoRegionError as exc:
        raise ConfigError(NO_REGION) from exc
