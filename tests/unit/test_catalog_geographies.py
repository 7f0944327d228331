"""Source Regions of the geo inference profiles (providers/bedrock/catalog.py), as AWS's CDK construct lists them."""

from __future__ import annotations

import pytest

from mmrag.errors import ConfigError
from mmrag.providers.bedrock.catalog import geo_of, resolve

SONNET_4 = "anthropic.claude-sonnet-4-20250514-v1:0"  # has us., eu., apac. and global. profiles


@pytest.mark.parametrize(("prefix", "region", "inside"), [
    ("apac", "me-central-1", True),  # Middle East (UAE) is an APAC source Region
    ("apac", "ap-east-2", True),
    ("apac", "me-south-1", False),
    ("jp", "ap-northeast-3", True),
    ("jp", "ap-northeast-2", False),
    ("au", "ap-southeast-4", True),
    ("au", "ap-southeast-1", False),
    ("eu", "eu-south-2", True),
    ("us", "us-west-1", True),
    ("us", "eu-west-1", False),
    ("us-gov", "us-gov-west-1", True),
])
def test_source_regions(prefix: str, region: str, inside: bool) -> None:
    assert geo_of(prefix, region) is inside


def test_uae_calls_the_apac_profile_where_the_model_has_one() -> None:
    assert resolve(SONNET_4, "me-central-1").model_id == "apac." + SONNET_4
    with pytest.raises(ConfigError, match="no geo inference profile"):  # geo never falls back to global.
        resolve("anthropic.claude-haiku-4-5-20251001-v1:0", "me-central-1")
