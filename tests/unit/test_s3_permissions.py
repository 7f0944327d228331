"""S3 answers 403 instead of 404 for a missing key when the caller lacks s3:ListBucket (S3 GetObject/HeadObject
"Permissions"): responses stubbed with botocore's Stubber on a real boto3 client (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from mmrag.errors import StoreError

boto3 = pytest.importorskip("boto3")
stub = pytest.importorskip("botocore.stub")


def _store() -> tuple[Any, Any]:
    from mmrag.stores.s3 import S3ObjectStore

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return S3ObjectStore("bucket", client=client, max_workers=1), client


def test_403_without_list_bucket_means_missing(caplog: pytest.LogCaptureFixture) -> None:
    store, client = _store()
    with stub.Stubber(client) as stubber:
        stubber.add_client_error("head_object", service_error_code="403", http_status_code=403)
        stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied", http_status_code=403)
        stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        assert store.exists(["a" * 64 + ".png"]) == [False]
        assert store.mget(["b" * 64 + ".png"]) == [None]
    assert "s3:ListBucket" in caplog.text


def test_403_with_list_bucket_is_a_denied_read_naming_the_permissions() -> None:
    store, client = _store()
    with stub.Stubber(client) as stubber:
        stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        stubber.add_response("list_objects_v2", {"KeyCount": 0, "Name": "bucket"})
        with pytest.raises(StoreError, match="s3:GetObject"):
            store.mget(["c" * 64 + ".png"])
