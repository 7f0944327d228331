"""S3ObjectStore against moto's S3 server on 127.0.0.1, through the real boto3 client."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from mmrag.errors import ConfigError, MissingDependencyError, StoreError
from mmrag.stores.objects import object_key
from mmrag.stores.s3 import S3ObjectStore
from mmrag.testing.s3 import MotoS3Server

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
_bucket_ids = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[MotoS3Server]:
    with MotoS3Server() as s3:
        yield s3


@pytest.fixture
def client(server: MotoS3Server) -> Any:
    return server.client()


@pytest.fixture
def bucket(client: Any) -> str:
    # moto's state is per process: a fresh bucket per test keeps tests independent.
    name = f"mmrag-test-{next(_bucket_ids)}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def calls(client: Any) -> Counter[str]:
    """S3 operations the client sent, counted through botocore's event hooks (observation only)."""
    seen: Counter[str] = Counter()

    def count(model: Any, **kwargs: Any) -> None:
        seen[model.name] += 1

    client.meta.events.register("before-call.s3", count)
    return seen


def test_round_trip_under_the_prefix_with_content_type(client: Any, bucket: str) -> None:
    store = S3ObjectStore(bucket, "runs/one", client=client)  # the missing '/' is added
    assert store.prefix == "runs/one/"
    csv_key = "tables/t1.csv"
    store.mset([(object_key(PNG, "image/png"), PNG), (csv_key, b"a,b\n1,2\n"), ("raw/blob", b"\x00\x01")])

    assert store.mget([csv_key, "nope/missing.png", object_key(PNG, "image/png")]) == [b"a,b\n1,2\n", None, PNG]
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(
        ["runs/one/" + object_key(PNG, "image/png"), "runs/one/tables/t1.csv", "runs/one/raw/blob"]
    )
    head = client.head_object(Bucket=bucket, Key="runs/one/" + object_key(PNG, "image/png"))
    assert head["ContentType"] == "image/png"
    assert client.head_object(Bucket=bucket, Key="runs/one/tables/t1.csv")["ContentType"] == "text/csv"
    assert client.head_object(Bucket=bucket, Key="runs/one/raw/blob")["ContentType"] == "application/octet-stream"

    assert sorted(store.yield_keys()) == sorted([object_key(PNG, "image/png"), csv_key, "raw/blob"])
    assert list(store.yield_keys(prefix="tables/")) == [csv_key]
    assert store.exists([csv_key, "tables/none.csv"]) == [True, False]

    store.mdelete([csv_key, "never/there.bin"])
    assert store.mget([csv_key]) == [None]
    # Another prefix in the same bucket is another store.
    assert list(S3ObjectStore(bucket, "runs/two/", client=client).yield_keys()) == []


def test_put_is_content_addressed_and_never_overwrites(client: Any, bucket: str, calls: Counter[str]) -> None:
    # With versioning on, every overwrite would leave another version behind: count them.
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = S3ObjectStore(bucket, client=client)
    key = store.put(PNG, "image/png")
    assert key == object_key(PNG, "image/png")

    calls.clear()
    csv_key = object_key(b"x,y\n", "text/csv")
    assert store.put_many([(PNG, "image/png"), (b"x,y\n", "text/csv"), (PNG, "image/png")]) == [key, csv_key, key]
    assert store.put(PNG, "image/png") == key
    # One conditional PUT per distinct key and call, nothing else: no HEAD round trips.
    assert calls == Counter({"PutObject": 3})
    versions = client.list_object_versions(Bucket=bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(["mmrag/" + key, "mmrag/" + csv_key])
    assert store.mget([key, csv_key]) == [PNG, b"x,y\n"]


def test_presigned_url_serves_the_bytes(client: Any, bucket: str) -> None:
    store = S3ObjectStore(bucket, client=client, presign_expiry=120)
    key = store.put(PNG, "image/png")
    url = store.uri(key)
    assert url.startswith(f"{client.meta.endpoint_url}/{bucket}/mmrag/{key}?")
    assert "X-Amz-Expires=120" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == PNG
        assert resp.headers["Content-Type"] == "image/png"


def test_missing_bucket_is_a_store_error_with_the_fix(client: Any) -> None:
    store = S3ObjectStore("mmrag-no-such-bucket", client=client)
    for call in (
        lambda: store.mget(["a.png"]),
        lambda: store.mset([("a.png", b"x")]),
        lambda: list(store.yield_keys()),
    ):
        with pytest.raises(StoreError, match="NoSuchBucket") as info:
            call()
        assert "s3://mmrag-no-such-bucket/" in str(info.value)
        assert "create the bucket" in str(info.value) and "MMRAG_S3_BUCKET" in str(info.value)
    with pytest.raises(StoreError, match="create the bucket"):
        store.put(PNG, "image/png")


def test_thousands_of_keys_paginate_and_delete_in_batches(client: Any, bucket: str, calls: Counter[str]) -> None:
    store = S3ObjectStore(bucket, client=client)
    keys = [f"many/{i:05d}.txt" for i in range(1001)]
    store.mset([(k, k.encode()) for k in keys])
    store.mset([("keep/me.txt", b"keep")])

    calls.clear()
    assert sorted(store.yield_keys(prefix="many/")) == keys
    assert calls["ListObjectsV2"] == 2  # 1000 per page at most

    calls.clear()
    store.mdelete(keys + keys[:10])  # duplicates are harmless
    assert calls == Counter({"DeleteObjects": 2})
    assert list(store.yield_keys()) == ["keep/me.txt"]


def test_concurrent_mget_keeps_the_order_of_the_keys(client: Any, bucket: str) -> None:
    store = S3ObjectStore(bucket, client=client, max_workers=8)
    payloads = {f"o/{i:03d}.bin": bytes([i % 256]) * (1 + (i * 37) % 5000) for i in range(64)}
    store.mset(list(payloads.items()))

    in_flight, peak, lock = 0, 0, threading.Lock()

    def start(**kwargs: Any) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)

    def done(**kwargs: Any) -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    client.meta.events.register("before-call.s3.GetObject", start)
    client.meta.events.register("after-call.s3.GetObject", done)
    order = list(reversed(payloads)) + ["o/missing.bin"] + list(payloads)[:5]
    got = store.mget(order)
    assert got == [payloads.get(k) for k in order]
    assert 1 < peak <= 8  # requests overlapped, and no more than max_workers at once


