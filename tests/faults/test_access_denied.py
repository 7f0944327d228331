"""Issue 23 item 9: AccessDenied from Bedrock stops an ingest at once with exit 5, as the README says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import EXIT_CODES, cli
from mmrag.testing import BedrockEmulator, Fault

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.mark.parametrize("model", ["amazon.titan-embed-text*", "*anthropic*"])
def test_access_denied_stops_the_ingest_with_exit_5(model: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    record: Callable[..., None]) -> None:
    from PIL import Image, ImageDraw

    sources = []
    for i in range(6):
        image = Image.new("RGB", (160, 120), (40 * i, 255 - 40 * i, 90))
        ImageDraw.Draw(image).text((10, 50), f"chart {i}", fill=(0, 0, 0))
        image.save(tmp_path / f"chart{i}.png")
        sources.append(str(tmp_path / f"chart{i}.png"))
    with BedrockEmulator() as emu:
        env = {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
               "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(tmp_path / "home"),
               "MMRAG_TEXT_EMBEDDING_DIMS": "256", "MMRAG_IMAGE_EMBEDDING_DIMS": "384"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        emu.script_chat(lambda request: "A small picture.")
        emu.add_fault(Fault("access_denied", times=None, model=model))
        result = CliRunner().invoke(cli, ["ingest", *sources])
        denied = [r for r in emu.requests if r.status == 403]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    record(f"AccessDenied on {model} mid-ingest: exit {result.exit_code}", held=0, lost=0)
    assert result.exit_code == EXIT_CODES["provider"] == 5, result.output
    assert len(lines) == 1 and "denied access" in lines[0] and "Model access" in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert 0 < len(denied) <= len(sources)  # it stopped instead of trying each source again, one by one
