"""One Region resolution for every AWS client (issue 24, item 2): ``AWS_REGION`` alone reaches S3 and OpenSearch."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.providers.bedrock.client import bedrock_region
from mmrag.stores._opensearch_client import connect, endpoint_region
from mmrag.stores.s3 import S3ObjectStore


@pytest.fixture
def only_aws_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE", "MMRAG_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    return "ap-southeast-2"


def test_s3_client_and_presigned_links_use_aws_region(only_aws_region: str) -> None:
    store = S3ObjectStore("corp-docs", prefix="mmrag/")
    assert store.client.meta.region_name == only_aws_region
    url = store.client.generate_presigned_url("get_object", Params={"Bucket": "corp-docs", "Key": "mmrag/a"},
                                              ExpiresIn=60)
    assert f"%2F{only_aws_region}%2Fs3%2Faws4_request" in url


def test_opensearch_sigv4_uses_aws_region(only_aws_region: str) -> None:
    pytest.importorskip("opensearchpy")
    client = connect("https://opensearch.internal.example:9200", auth="sigv4", service="es")
    assert client.transport.kwargs["http_auth"].signer.region == only_aws_region


def test_opensearch_signs_for_the_endpoints_own_region(only_aws_region: str) -> None:
    pytest.importorskip("opensearchpy")
    client = connect("https://abc123.eu-central-1.aoss.amazonaws.com", auth="sigv4", service="aoss",
                     region="us-east-1")
    assert client.transport.kwargs["http_auth"].signer.region == "eu-central-1"
    assert endpoint_region("https://search-docs-x7y8z9.us-west-2.es.amazonaws.com") == "us-west-2"
    assert endpoint_region("http://localhost:9200") is None


def test_bedrock_uses_the_same_region(only_aws_region: str) -> None:
    assert bedrock_region(Settings(profile="bedrock")) == only_aws_region
    assert bedrock_region(Settings(profile="bedrock", aws_region="eu-west-1")) == "eu-west-1"