def test_async_methods_from_base_store(client: Any, bucket: str) -> None:
    store = S3ObjectStore(bucket, client=client)

    async def run() -> tuple[list[bytes | None], list[str]]:
        await store.amset([("a/1.txt", b"1"), ("a/2.txt", b"2")])
        got = await store.amget(["a/2.txt", "a/3.txt", "a/1.txt"])
        keys = [k async for k in store.ayield_keys(prefix="a/")]
        await store.amdelete(["a/1.txt"])
        return got, keys

    got, keys = asyncio.run(run())
    assert got == [b"2", None, b"1"]
    assert sorted(keys) == ["a/1.txt", "a/2.txt"]
    assert store.mget(["a/1.txt", "a/2.txt"]) == [None, b"2"]


def test_unsafe_keys_are_refused_before_any_request(client: Any, bucket: str, calls: Counter[str]) -> None:
    store = S3ObjectStore(bucket, client=client)
    for key in ("../x", "/abs", "a//b", "a\\b"):
        with pytest.raises(StoreError, match="invalid object key"):
            store.mget([key])
        with pytest.raises(StoreError, match="invalid object key"):
            store.mset([(key, b"x")])
    assert not calls


def test_store_built_from_endpoint_url(server: MotoS3Server, client: Any, bucket: str, monkeypatch: Any) -> None:
    for name, value in server.environ().items():
        if name.startswith("AWS_") and name != "AWS_ENDPOINT_URL_S3":
            monkeypatch.setenv(name, value)
    store = S3ObjectStore(bucket, endpoint_url=server.endpoint_url, region="us-east-1")
    key = store.put(b"via endpoint_url", "text/plain")
    assert client.get_object(Bucket=bucket, Key="mmrag/" + key)["Body"].read() == b"via endpoint_url"
    with urllib.request.urlopen(store.uri(key), timeout=10) as resp:
        assert resp.read() == b"via endpoint_url"


def test_server_stops_on_exit() -> None:
    with MotoS3Server() as s3:
        url = s3.endpoint_url
        s3.client().list_buckets()
    with pytest.raises(RuntimeError, match="not running"):
        _ = s3.endpoint_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/", timeout=2)


# -- no server needed -----------------------------------------------------------------------------------------------


def test_constructing_the_store_imports_no_sdk() -> None:
    code = (
        "import sys; from mmrag.stores.s3 import S3ObjectStore; s = S3ObjectStore('b', presign_expiry=60); "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an install without mmrag[aws] looks like
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[aws\]'"):
        S3ObjectStore("bucket").mget(["a", "b"])


@pytest.mark.parametrize(
    "kwargs",
    [{"bucket": ""}, {"bucket": "s3://b"}, {"presign_expiry": 0}, {"presign_expiry": 604_801}, {"prefix": "/abs/"}],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"bucket": "bucket", **kwargs}
    with pytest.raises(ConfigError):
        S3ObjectStore(**args)
