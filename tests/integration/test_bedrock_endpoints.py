"""Bedrock endpoints per Region (issue 24, item 4): a VPC endpoint of one Region is never used for another."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmrag.config import Settings
from mmrag.errors import ConfigError, ProviderError
from mmrag.providers._concurrency import RetryPolicy, call_with_retry
from mmrag.providers.bedrock.client import endpoint_for, make_bedrock_client
from mmrag.providers.bedrock.nova import NovaMultimodalEmbedder
from mmrag.providers.factory import build_providers
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"  # offered in us-east-1 only: called there from Tokyo
VPCE = "https://vpce-0a1b2c3d-e4f5.bedrock-runtime.ap-northeast-1.vpce.amazonaws.com"


@pytest.fixture
def regional(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BedrockEmulator, BedrockEmulator]]:
    """Two Regional endpoints: each rejects requests signed for another Region, as AWS's do."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", raising=False)
    with BedrockEmulator(region="ap-northeast-1") as tokyo, BedrockEmulator(region="us-east-1") as virginia:
        for name, value in tokyo.environ().items():
            if name != "AWS_ENDPOINT_URL_BEDROCK_RUNTIME":
                monkeypatch.setenv(name, value)
        yield tokyo, virginia


def test_the_emulator_rejects_a_request_signed_for_another_region(
        regional: tuple[BedrockEmulator, BedrockEmulator]) -> None:
    tokyo, _ = regional
    client = tokyo.client(region_name="us-east-1")
    with pytest.raises(client.exceptions.ClientError, match="InvalidSignatureException"):
        client.invoke_model(modelId=NOVA, body=b"{}")


def test_a_single_endpoint_of_one_region_is_not_used_for_another(
        regional: tuple[BedrockEmulator, BedrockEmulator]) -> None:
    settings = Settings(profile="bedrock", aws_region="ap-northeast-1", bedrock_endpoint_url=VPCE,
                        image_embedding_model=NOVA)
    assert endpoint_for(settings, "ap-northeast-1") == VPCE
    with pytest.raises(ConfigError, match=r"endpoint of ap-northeast-1, but a model is called in us-east-1"):
        endpoint_for(settings, "us-east-1")
    with pytest.raises(ConfigError, match="one endpoint per Region"):
        build_providers(settings)


def test_endpoints_per_region_reach_their_own_region(regional: tuple[BedrockEmulator, BedrockEmulator]) -> None:
    tokyo, virginia = regional
    settings = Settings(profile="bedrock", aws_region="ap-northeast-1", image_embedding_model=NOVA, cache=False,
                        bedrock_endpoint_url=f"ap-northeast-1={tokyo.url},us-east-1={virginia.url}", max_retries=0)
    providers = build_providers(settings)
    assert isinstance(providers.image_embedder, NovaMultimodalEmbedder)
    assert len(providers.image_embedder.embed_texts(["a red box"])[0]) == 1024
    assert providers.fast_chat is not None and providers.fast_chat.invoke("hello").content
    assert {r.region for r in virginia.requests} == {"us-east-1"} and virginia.requests[-1].status == 200
    assert {r.region for r in tokyo.requests} == {"ap-northeast-1"} and tokyo.requests[-1].status == 200
    with pytest.raises(ConfigError, match="not for eu-west-1"):
        make_bedrock_client(settings, region="eu-west-1")


def test_one_endpoint_for_every_region_is_what_the_old_code_did(
        regional: tuple[BedrockEmulator, BedrockEmulator]) -> None:
    # What happened before the fix, made visible: the us-east-1 client sent to Tokyo's endpoint is rejected.
    tokyo, _ = regional
    settings = Settings(profile="bedrock", aws_region="ap-northeast-1", bedrock_endpoint_url=tokyo.url, max_retries=0)
    client = make_bedrock_client(settings, region="us-east-1")
    with pytest.raises(ProviderError, match="InvalidSignatureException"):
        call_with_retry(lambda: client.invoke_model(modelId=NOVA, body=b"{}"), model_id=NOVA,
                        policy=RetryPolicy(max_retries=0))
