"""``mmrag ingest``: parse, caption, embed and index sources into a collection."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mmrag.cli._app import cli, parse_options, settings_from


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-c", "--collection", help="Collection to fill [default: MMRAG_COLLECTION or 'default'].")
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
def ingest(ctx: click.Context, /, sources: tuple[str, ...], as_json: bool, force: bool, executor: str | None,
           ray_address: str | None, include: tuple[str, ...], exclude: tuple[str, ...], **overrides: Any) -> None:
    """Parse, caption, embed and index SOURCES into a collection (re-running skips unchanged sources).

    Exits with status 1 if any source failed or any element was left pending (a caption that failed: run
    the command again to retry it); the others are still ingested.
    """
    from mmrag._cli_render import ingest_progress, print_ingest_report
    from mmrag.chains.ingestion import ingest as run_ingest

    settings = settings_from(ctx, **overrides)
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

    expanded = expand_sources(sources)
    problems = [str(error) for source in expanded if (error := unreadable(source)) is not None]
    if expanded and len(problems) == len(expanded):
        raise NotFoundError(f"nothing to ingest ({'; '.join(problems)}); no collection was created or changed")
