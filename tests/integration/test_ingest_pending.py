"""``mmrag ingest`` does not report success when elements are left pending (two image captions failed).

(When *every* caption fails the captioner stops the run instead: tests/integration/test_bedrock_aws_fidelity.py.)"""

from __future__ import annotations

import json
import re
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
            has_image = any("image" in b for m in request.body.get("messages", []) for b in m.get("content", []))
            if has_image and re.search(r"polar|errorbar", request.last_user_text, re.I):
                return {"tool": "NotOffered", "input": {}}  # a 400 ValidationException: fatal, not retried
            if has_image:
                return "A line chart on white axes."
            return "Summary: a table of plotting functions."

        emu.script_chat(reply)
        yield {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_HOME": str(tmp_path / "home"),
               "MMRAG_AWS_REGION": "us-east-1", "MMRAG_TEXT_EMBEDDING_DIMS": "256",
               "MMRAG_IMAGE_EMBEDDING_DIMS": "384"}


def test_failed_image_captions_exit_1_and_say_pending(env: dict[str, str], data_dir: Path) -> None:
    runner = CliRunner()
    human = runner.invoke(cli, ["ingest", str(data_dir / HTML)], env=env)
    assert human.exit_code == 1, human.output
    assert "pending" in human.stdout and "2 elements left pending" in human.stdout
    assert "run the same ingest again to retry them" in human.stderr
    again = runner.invoke(cli, ["ingest", str(data_dir / HTML), "--json"], env=env)
    out = json.loads(again.stdout)
    # The re-run retries only the two pending captions; both fail again, i.e. every caption of this run failed,
    # so the captioner stops the source with a clear error rather than report success. Nothing is lost: the
    # committed elements stay searchable and the two stay pending for the next run.
    assert again.exit_code == 1 and not out["ok"] and not out["complete"]
    [source] = out["sources"]
    assert source["status"] == "failed" and "every caption request" in source["error"]
    listed = json.loads(runner.invoke(cli, ["collections", "--json"], env=env).stdout.splitlines()[0])
    assert listed["sources"] == 1 and sum(listed["elements"].values()) > 0
