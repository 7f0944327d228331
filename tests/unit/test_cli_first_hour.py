"""What a new user meets in the first hour: read-only commands create nothing, errors are one line with an
exit code (no traceback without -v), and the parse options are shared by parse and ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mmrag.cli import cli

DATA = Path(__file__).parents[1] / "data"
IMAGE = DATA / "images" / "img_023.jpg"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MMRAG_HOME", str(home))
    return home


def _ingest_one_image(runner: CliRunner, name: str = "default") -> None:
    done = runner.invoke(cli, ["ingest", str(IMAGE), "-c", name, "--json"])
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("argv", [
    ["ask", "-c", "defualt", "what is this?"],
    ["search", "-c", "nope", "anything"],
    ["search", "-c", "nope", "--image", str(IMAGE)],
    ["collections", "delete", "nopez"],
])
def test_read_only_commands_never_create_a_collection(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path, argv: list[str]) -> None:
    home = _home(monkeypatch, tmp_path)
    _ingest_one_image(runner)
    before = sorted(p.name for p in home.iterdir())
    result = runner.invoke(cli, argv, input="y\n")
    assert result.exit_code == 3, result.output
    assert "does not exist (known: default)" in result.output
    assert "Delete collection" not in result.output  # says it does not exist before asking to confirm
    assert sorted(p.name for p in home.iterdir()) == before
    listed = runner.invoke(cli, ["collections", "--json"])
    assert listed.output.count('"name"') == 1


def test_a_misspelt_collection_gets_a_suggestion(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _home(monkeypatch, tmp_path)
    _ingest_one_image(runner)
    result = runner.invoke(cli, ["ask", "-c", "defualt", "what?"])
    assert result.exit_code == 3 and "did you mean 'default'?" in result.output


def test_asking_an_empty_home_says_how_to_fill_it(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    home = _home(monkeypatch, tmp_path)
    result = runner.invoke(cli, ["ask", "what?"])
    assert result.exit_code == 3 and "mmrag ingest" in result.output
    assert not home.exists()


@pytest.mark.parametrize("argv, code, words", [
    (["ask", ""], 2, "the question is empty"),
    (["ask", "   "], 2, "the question is empty"),
    (["search", ""], 2, "the query is empty"),
    (["search", "--image", "README.md"], 2, "README.md is not an image (its content is text/markdown)"),
    (["search", "--image", "tests/data/images"], 2, "--image takes one image file"),
    (["search", "x", "--html", "/proc/a.html"], 2, "cannot write /proc/a.html"),
    (["search", "--image", "no/such.png"], 3, "no/such.png: no such file"),
    (["ask", "x", "--weights", "imgae=2"], 2, "'imgae' names no list: did you mean 'image'?"),
    (["ask", "x", "--weights", "bm25:2=1"], 2, "is written bm25:q1, bm25:q2"),
])
def test_bad_input_is_one_line_and_an_exit_code(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path, argv: list[str], code: int, words: str) -> None:
    _home(monkeypatch, tmp_path)
    _ingest_one_image(runner)
    monkeypatch.chdir(Path(__file__).parents[2])
    result = runner.invoke(cli, argv)
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def test_verbose_shows_the_traceback(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _home(monkeypatch, tmp_path)
    _ingest_one_image(runner)
    monkeypatch.chdir(Path(__file__).parents[2])
    result = runner.invoke(cli, ["-v", "search", "-c", "nope", "anything"])  # a library error (NotFoundError)
    assert result.exit_code != 0 and result.exception is not None and not isinstance(result.exception, SystemExit)


def test_an_internal_error_is_one_line_that_asks_for_a_report() -> None:
    from mmrag.cli._app import exit_code_for

    assert exit_code_for(KeyError("x")) == 70
    from mmrag.errors import ConfigError, NotFoundError, ProviderError, StoreError

    assert [exit_code_for(e) for e in (NotFoundError("x"), ConfigError("x"), ProviderError("x"), StoreError("x"))] \
        == [3, 4, 5, 6]


def test_ingest_has_every_parse_option(runner: CliRunner) -> None:
    parse_help = runner.invoke(cli, ["parse", "--help"]).output
    ingest_help = runner.invoke(cli, ["ingest", "--help"]).output
    for option in ("--chunk-size", "--chunk-overlap", "--pages-as-images", "--find-tables", "--allow-private-urls"):
        assert option in parse_help and option in ingest_help, option


def test_output_closed_early_stops_quietly(data_dir: Path) -> None:
    """``mmrag parse ... | head``: the reader goes away; no "internal error", no traceback, exit 141."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "parse", str(data_dir / "pdf" / "strucchange-intro.pdf"),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the first line is written: every write fails with EPIPE
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, stderr
    assert "error" not in stderr and "Traceback" not in stderr, stderr


