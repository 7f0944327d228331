"""Connecting to OpenSearch (basic auth, AWS SigV4 for domains and Serverless) and turning client errors into
:class:`~mmrag.errors.StoreError` with a hint. opensearch-py and boto3 are imported here, lazily."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from mmrag.errors import ConfigError, MissingDependencyError, StoreError

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

__all__ = ["client_url", "connect", "looks_serverless", "opensearch_errors", "require_opensearchpy"]

Auth = Literal["basic", "sigv4", "none"]
Service = Literal["es", "aoss"]


def require_opensearchpy() -> ModuleType:
    """The ``opensearchpy`` module, or MissingDependencyError naming the extra that installs it."""
    try:
        import opensearchpy
    except ImportError as e:
        raise MissingDependencyError("opensearch-py", "opensearch", "the OpenSearch vector index") from e
    return opensearchpy


def connect(
    url: str,
    *,
    auth: Auth = "basic",
    user: str | None = None,
    password: str | None = None,
    region: str | None = None,
    service: Service = "es",
    verify_certs: bool = True,
    timeout: float = 30,
    profile: str | None = None,
) -> OpenSearch:
    """An opensearch-py client for ``url``.

    Args:
        url: the endpoint, e.g. ``https://search-x.eu-west-1.es.amazonaws.com`` or ``http://localhost:9200``.
        auth: ``basic`` (``user``/``password``; none given means no auth header), ``sigv4`` (AWS credentials
            from ``boto3.Session()``: environment, profile, SSO or instance role) or ``none``.
        user: basic-auth user name.
        password: basic-auth password.
        region: AWS region for SigV4 when the URL does not name one (an AWS endpoint's own Region wins); default:
            :func:`mmrag._aws.aws_region` (``AWS_DEFAULT_REGION``, the profile's, then ``AWS_REGION``).
        service: ``es`` for an OpenSearch Service domain, ``aoss`` for OpenSearch Serverless (SigV4 only).
        verify_certs: verify the server's TLS certificate (turn off only for a local self-signed cluster).
        timeout: seconds per request.
        profile: named AWS profile for SigV4 (``MMRAG_AWS_PROFILE``), from the one shared session of
            :func:`mmrag._aws.aws_session`.

    Raises:
        MissingDependencyError: opensearch-py (or boto3, for SigV4) is not installed.
        ConfigError: the options do not fit together, or SigV4 finds no credentials or region.
    """
    opensearchpy = require_opensearchpy()
    if auth not in ("basic", "sigv4", "none"):
        raise ConfigError(f"OpenSearch auth must be basic, sigv4 or none, not {auth!r}")
    if service not in ("es", "aoss"):
        raise ConfigError(f"OpenSearch service must be es or aoss, not {service!r}")
    if service == "aoss" and auth != "sigv4":
        raise ConfigError("OpenSearch Serverless (service aoss) accepts only SigV4: set MMRAG_OPENSEARCH_AUTH=sigv4")
    options: dict[str, Any] = {"hosts": [url], "verify_certs": verify_certs, "timeout": timeout}
    if auth == "sigv4":
        # The endpoint's own Region signs: a domain or collection may live outside MMRAG_AWS_REGION.
        options["http_auth"] = _sigv4(opensearchpy, endpoint_region(url) or region, service, profile)
        # AWSV4SignerAuth is a requests auth hook, so it needs the requests-based connection class.
        options["connection_class"] = opensearchpy.RequestsHttpConnection
    elif auth == "basic" and (user or password):
        if not user:
            raise ConfigError("OpenSearch basic auth has a password but no user: set MMRAG_OPENSEARCH_USER")
        options["http_auth"] = (user, password or "")
    return opensearchpy.OpenSearch(**options)  # type: ignore[no-any-return]


def _sigv4(opensearchpy: ModuleType, region: str | None, service: str, profile: str | None = None) -> Any:
    from mmrag._aws import aws_session

    session = aws_session(profile, region, feature="SigV4 auth for OpenSearch")
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            "No AWS credentials found for SigV4: run `aws configure` (or set AWS_PROFILE), "
            "or use MMRAG_OPENSEARCH_AUTH=basic"
        )
    from mmrag._aws import aws_region

    region = region or aws_region(profile, None, feature="SigV4 auth for OpenSearch")
    if not region:
        raise ConfigError("No AWS region for SigV4: set MMRAG_AWS_REGION or AWS_REGION (or AWS_DEFAULT_REGION)")
    return opensearchpy.AWSV4SignerAuth(credentials, region, service)


def endpoint_region(url: str) -> str | None:
    """The Region an AWS OpenSearch endpoint names (``<id>.<region>.aoss.amazonaws.com``,
    ``search-<domain>-<hash>.<region>.es.amazonaws.com``); None for other hosts."""
    from urllib.parse import urlsplit

    host = (urlsplit(url if "//" in url else f"https://{url}").hostname or "").split(".")
    if len(host) >= 5 and host[-3] in ("aoss", "es") and host[-2:] == ["amazonaws", "com"]:
        return host[-4]
    return None


def client_url(client: Any) -> str:
    """The first host of a client, for messages (``?`` if it cannot be told)."""
    try:
        conn = client.transport.connection_pool.connections[0]
        return str(conn.host)
    except (AttributeError, IndexError, TypeError):
        return "?"


def looks_serverless(client: Any) -> bool:
    """Whether a client talks to OpenSearch Serverless: an ``*.aoss.amazonaws.com`` host or an ``aoss`` signer."""
    try:
        connections = list(client.transport.connection_pool.connections)
    except (AttributeError, TypeError):
        return False
    for conn in connections:
        if ".aoss." in str(getattr(conn, "host", "")):
            return True
        signer = getattr(getattr(conn, "session", None), "auth", None)
        if getattr(signer, "service", None) == "aoss":
            return True
    return False


def _hint(error: Exception, opensearchpy: ModuleType) -> str:
    exc = opensearchpy.exceptions
    if isinstance(error, exc.ConnectionTimeout):  # a subclass of ConnectionError: a slow cluster, not a down one
        return "the cluster did not answer in time: it may be busy; use a longer timeout or smaller batches"
    if isinstance(error, exc.ConnectionError):
        return "is the cluster up and the URL right (MMRAG_OPENSEARCH_URL)?"
    if isinstance(error, exc.AuthenticationException | exc.AuthorizationException):
        return (
            "check the credentials: MMRAG_OPENSEARCH_USER/PASSWORD for basic auth, or the AWS identity and the "
            "domain's access policy (Serverless: the data access policy) for SigV4"
        )
    if isinstance(error, exc.NotFoundError):
        return "the index is missing: it is created on first use, so check MMRAG_COLLECTION and the URL"
    if isinstance(error, exc.RequestError):
        return "the cluster refused the request: does it have the k-NN plugin, and did mmrag create this index?"
    status = getattr(error, "status_code", None)
    if status == 429:
        return "the cluster is overloaded: retry later, or lower batch_size"
    if isinstance(status, int) and status >= 500:
        return "the cluster failed to answer: retry later, and check its health"
    return "check the cluster and the request above"


def _describe(error: Exception, opensearchpy: ModuleType) -> str:
    if isinstance(error, opensearchpy.exceptions.TransportError) and not isinstance(
        error, opensearchpy.exceptions.ConnectionError
    ):
        reason = error.error
        info = error.info
        if isinstance(info, dict) and isinstance(info.get("error"), dict):
            reason = f"{info['error'].get('type')}: {info['error'].get('reason')}"
        return f"HTTP {error.status_code} {reason}"
    return f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def opensearch_errors(action: str, client: Any, index: str) -> Iterator[None]:
    """Wrap opensearch-py errors raised inside as StoreError naming the action, URL and index, with a hint."""
    opensearchpy = require_opensearchpy()
    try:
        yield
    except (opensearchpy.exceptions.OpenSearchException, opensearchpy.exceptions.ImproperlyConfigured) as e:
        raise StoreError(
            f"OpenSearch {action} failed on index {index!r} at {client_url(client)}: "
            f"{_describe(e, opensearchpy)}; {_hint(e, opensearchpy)}"
        ) from e
