"""``mmrag ingest``: parse, caption, embed and index sources into a collection."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from mmrag.cli._app import cli, parse_options, settings_from

if TYPE_CHECKING:
    from mmrag.errors import ParseError


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("-c", "--collection", help="Collection to fill [default: MMRAG_COLLECTION or 'default'].")
@click.option("--loader", metavar="MODULE:CLASS",
              help="Ingest what a LangChain document loader yields (any BaseLoader, e.g. "
                   "langchain_community.document_loaders:TextLoader) instead of SOURCES.")
@click.option("--loader-arg", "loader_args", metavar="KEY=VALUE", multiple=True,
              help="An argument for the loader (repeatable); JSON values (true, 3) are decoded.")
@click.option("--force", is_flag=True, help="Re-process sources even when they are unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where to run: local threads, or a Ray cluster (pip install 'mmrag[ray]') [default: "
                   "MMRAG_EXECUTOR or local].")
@click.option("--ray-address", default=None, help="Ray cluster to use with --executor ray [default: RAY_ADDRESS, "
              "else a local cluster started for the run].")
@click.option("--include", multiple=True, help="Only files of folders and s3:// prefixes matching this glob "
              "(repeatable; e.g. '*.pdf', 'reports/**').")
@click.option("--exclude", multiple=True, help="Skip files of folders and s3:// prefixes matching this glob "
              "(repeatable).")
@parse_options
@click.pass_context
def ingest(ctx: click.Context, /, sources: tuple[str, ...], as_json: bool, force: bool, loader: str | None,
           loader_args: tuple[str, ...], executor: str | None, ray_address: str | None, include: tuple[str, ...],
           exclude: tuple[str, ...], **overrides: Any) -> None:
    """Parse, caption, embed and index SOURCES into a collection (re-running skips unchanged sources).

    With --loader, a LangChain document loader's Documents are ingested as text instead (source and page from
    their metadata).

    Exits with status 1 if any source failed or any element was left pending (a caption that failed: run
    the command again to retry it); the others are still ingested.
    """
    from mmrag._cli_render import ingest_progress, print_ingest_report
    from mmrag.chains.ingestion import ingest as run_ingest
    from mmrag.cli._interrupt import interruptible

    if sources and loader:
        raise click.UsageError("give SOURCES or --loader MODULE:CLASS, not both", ctx)
    if not sources and not loader:
        raise click.UsageError("nothing to ingest: give SOURCES (files, folders, globs, URLs) or --loader "
                               "MODULE:CLASS", ctx)
    if loader_args and not loader:
        raise click.UsageError("--loader-arg needs --loader", ctx)
    settings = settings_from(ctx, **overrides)
    if loader:
        from mmrag.chains.documents import ingest_documents
        from mmrag.chains.loaders import load_documents, loader_arguments, make_loader

        made = make_loader(loader, loader_arguments(loader_args))  # fails before any collection is created
        with interruptible(), ingest_progress(enabled=not as_json) as progress:
            report = ingest_documents(load_documents(made, loader), settings=settings, progress=progress)
    else:
        _check_something_exists(sources)
        # Ctrl-C: "stopping…", no new source or commit starts, exit 130 within seconds (mmrag/cli/_interrupt.py).
        with interruptible() as interrupt, ingest_progress(enabled=not as_json) as progress:
            report = run_ingest(sources, settings, force=force, progress=progress, executor=executor,
                                ray_address=ray_address, include=include, exclude=exclude,
                                cancel=interrupt.requested)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print_ingest_report(report, settings)
    from mmrag.parsers.sources import skipped_media

    for path in skipped_media():  # a folder's video with mmrag[video] missing: skipped, not failed
        click.echo(f"skipped {path}: video and audio files need pip install 'mmrag[video]'", err=True)
    if not report.complete:
        sys.exit(1)


def _check_something_exists(sources: tuple[str, ...]) -> None:
    """Stop before any collection is opened (or created) when no named source holds anything mmrag can ingest.

    One rule for every kind of bad source: a missing file, a pattern or folder with nothing supported, a file of an
    unsupported type (``README.md``) or an empty one. When all named sources are like that, nothing is created and
    the command exits with 3 (not found) if all were missing, else 2 (usage: the named files cannot be ingested).
    With one source that can be ingested, the others fail one by one in the report (exit status 1).
    """
    from mmrag.errors import NotFoundError
    from mmrag.parsers.sources import expand_sources, unreadable

    if any(s.startswith("s3://") for s in sources):
        return  # listing a bucket needs the settings' endpoint: ingest reports an empty or missing prefix itself
    expanded = expand_sources(sources)
    problems = [error for source in expanded if (error := unreadable(source) or _unsupported(source)) is not None]
    if not expanded or len(problems) < len(expanded):
        return
    listed = "; ".join(str(p) for p in problems)
    if all(isinstance(p, NotFoundError) for p in problems):
        raise NotFoundError(f"nothing to ingest ({listed}); no collection was created or changed")
    raise click.UsageError(f"nothing to ingest ({listed}); no collection was created or changed")


def _unsupported(source: str) -> ParseError | None:
    """The error for an existing local file whose content no parser takes (sniffed from its first bytes, as
    parsing will), or None. URLs are judged when fetched."""
    from pathlib import Path

    from mmrag.elements import Blob
    from mmrag.errors import ParseError
    from mmrag.parsers.mime import sniff_mime
    from mmrag.parsers.sources import is_url, parser_for

    if is_url(source):
        return None
    path = Path(source.removeprefix("file://")).expanduser()
    try:
        with path.open("rb") as f:
            head = f.read(2048)
            mime = sniff_mime(head, name=path.name)
            if mime == "application/zip":  # Word/PowerPoint/Excel are told by the zip's directory, at its end
                from mmrag.parsers._office import ooxml_mime

                f.seek(0)
                mime = ooxml_mime(f) or mime
    except OSError:
        return None  # parsing says why, in the report
    try:
        parser_for(Blob(data=head, source=source, mime_type=mime))
    except ParseError as e:  # an unsupported type, or an empty file of one
        return e
    return None
