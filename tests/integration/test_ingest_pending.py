"""``mmrag ingest`` does not report success when elements are left pending (every caption failed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.cli import cli
from mmrag.testing import BedrockEmulator, RecordedRequest

pytestmark = pytest.mark.integration

HTML = "html/octave/Two_002dDimensional-Plots.html"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with BedrockEmulator() as emu:
        def reply(request: RecordedRequest) -> Any:
            return {"tool": "NotOffered", "input": {}}  # a 400 ValidationException: fatal, not retried

        emu.script_chat(reply)
        yield {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_HOME": str(tmp_path / "home"),
               "MMRAG_AWS_REGION": "us-east-1", "MMRAG_TEXT_EMBEDDING_DIMS": "256",
               "MMRAG_IMAGE_EMBEDDING_DIMS": "384"}


def test_every_caption_failing_exits_1_and_says_pending(env: dict[str, str], data_dir: Path) -> None:
    runner = CliRunner()
    human = runner.invoke(cli, ["ingest", str(data_dir / HTML)], env=env)
    assert human.exit_code == 1, human.output
    assert "pending" in human.stdout and "7 elements left pending" in human.stdout
    assert "run the same ingest again to retry them" in human.stderr
    again = runner.invoke(cli, ["ingest", str(data_dir / HTML), "--json"], env=env)
    out = json.loads(again.stdout)
    assert again.exit_code == 1 and out["ok"] and not out["complete"] and out["pending"] == 7
    assert out["sources"][0]["pending"] == 7 and out["sources"][0]["status"] == "updated"
