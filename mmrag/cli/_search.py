"""``mmrag search``: text→element, text→image and image→image search."""

from __future__ import annotations

import json

import click

from mmrag.cli._app import cli, settings_from


@cli.command()
@click.argument("query", required=False)
@click.option("--image", "image_path", type=click.Path(exists=True, dir_okay=False),
              help="Find images similar to this image file (image→image).")
@click.option("--images", "images_only", is_flag=True, help="Only images and page renders (text→image).")
@click.option("-c", "--collection", help="Collection to search [default: MMRAG_COLLECTION or 'default'].")
@click.option("-k", "k", type=click.IntRange(1, 200), default=10, show_default=True, help="Results to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result per line.")
@click.pass_context
def search(ctx: click.Context, /, query: str | None, image_path: str | None, images_only: bool,
           collection: str | None, k: int, as_json: bool) -> None:
    """Search a collection by text (QUERY; --images for text→image) or by image (--image FILE; image→image)."""
    from pathlib import Path

    from mmrag.chains._components import open_components
    from mmrag.chains.synthesis import object_uri
    from mmrag.retrievers.search import search_image, search_text

    if (query is None) == (image_path is None):
        raise click.UsageError("give either a text QUERY or --image FILE", ctx)
    settings = settings_from(ctx, collection=collection)
    if query is not None and not query.strip():
        raise click.UsageError("the query is empty", ctx)
    providers, col = open_components(settings, create=False)
    if image_path is not None:
        hits = search_image(Path(image_path).read_bytes(), providers, col, k=k, name=image_path)
    else:
        assert query is not None
        hits = search_text(query, providers, col, k=k, images_only=images_only)
        if images_only and not getattr(providers.image_embedder, "supports_text_queries", False):
            click.secho("(text→image through captions, OCR and nearby text: the image model cannot embed "
                        "text; configure CLIP or the bedrock profile for visual matching)", dim=True, err=True)
    for n, hit in enumerate(hits, 1):
        e = hit.element
        link = object_uri(e, col.objects)
        if as_json:
            row = {"rank": n, **hit.to_dict(), "object_uri": link, "src": e.metadata.get("src"),
                   "text": e.text[:200], "caption": e.metadata.get("caption")}
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            page = f", page {e.page}" if e.page else ""
            src = f" {e.metadata['src']}" if e.metadata.get("src") else ""
            click.echo(f"{n:>2}. {hit.score:.4f}  {e.source}{page} ({e.kind}{src})  {link or ''}")
    if not hits and not as_json:
        click.echo("no results")