def test_counts_of_one_are_singular(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _home(monkeypatch, tmp_path)
    done = runner.invoke(cli, ["ingest", str(IMAGE)])
    assert done.exit_code == 0, done.output
    assert "1 source (0 failed); 1 image" in done.stdout
    listed = runner.invoke(cli, ["collections"])
    assert listed.stdout.startswith("default: 1 source; 1 image;")
    removed = runner.invoke(cli, ["remove", str(IMAGE)])
    assert removed.stdout.startswith(f"removed {IMAGE}: 1 element, 1 object deleted"), removed.stdout


@pytest.mark.parametrize("argv", [
    ["ask", "what is in the picture?", "--html", "/proc/a.html"],
    ["ask", "what is in the picture?", "--html", "."],
    ["eval", "tests/data/golden.jsonl", "--variants", "bm25", "--html", "/proc/report.html"],
])
def test_an_output_file_that_cannot_be_written_is_refused_before_any_work(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]) -> None:
    """Was: the answer streamed, then "internal error ... please report it" (exit 70) when the page was written."""
    _home(monkeypatch, tmp_path)
    _ingest_one_image(runner)
    monkeypatch.chdir(Path(__file__).parents[2])
    result = runner.invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--html'" in result.stderr and "internal error" not in result.output
    assert result.stdout == ""  # no answer, no evaluation table: nothing ran


@pytest.mark.parametrize("names, code, words", [
    (["blob.bin"], 2, "blob.bin: unsupported content type 'application/octet-stream'"),
    (["no-such.pdf"], 3, "no-such.pdf: no such file"),
    (["no-such.pdf", "blob.bin"], 2, "no-such.pdf: no such file; blob.bin: unsupported content type"),
])
def test_ingesting_nothing_ingestable_creates_nothing(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, names: list[str], code: int,
                                                       words: str) -> None:
    """One rule for a missing file and a file of an unsupported type: nothing is created, one error line."""
    home = _home(monkeypatch, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "blob.bin").write_bytes(bytes(range(256)) * 4)  # no format mmrag reads
    monkeypatch.chdir(work)
    result = runner.invoke(cli, ["ingest", "-c", "fresh", *names])
    assert result.exit_code == code, result.output
    assert words in result.stderr and "no collection was created or changed" in result.stderr
    assert not (home / "fresh").exists()
    assert "fresh" not in runner.invoke(cli, ["collections"]).output
    mixed = runner.invoke(cli, ["ingest", "-c", "fresh", "--json", str(IMAGE), "blob.bin"])
    assert mixed.exit_code == 1 and "unsupported content type" in mixed.stdout  # the good one is ingested


@pytest.mark.parametrize(("golden", "words"), [
    ("README.md", "README.md has no usable question (line 1: not valid JSON"),
    ("tests/data/pdf/tabula-data.pdf", "tabula-data.pdf' is not UTF-8 text"),
])
def test_a_file_that_is_no_golden_set_is_one_line(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, golden: str, words: str) -> None:
    # Was: one warning per line of README.md (113 lines), and a PDF's UnicodeDecodeError without its name.
    _home(monkeypatch, tmp_path)
    _ingest_one_image(runner)
    monkeypatch.chdir(Path(__file__).parents[2])
    result = runner.invoke(cli, ["eval", golden])
    assert result.exit_code == 2, result.output
    assert words in result.output and "line 2:" not in result.output
