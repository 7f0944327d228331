"""The one ``boto3.Session`` every AWS client of a process comes from (Bedrock, S3, OpenSearch SigV4).

``MMRAG_AWS_PROFILE`` and ``MMRAG_AWS_REGION`` therefore apply to every AWS service mmrag talks to, not only to
Bedrock, and :func:`aws_region` is the one Region resolution every client uses (Bedrock, S3, OpenSearch SigV4):
``MMRAG_AWS_REGION``, else ``AWS_DEFAULT_REGION`` / the profile's ``region``, else ``AWS_REGION``.
Sessions are cached per (profile, region, AWS environment variables): botocore loads its data files and
resolves credentials once, and a changed environment (another profile, new keys) gets a new session. boto3 is
imported inside the functions.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Any

from mmrag.errors import ConfigError, MissingDependencyError

__all__ = ["NO_CREDENTIALS", "NO_REGION", "aws_region", "aws_session", "has_local_credentials", "session_region"]

NO_CREDENTIALS = "No AWS credentials found: run `aws configure` or set MMRAG_PROFILE=local"
NO_REGION = "No AWS region configured: set MMRAG_AWS_REGION or AWS_REGION, or run `aws configure`"
_LOCK = threading.Lock()


def aws_session(profile: str | None = None, region: str | None = None, *, feature: str = "AWS") -> Any:
    """The shared ``boto3.Session(profile_name=profile, region_name=region)``.

    Raises:
        MissingDependencyError: boto3 is not installed.
        ConfigError: the named profile does not exist (the message says how to create it).
    """
    try:
        import boto3  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("boto3", "aws", feature=feature) from exc
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    with _LOCK:  # boto3 sessions are not safe to create concurrently
        return _session(profile, region, env)


@functools.lru_cache(maxsize=16)
def _session(profile: str | None, region: str | None, env: tuple[tuple[str, str], ...]) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise ConfigError(
            f"AWS profile {profile!r} not found: check MMRAG_AWS_PROFILE or run `aws configure --profile {profile}`"
        ) from exc


def has_local_credentials(profile: str | None = None) -> bool:
    """Whether credentials are configured without asking the network: environment, ``~/.aws`` files, SSO,
    process and web-identity providers; the EC2 instance and container role providers (HTTP calls) are skipped.
    """
    import botocore.session
    from botocore.exceptions import BotoCoreError

    session = botocore.session.Session(profile=profile)
    resolver = session.get_component("credential_provider")
    for name in ("iam-role", "container-role"):
        with contextlib.suppress(KeyError, ValueError):  # provider names differ across botocore versions
            resolver.remove(name)
    try:
        return resolver.load_credentials() is not None
    except BotoCoreError:
        return False


def session_region(session: Any) -> str | None:
    """The session's Region (explicit, AWS_DEFAULT_REGION, the profile's), else AWS_REGION (which the AWS CLI and
    SDKs for other languages read, but botocore does not); None if none."""
    region = getattr(session, "region_name", None) or os.environ.get("AWS_REGION")
    return str(region) if region else None


def aws_region(profile: str | None = None, region: str | None = None, *, feature: str = "AWS") -> str | None:
    """The Region every AWS client of mmrag is built for: ``region`` (``MMRAG_AWS_REGION``) if given, else the
    session's (``AWS_DEFAULT_REGION``, the profile's), else ``AWS_REGION``; None when nothing names one."""
    if region:
        return region
    return session_region(aws_session(profile, None, feature=feature))
