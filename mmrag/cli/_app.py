"""The ``mmrag`` command group and its one error path.

Every command raises mmrag's errors (or lets them through); :class:`_Group` turns them into one line on stderr
and an exit code. No traceback reaches a user unless they ask for it with ``-v``.

Exit codes (also in docs/development.md):

====  ==========================================================================================
0     success
1     some sources failed, or something was left pending (the others were processed)
2     usage: a bad option, argument or setting
3     not found: a collection, source or file that was named does not exist
4     configuration: a missing extra, missing credentials, a collection built with other models
5     a model provider failed (Bedrock, a local model)
6     a vector index or object store failed
7     no space left on the device: free space and run again (nothing was damaged)
70    an internal error (a bug: please report it with the output of ``-v``)
130   interrupted (Ctrl-C)
141   the output was closed early (``mmrag ask ... | head``): stops quietly, as a killed-by-SIGPIPE tool does
====  ==========================================================================================
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = ["EXIT_CODES", "check_output_file", "cli", "exit_code_for", "freeze_imports", "gc_paused", "main",
           "parse_options", "settings_from"]

EXIT_CODES = {
    "ok": 0, "partial": 1, "usage": 2, "not_found": 3, "config": 4, "provider": 5, "store": 6, "disk_full": 7,
    "internal": 70, "interrupted": 130, "closed_output": 141,
}


def exit_code_for(error: BaseException) -> int:
    """The exit code for an error that reached the command line (see the module docstring)."""
    from mmrag._disk import as_disk_full
    from mmrag.errors import ConfigError, NotFoundError, ParseError, ProviderError, StoreError

    if as_disk_full(error) is not None:
        return EXIT_CODES["disk_full"]
    for kind, code in ((NotFoundError, 3), (ConfigError, 4), (ProviderError, 5), (StoreError, 6),
                       (ParseError, 1), (ValueError, 2)):
        if isinstance(error, kind):
            return code
    return EXIT_CODES["internal"]


def _home() -> str | None:
    """MMRAG_HOME, where mmrag writes: the place to look at when a full disk hides behind an error without a path."""
    try:
        from mmrag.config import Settings

        return str(Settings().home)
    except Exception:  # noqa: BLE001 — bad settings were reported already; this is only a hint
        return None


def _one_line(error: BaseException) -> str:
    from mmrag.terminal import plain

    text = " ".join(str(error).split()) or type(error).__name__
    return plain(text)


class _Group(click.Group):
    """A click group whose commands share one error path (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as e:
            # An ingest says what it kept ("ingest stopped: 14 of 70 sources are in the collection; ...").
            click.echo(f"interrupted: {e}" if str(e) and str(e) != "ingest cancelled" else "interrupted", err=True)
            sys.exit(EXIT_CODES["interrupted"])
        except BrokenPipeError:
            # The reader of stdout went away (``| head``): not an error to report. Point stdout at /dev/null so
            # the flush at exit cannot fail again (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_CODES["closed_output"])
        except Exception as error:  # noqa: BLE001 — the one place errors become messages
            if ctx.meta.get("mmrag.verbose"):
                raise
            from mmrag._disk import as_disk_full

            error = as_disk_full(error, _home()) or error  # "free space", whatever layer met the full disk
            code = exit_code_for(error)
            prefix = "internal error" if code == EXIT_CODES["internal"] else "error"
            hint = "; run with -v for the traceback and please report it" if code == EXIT_CODES["internal"] else ""
            click.secho(f"{prefix}: {_one_line(error)}{hint}", fg="red", err=True)
            sys.exit(code)


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings from MMRAG_* variables and .env, with the command's options on top (None means not given)."""
    from pydantic import ValidationError

    from mmrag.config import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        raise click.UsageError(f"invalid settings: {problems}", ctx) from e


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (reference counting still frees as usual).

    For a command's imports and set-up: LangChain, pydantic and numpy make a few hundred thousand long-lived
    objects, and the collector's passes over them while they are being made find nothing to free (measured:
    ~50 ms of a cold ``mmrag ask``). Restores the collector's previous state.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_WHOLE_PROCESS = False
"""True when :func:`main` runs: the process is this one command (not a test or a program calling ``cli``)."""


def freeze_imports() -> None:
    """Move every object made so far (modules, classes, schemas: what a command's imports made) out of the
    collector's reach, when the process is one ``mmrag`` command (:func:`main`); otherwise do nothing.

    Collections, including the interpreter's last ones at exit, then skip a few hundred thousand objects that
    live until the end anyway (measured: ~0.15 s of a cold ``mmrag ask``). Call it after the imports and before
    opening files or connections: objects made later (sqlite connections, indexes) stay collectable, so they are
    closed at exit as before. Never in a long-lived process: garbage cycles frozen with the rest are never freed.
    """
    if _WHOLE_PROCESS:
        gc.freeze()


def open_in_browser(uri: str) -> None:
    """Open a page we wrote (``--open``); when no browser can be started here (no display, none installed), say so
    on stderr with the page's address instead of doing nothing."""
    import webbrowser

    from mmrag.terminal import plain

    try:
        opened = webbrowser.open(uri)
    except webbrowser.Error:
        opened = False
    if not opened:
        click.secho(f"no browser could be opened here: open {plain(uri)} yourself", fg="yellow", err=True)


def check_output_file(path: str | os.PathLike[str] | None, option: str = "--html") -> None:
    """Refuse an output file that cannot be written (a usage error, exit 2) before any work starts.

    The file is written only at the end (after an answer streamed, or an evaluation ran for minutes), so a path in
    a read-only or pseudo file system (``/proc/a.html``), or naming a folder, is found here: a temporary file is
    made and removed in the nearest existing folder, which is what writing the file will need.
    """
    if path is None:
        return
    import tempfile
    from pathlib import Path

    from mmrag.terminal import plain

    target = Path(path).expanduser()
    if target.is_dir():
        raise click.BadParameter(f"{plain(path)} is a folder: give a file name", param_hint=f"'{option}'")
    folder = target.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder")
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError("permission denied")
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mmrag-probe-"):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        raise click.BadParameter(f"cannot write {plain(path)} ({reason})", param_hint=f"'{option}'") from e


def parse_options(command: Any) -> Any:
    """The parsing options, shared by ``mmrag parse`` and ``mmrag ingest`` (they parse the same way)."""
    options = [
        click.option("--chunk-size", type=int, help="Target chunk size in characters [default: 1000]."),
        click.option("--chunk-overlap", type=int, help="Characters shared by consecutive chunks [default: 200]."),
        click.option("--pages-as-images/--no-pages-as-images", default=None, help="Also render every PDF page."),
        click.option("--find-tables", type=click.Choice(["auto", "always", "never"]),
                     help="Table detection [default: auto]."),
        click.option("--allow-private-urls", is_flag=True, default=None,
                     help="Allow URLs on loopback/private addresses (refused by default)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmrag", prog_name="mmrag")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug) and show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """mmrag: multimodal RAG over PDFs, web pages and images.

    Runs offline by default (profile "local"); set MMRAG_PROFILE=bedrock for AWS. Settings come from
    MMRAG_* environment variables and a .env file.
    """
    ctx.meta["mmrag.verbose"] = verbose
    if verbose:
        from mmrag.redaction import RedactingFormatter

        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        for handler in logging.getLogger().handlers:  # users send this output with bug reports: no credentials
            handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))


def main() -> None:
    """Entry point of the ``mmrag`` console script and ``python -m mmrag``."""
    global _WHOLE_PROCESS
    _WHOLE_PROCESS = True
    cli(prog_name="mmrag")
