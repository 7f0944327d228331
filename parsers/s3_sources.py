"""Sources in S3: ``mmrag ingest s3://bucket/prefix/`` (``pip install 'mmrag[aws]'``).

- A prefix (``s3://bucket/reports/``, ending with ``/``, or a bucket alone) is listed with pagination
  (``ListObjectsV2``, 1,000 keys a page); the keys with a supported suffix are kept, in key order, after the
  ``--include`` / ``--exclude`` globs (matched against the key relative to the prefix, ``**`` across folders).
- A key (``s3://bucket/reports/q3.pdf``) is one source.
- An object's fingerprint is its ETag and size (``HeadObject``): an unchanged object is skipped without being
  downloaded. Reading it is one ``GetObject``, streamed into memory up to the per-source size cap.

The client is boto3's default: credentials, region and endpoint from the standard AWS configuration
(``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL_S3``), as on a Ray worker; ``MMRAG_S3_ENDPOINT_URL``, when
set, is used for sources too (MinIO, a VPC endpoint).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Sequence
from typing import Any

from mmrag.elements import Blob, content_hash
from mmrag.errors import MissingDependencyError, ParseError, SourceNotFoundError

__all__ = ["expand_s3", "is_s3", "load_s3_blob", "s3_fingerprint", "split_s3"]


def is_s3(source: str) -> bool:
    return source.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); the key may be empty or a prefix."""
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ParseError(uri, "an S3 source is s3://BUCKET/KEY or s3://BUCKET/PREFIX/")
    return bucket, key


@functools.lru_cache(maxsize=4)
def _client(endpoint_url: str | None = None) -> Any:
    try:
        import boto3
    except ImportError as e:
        raise MissingDependencyError("boto3", "aws", feature="s3:// sources") from e
    return boto3.client("s3", endpoint_url=endpoint_url)


def _aws_error(uri: str, e: Exception) -> ParseError:
    kind = type(e).__name__
    if kind in ("NoCredentialsError", "PartialCredentialsError"):
        return ParseError(uri, "no AWS credentials found: run `aws configure`, or set AWS_PROFILE (or "
                               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) on every machine that reads the bucket")
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return ParseError(uri, "cannot reach S3: check the network, AWS_REGION and MMRAG_S3_ENDPOINT_URL")
    code = getattr(e, "response", {}).get("Error", {}).get("Code", kind)
    if code in ("NoSuchKey", "404", "NoSuchBucket"):
        return SourceNotFoundError(uri, f"no such {'bucket' if code == 'NoSuchBucket' else 'object'} in S3")
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return ParseError(uri, "access denied by S3: the role needs s3:GetObject on the object (and s3:ListBucket on "
                               "the bucket to list a prefix)")
    return ParseError(uri, f"S3 failed: {code}")


def _object(uri: str) -> tuple[str, str]:
    """(bucket, key) of one object; a prefix left as given by :func:`expand_s3` means it held nothing to read."""
    bucket, key = split_s3(uri)
    if not key or key.endswith("/"):
        raise ParseError(uri, "the prefix holds no supported files")
    return bucket, key


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(relative.rsplit("/", 1)[-1], p)
               for p in patterns)


def expand_s3(uri: str, suffixes: frozenset[str], include: Sequence[str] = (), exclude: Sequence[str] = (),
              endpoint_url: str | None = None) -> list[str]:
    """The sources an ``s3://`` argument stands for (see the module docstring); a prefix with none is kept as
    given, so that ingesting it reports the reason."""
    bucket, key = split_s3(uri)
    if key and not key.endswith("/"):
        return [uri]
    client = _client(endpoint_url)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    except Exception as e:  # botocore errors: wrapped with the reason, whatever the transport
        raise _aws_error(uri, e) from e
    out = []
    for k in sorted(keys):
        relative = k[len(key):]
        if k.endswith("/") or not any(k.lower().endswith(s) for s in suffixes):
            continue
        if include and not _matches(relative, include):
            continue
        if exclude and _matches(relative, exclude):
            continue
        out.append(f"s3://{bucket}/{k}")
    return out or [uri]


def s3_fingerprint(uri: str, endpoint_url: str | None = None) -> str:
    """The object's identity without its bytes: ETag and size (``HeadObject``)."""
    bucket, key = _object(uri)
    client = _client(endpoint_url)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as e:
        raise _aws_error(uri, e) from e
    return content_hash("s3-object", str(head.get("ETag", "")), str(head.get("ContentLength", "")))


def load_s3_blob(uri: str, max_bytes: int, endpoint_url: str | None = None) -> Blob:
    """Download one object (``GetObject``) into a :class:`Blob`; objects over ``max_bytes`` are refused."""
    from mmrag.parsers.mime import sniff_mime

    bucket, key = _object(uri)
    client = _client(endpoint_url)
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        size = int(response.get("ContentLength") or 0)
        if size > max_bytes:
            response["Body"].close()
            raise ParseError(uri, f"the object is {size:,} bytes, over the {max_bytes:,}-byte cap per source "
                                  "(max_source_bytes): raise MMRAG_MAX_SOURCE_BYTES")
        data = response["Body"].read(max_bytes + 1)
    except ParseError:
        raise
    except Exception as e:
        raise _aws_error(uri, e) from e
    name = key.rsplit("/", 1)[-1]
    return Blob(data=data, source=uri, mime_type=sniff_mime(data, name=name), base=None)
