"""Throttling, 5xx and model timeouts from Bedrock (the loopback emulator) mid-ingest: nothing is lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmrag.chains.ingestion import ingest
from mmrag.config import Settings
from mmrag.testing import BedrockEmulator, Fault, RecordedRequest

pytestmark = [pytest.mark.faults, pytest.mark.integration]

HTML = "html/octave/Two_002dDimensional-Plots.html"


def _reply(request: RecordedRequest) -> Any:
    return "A line chart on white axes." if "image" in str(request.body)[:20000] else "Summary: a small table."


def test_throttle_5xx_and_timeouts_mix(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                       record: Callable[..., None]) -> None:
    with BedrockEmulator() as emu:
        for name, value in emu.environ().items():
            monkeypatch.setenv(name, value)
        emu.script_chat(_reply)

        def settings(home: str) -> Settings:
            return Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1",
                            home=tmp_path / home, text_embedding_dims=256, image_embedding_dims=384)

        clean = ingest([data_dir / HTML], settings("clean"))
        assert clean.complete
        for fault in (Fault("throttle", times=5, operation="Converse"), Fault("server_error", times=3),
                      Fault("unavailable", times=3, model="amazon.titan-embed-text*"),
                      Fault("model_timeout", times=2, model="amazon.titan-embed-image*"),
                      Fault("model_not_ready", times=2)):
            emu.add_fault(fault)
        faulty = ingest([data_dir / HTML], settings("faulty"))
        failed = sum(1 for r in emu.requests if r.status >= 400)
    assert failed == 5 + 3 + 3 + 2 + 2
    assert faulty.complete, faulty.to_dict()
    assert faulty.elements == clean.elements
    record(f"Bedrock faults mid-ingest ({failed} failed requests, retried)", held=sum(faulty.elements.values()),
           lost=sum(clean.elements.values()) - sum(faulty.elements.values()))
