"""Issue 23 item 8: a request that timed out on our side holds its concurrency slot until the service is done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.providers.factory import build_providers
from mmrag.testing import BedrockEmulator, Fault

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_timed_out_requests_hold_their_slot_until_the_service_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Callable[..., None]
) -> None:
    with BedrockEmulator() as emu:
        for name, value in emu.environ().items():
            monkeypatch.setenv(name, value)
        # The service takes 1.5 s on the first six requests, three times the client's 0.5 s request timeout.
        emu.add_fault(Fault("timeout", times=6, seconds=1.5, model="amazon.titan-embed-text*"))
        settings = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1",
                            home=tmp_path, cache=False, max_concurrency=2, request_timeout=0.5, max_retries=8,
                            text_embedding_dims=256)
        providers = build_providers(settings)
        vectors = providers.text_embeddings.embed_documents([f"text {i}" for i in range(6)])
        peak = emu.peak_in_flight(model="amazon.titan-embed-text*")
        sent = len([r for r in emu.requests if r.model_id.startswith("amazon.titan-embed-text")])
    assert len(vectors) == 6 and all(len(v) == 256 for v in vectors)
    assert sent > 6  # some attempts did time out and were retried
    record(f"2 s-class service, 0.5 s timeout, limit 2: peak in flight {peak}", held=6, lost=0)
    assert peak <= 2, f"{peak} requests in flight on the service against a limit of 2"
