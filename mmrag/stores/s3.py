"""Raw objects in an S3 bucket (``pip install 'mmrag[aws]'``).

Keys are the content-addressed keys of :func:`mmrag.stores.objects.object_key`, stored under a prefix::

    store = S3ObjectStore("my-bucket", prefix="mmrag/")
    key = store.put(png_bytes, "image/png")   # s3://my-bucket/mmrag/sha256/3f/3fa9....png
    store.uri(key)                            # presigned GET URL, valid for presign_expiry seconds

boto3 is imported on first use, so building the store costs nothing and needs no credentials.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mmrag.errors import ConfigError, MissingDependencyError, StoreError
from mmrag.stores.objects import ObjectStore, mime_type_for_key, object_key, validate_key

__all__ = ["S3ObjectStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request
_MAX_PRESIGN = 604_800  # SigV4 presigned URLs live at most 7 days
_MISSING = ("NoSuchKey", "404", "NotFound")
_ALREADY_THERE = ("PreconditionFailed", "412")
# A conditional PUT racing another write of the same key; S3 asks to retry (the retry then answers 412 or 200).
_CONFLICT = ("ConditionalRequestConflict", "409")
_DENIED = (
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
)


class S3ObjectStore(ObjectStore):
    """Objects in ``s3://bucket/prefix``; a ``BaseStore[str, bytes]``.

    ``mget``, ``mset``, ``exists`` and ``put_many`` run their requests concurrently on up to ``max_workers``
    threads; results keep the order of the keys. The bucket must exist.

    Args:
        bucket: the bucket name.
        prefix: prepended to every key (a ``/`` is added if missing); ``""`` for the bucket root.
        client: a boto3 S3 client to use; by default one is built on first use from ``endpoint_url``, ``region``
            and the usual AWS credential chain.
        endpoint_url: S3-compatible endpoint (MinIO, moto, a VPC endpoint); ignored when ``client`` is given.
        region: AWS region of the bucket; ignored when ``client`` is given.
        profile: named AWS profile (``MMRAG_AWS_PROFILE``); the client comes from the one shared
            ``boto3.Session`` of :func:`mmrag._aws.aws_session`. Ignored when ``client`` is given.
        presign_expiry: seconds a link from :meth:`uri` stays valid (1 to 604800).
        max_workers: concurrent requests per batch call; the client built here gets a connection pool this big.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "mmrag/",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        presign_expiry: int = 3600,
        max_workers: int = 16,
        profile: str | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ConfigError(f"invalid S3 bucket name {bucket!r}: set MMRAG_S3_BUCKET to a bucket name (no s3://)")
        if not 1 <= presign_expiry <= _MAX_PRESIGN:
            raise ConfigError(f"presign_expiry must be 1..{_MAX_PRESIGN} seconds (SigV4 limit), got {presign_expiry}")
        if max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
        if prefix:
            prefix = prefix if prefix.endswith("/") else prefix + "/"
            try:
                validate_key(prefix[:-1])  # no leading '/', '..' or empty segments in the prefix either
            except StoreError as e:
                raise ConfigError(f"invalid S3 prefix {prefix!r}: use something like 'mmrag/' ({e})") from e
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self.profile = profile
        self.presign_expiry = presign_expiry
        self.max_workers = max_workers
        self._client = client
        self._listable: bool | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ObjectStore('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self) -> Any:
        """The boto3 S3 client, built on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        try:
            from botocore.config import Config
        except ImportError as e:
            raise MissingDependencyError("boto3", "aws", "S3ObjectStore") from e
        from mmrag._aws import aws_region, aws_session
        config = Config(
            # SigV4 for presigned URLs too; a pool as big as our thread pool so no request waits for a connection.
            signature_version="s3v4",
            max_pool_connections=self.max_workers,
            retries={"mode": "standard", "max_attempts": 5},
        )
        session = aws_session(self.profile, self.region, feature="S3ObjectStore")
        # One Region resolution for every client: without it, AWS_REGION alone left S3 on us-east-1 (presigned
        # links signed for the wrong Region fail for buckets elsewhere).
        region = aws_region(self.profile, self.region, feature="S3ObjectStore")
        return session.client("s3", endpoint_url=self.endpoint_url, region_name=region, config=config)

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    # -- BaseStore -------------------------------------------------------------------------------------------------

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The objects under ``keys`` (fetched concurrently); ``None`` where there is none."""
        return self._each(self._get, [self._full(k) for k in keys])

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        """PUT each object (concurrently), with a ``Content-Type`` from the key's extension; overwrites."""
        pairs = [(self._full(k), v) for k, v in key_value_pairs]
        self._each(lambda kv: self._put(kv[0], kv[1], only_new=False), pairs)

    def mdelete(self, keys: Sequence[str]) -> None:
        """Delete the objects under ``keys`` with DeleteObjects, 1000 keys per request; missing keys are fine."""
        full = list(dict.fromkeys(self._full(k) for k in keys))
        for start in range(0, len(full), _DELETE_BATCH):
            batch = full[start : start + _DELETE_BATCH]
            try:
                resp = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except _sdk_errors() as e:
                raise self._error("delete", batch[0], e) from e
            errors = resp.get("Errors") or []
            if errors:
                # DeleteObjects answers 200 and lists per-key failures; a silent partial delete would be worse.
                code, key = str(errors[0].get("Code", "")), errors[0].get("Key", "")
                hint = _hint(code, self.bucket)
                raise StoreError(
                    f"could not delete {len(errors)} of {len(batch)} objects from s3://{self.bucket}/, "
                    f"first {key!r}: {code} {errors[0].get('Message', '')}".rstrip()
                    + (f"; {hint}" if hint else "")
                )

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Every key under the store's prefix, or those starting with ``prefix`` (ListObjectsV2, paginated)."""
        paginator = self.client.get_paginator("list_objects_v2")
        start = len(self.prefix)
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + (prefix or ""))
        try:
            for page in pages:
                for obj in page.get("Contents") or ():
                    yield obj["Key"][start:]
        except _sdk_errors() as e:
            raise self._error("list", self.prefix + (prefix or ""), e) from e

    # -- ObjectStore -----------------------------------------------------------------------------------------------

    def uri(self, key: str) -> str:
        """A presigned GET URL for the object, valid for ``presign_expiry`` seconds (signed locally, no request)."""
        full = self._full(key)
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=self.presign_expiry
            )
        except _sdk_errors() as e:
            raise self._error("presign", full, e) from e
        return url

    def exists(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key holds an object (HEAD requests, concurrently)."""
        return self._each(self._head, [self._full(k) for k in keys])

    def put_many(self, items: Sequence[tuple[bytes, str | None]]) -> list[str]:
        """Store each ``(data, mime_type)`` under its content-addressed key; existing objects are left alone.

        One conditional PUT (``If-None-Match: *``) per distinct key instead of HEAD-then-PUT: new objects take one
        request instead of two, existing ones are answered 412 and never overwritten (no new versions in
        versioned buckets, no duplicate event notifications). A 409 (a concurrent conditional write of the same
        key) is retried. Stores that ignore the condition simply overwrite with identical bytes, which is still
        correct because the key is the hash of the bytes.
        """
        keys = [object_key(data, mime) for data, mime in items]
        todo = dict(zip((self.prefix + k for k in keys), (data for data, _ in items), strict=True))
        self._each(lambda kv: self._put(kv[0], kv[1], only_new=True), list(todo.items()))
        return keys

    # -- requests --------------------------------------------------------------------------------------------------

    def _get(self, full: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except _sdk_errors() as e:
            if _code(e) in _MISSING:
                return None
            if _code(e) in ("AccessDenied", "403") and not self._can_list():
                # S3 answers 403 instead of 404 for a missing key when the caller lacks s3:ListBucket (S3 docs,
                # GetObject "Permissions"); the key is probably missing, but say which permission is absent.
                logger.warning("s3://%s/%s: 403 without s3:ListBucket, treated as missing; grant s3:ListBucket on "
                               "the bucket to tell missing objects from denied ones", self.bucket, full)
                return None
            raise self._error("read", full, e) from e
        return data

    def _put(self, full: str, value: bytes, *, only_new: bool) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise StoreError(f"objects are bytes, not {type(value).__name__} (key {full!r})")
        extra = {"IfNoneMatch": "*"} if only_new else {}
        for attempt in range(3):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=full, Body=bytes(value), ContentType=mime_type_for_key(full), **extra
                )
                return
            except _sdk_errors() as e:
                code = _code(e)
                if only_new and code in _ALREADY_THERE:
                    logger.debug("s3://%s/%s already stored", self.bucket, full)
                    return
                if not (only_new and code in _CONFLICT and attempt < 2):
                    raise self._error("write", full, e) from e

    def _head(self, full: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=full)
        except _sdk_errors() as e:
            # HEAD has no body, so a missing bucket is a bare 404 too; a GET or PUT will name it.
            if _code(e) in _MISSING:
                return False
            if _code(e) in ("AccessDenied", "403", "Forbidden") and not self._can_list():
                logger.warning("s3://%s/%s: 403 without s3:ListBucket, treated as missing; grant s3:ListBucket on "
                               "the bucket to tell missing objects from denied ones", self.bucket, full)
                return False
            raise self._error("check", full, e) from e
        return True

    def _can_list(self) -> bool:
        """Whether the caller may list the bucket: without ``s3:ListBucket`` a missing key answers 403, not 404."""
        if self._listable is None:
            try:
                self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
                self._listable = True
            except _sdk_errors() as e:
                if _code(e) not in _DENIED:
                    raise self._error("list", self.prefix, e) from e
                self._listable = False
        return self._listable

    def _each(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1 or self.max_workers == 1:
            return [fn(item) for item in items]
        _ = self.client  # build the client once, before the threads race for it
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items)), thread_name_prefix="mmrag-s3") as ex:
            # map re-raises the first failure in order; the pool's exit waits for the rest, so none is left running.
            return list(ex.map(fn, items))

    def _error(self, action: str, full_key: str, e: Exception) -> StoreError:
        code = _code(e)
        where = f"s3://{self.bucket}/{full_key}"
        detail = f"{code}: {e}" if code and code not in str(e) else str(e)
        hint = _hint(code, self.bucket) or _transport_hint(e, self.endpoint_url)
        return StoreError(f"cannot {action} {where}: {detail}" + (f"; {hint}" if hint else ""))


@functools.cache
def _sdk_errors() -> tuple[type[Exception], ...]:
    """botocore's two exception roots, caught without importing botocore at module import; none if absent."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return (BotoCoreError, ClientError)


def _code(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _hint(code: str, bucket: str) -> str:
    if code == "NoSuchBucket":
        return f"create the bucket {bucket!r} (aws s3 mb s3://{bucket}) or set MMRAG_S3_BUCKET to an existing one"
    if code in _DENIED:
        return (
            "check your AWS credentials (aws configure, MMRAG_AWS_PROFILE) and that they allow s3:GetObject, "
            "s3:PutObject, s3:DeleteObject and s3:ListBucket on this bucket"
        )
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
        return "the bucket is in another region: set AWS_REGION (or region=) to the bucket's region"
    return ""


def _transport_hint(e: Exception, endpoint_url: str | None) -> str:
    name = type(e).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or set MMRAG_PROFILE=local"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        target = endpoint_url or "S3"
        return f"could not reach {target}: check the network or MMRAG_S3_ENDPOINT_URL"
    return ""
