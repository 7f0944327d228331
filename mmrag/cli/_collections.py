"""``mmrag collections``: list collections, delete one, collect a collection's garbage."""

from __future__ import annotations

import json

import click

from mmrag.cli._app import cli, settings_from


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per collection per line.")
@click.pass_context
def collections(ctx: click.Context, /, as_json: bool) -> None:
    """List collections under MMRAG_HOME with their sizes (or delete one: mmrag collections delete NAME)."""
    if ctx.invoked_subcommand is not None:
        return
    from mmrag.stores.collection import list_collections
    from mmrag.terminal import counted, plain

    found = list_collections(settings_from(ctx))
    if as_json:
        for c in found:
            click.echo(json.dumps(c))
        return
    if not found:
        click.echo("no collections yet: run mmrag ingest SOURCE...")
    for c in found:
        kinds = ", ".join(f"{n} {k}" for k, n in c["elements"].items()) or "empty"
        where = "shared" if c.get("shared") else f"{c['bytes'] / 1e6:.1f} MB on disk"
        if not c.get("shared") and c["vector_store"] != "faiss":
            where += f"; local manifest: run `mmrag collections migrate {c['name']}`"
        click.echo(plain(f"{c['name']}: {counted(c['sources'], 'source')}; {kinds}; {where} "
                         f"({c['vector_store']}; text: {c['text_model']}; image: {c['image_model']})"))


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def collections_delete(ctx: click.Context, /, name: str, yes: bool) -> None:
    """Delete the collection NAME: its vectors, objects and manifest."""
    from mmrag.stores.collection import delete_collection, require_collection
    from mmrag.terminal import counted, plain

    settings = settings_from(ctx)
    require_collection(settings, name)
    if not yes:
        click.confirm(f"Delete collection {name!r} and everything in it?", abort=True)
    done = delete_collection(settings, name)
    click.echo(plain(f"deleted {done['name']} ({counted(done['sources'], 'source')})"))


@collections.command("gc")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as one JSON object.")
@click.pass_context
def collections_gc(ctx: click.Context, /, name: str | None, as_json: bool) -> None:
    """Remove what interrupted ingests left in NAME [default: MMRAG_COLLECTION or 'default'].

    Deletes records that were written but never committed (searches never show them), temp files of
    interrupted object writes, and objects no element refers to. Refuses to run while an ingest writes.
    """
    from mmrag.chains.upkeep import collect_garbage
    from mmrag.terminal import plain

    settings = settings_from(ctx, collection=name)
    report = collect_garbage(settings).to_dict()
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(plain(f"{report['collection']}: removed {report['uncommitted_records']} uncommitted records, "
                     f"{report['temp_files']} temp files, {report['objects_deleted']} unreferenced objects"))
    for source, n in report["by_source"].items():
        click.echo(plain(f"  {source}: {n} uncommitted records"))


@collections.command("migrate")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the rows copied as one JSON object.")
@click.pass_context
def collections_migrate(ctx: click.Context, /, name: str, as_json: bool) -> None:
    """Move NAME's local manifest into the shared PostgreSQL database (pgvector, or OpenSearch with MMRAG_PG_DSN).

    Collections made before manifests were shared keep it under MMRAG_HOME, where other machines cannot see
    it. Idempotent and resumable: one transaction, and rows already there are kept.
    """
    from mmrag.stores.migrate import migrate_collection
    from mmrag.terminal import plain

    done = migrate_collection(settings_from(ctx), name)
    if as_json:
        click.echo(json.dumps(done))
        return
    copied = ", ".join(f"{n} {table}" for table, n in done["copied"].items())
    click.echo(plain(f"migrated {done['name']}: {copied}"))
