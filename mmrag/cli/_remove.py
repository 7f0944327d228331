"""``mmrag remove``: delete sources from a collection (their records, manifest entries and unshared objects)."""

from __future__ import annotations

import json

import click

from mmrag.cli._app import cli, settings_from


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-c", "--collection", help="Collection to remove from [default: MMRAG_COLLECTION or 'default'].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per removed source per line.")
@click.pass_context
def remove(ctx: click.Context, /, sources: tuple[str, ...], collection: str | None, as_json: bool) -> None:
    """Remove SOURCES (paths or URLs, as ingested) from a collection, with their objects.

    Objects that another source still uses are kept. Nothing is removed if any SOURCE is not in the
    collection (exit status 3).
    """
    from mmrag.chains.upkeep import remove_sources
    from mmrag.terminal import counted, plain

    settings = settings_from(ctx, collection=collection)
    for row in remove_sources(sources, settings):
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            kept = f", {row['shared']} kept (other sources show them)" if row["shared"] else ""
            click.echo(plain(f"removed {row['source']}: {counted(row['elements'], 'element')}{kept}, "
                             f"{counted(row['objects_deleted'], 'object')} deleted"))
