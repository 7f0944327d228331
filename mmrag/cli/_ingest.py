"""``mmrag ingest``: parse, caption, embed and index sources into a collection."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mmrag.cli._app import cli, parse_options, settings_from


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
        with ingest_progress(enabled=not as_json) as progress:
            report = ingest_documents(load_documents(made, loader), settings=settings, progress=progress)
    else:
        _check_something_exists(sources)
        with ingest_progress(enabled=not as_json) as progress:
            report = run_ingest(sources, settings, force=force, progress=progress, executor=executor,
                                ray_address=ray_address, include=include, exclude=exclude)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print_ingest_report(report, settings)
    if not report.complete:
        sys.exit(1)


def _check_something_exists(sources: tuple[str, ...]) -> None:
    """Stop before any collection is opened (or created) when no named source holds anything to read; with one
    that does, the others fail one by one in the report (exit status 1)."""
    from mmrag.errors import NotFoundError
    from mmrag.parsers.sources import expand_sources, unreadable

    if any(s.startswith("s3://") for s in sources):
        return  # listing a bucket needs the settings' endpoint: ingest reports an empty or missing prefix itself
    expanded = expand_sources(sources)
    problems = [str(error) for source in expanded if (error := unreadable(source)) is not None]
    if expanded and len(problems) == len(expanded):
        raise NotFoundError(f"nothing to ingest ({'; '.join(problems)}); no collection was created or changed")
