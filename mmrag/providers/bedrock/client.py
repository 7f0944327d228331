"""The boto3 ``bedrock-runtime`` client every Bedrock provider shares.

Who retries: mmrag's own layer (:mod:`mmrag.providers._concurrency`) does, for every call the providers make.
botocore's retries are therefore off by default (``total_max_attempts=1``): with both on, attempts would multiply
(botocore's N x ours M) and the adaptive limiter would never see the throttles botocore swallowed. Pass
``botocore_retries=True`` for a client used by code outside that layer (e.g. a chat model invoked directly in an
LCEL chain); botocore's ``adaptive`` mode then retries up to ``max_retries`` times.
"""

from __future__ import annotations

from typing import Any

from mmrag.config import Settings
from mmrag.errors import ConfigError, MissingDependencyError

__all__ = ["NO_CREDENTIALS", "POOL_HEADROOM", "make_bedrock_client"]

NO_CREDENTIALS = "No AWS credentials found: run `aws configure` or set MMRAG_PROFILE=local"
POOL_HEADROOM = 4
"""Extra pooled connections beyond ``max_concurrency``: a slot released while its socket closes never waits."""


def make_bedrock_client(
    settings: Settings,
    *,
    service: str = "bedrock-runtime",
    botocore_retries: bool = False,
    **client_config: Any,
) -> Any:
    """A boto3 client for Bedrock built from settings (region, profile, endpoint URL, pool size, timeouts).

    Building it resolves credentials (botocore does so on client creation) but sends no request.

    Args:
        settings: mmrag settings.
        service: ``bedrock-runtime`` (models) or ``bedrock`` (control plane).
        botocore_retries: let botocore retry (adaptive mode, ``max_retries`` retries) instead of mmrag's layer.
        **client_config: overrides of ``botocore.config.Config`` arguments (e.g. ``max_pool_connections``,
            ``read_timeout``, ``retries``).

    Raises:
        MissingDependencyError: boto3 is not installed.
        ConfigError: no credentials, no region, or an unknown AWS profile; the message says the fix.
    """
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import NoCredentialsError, NoRegionError, ProfileNotFound
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
    try:
        session = boto3.Session(profile_name=settings.aws_profile, region_name=settings.aws_region)
        if session.get_credentials() is None:
            raise ConfigError(NO_CREDENTIALS)
        return session.client(service, endpoint_url=settings.bedrock_endpoint_url, config=Config(**options))
    except ProfileNotFound as exc:
        raise ConfigError(
            f"AWS profile {settings.aws_profile!r} not found: check MMRAG_AWS_PROFILE or run `aws configure "
            f"--profile {settings.aws_profile}`"
        ) from exc
    except NoCredentialsError as exc:
        raise ConfigError(NO_CREDENTIALS) from exc
    except NoRegionError as exc:
        raise ConfigError(
            "No AWS region configured: set MMRAG_AWS_REGION or AWS_REGION, or run `aws configure`"
        ) from exc
