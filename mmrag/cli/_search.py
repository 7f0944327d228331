"""``mmrag search``: text→element, text→image and image→image search, as a table, JSON lines or an HTML gallery."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from mmrag.cli._app import check_output_file, cli, freeze_imports, gc_paused, open_in_browser, settings_from

if TYPE_CHECKING:
    from mmrag.answers import Hit

KINDS = ("text", "table", "image", "page")


def _snippet(hit: Hit, query: str | None = None, width: int = 100) -> str:
    """One line of the hit's text: around the first word of ``query`` it holds (from the start when none)."""
    import re

    from mmrag.answers import caption_of
    from mmrag.providers._evidence import _STOPWORDS
    from mmrag.terminal import plain

    e = hit.element
    text = caption_of(e) if e.kind != "text" else e.text
    section = e.metadata.get("section")
    if e.kind == "text" and isinstance(section, str) and section and text.startswith(section + "\n\n"):
        text = text[len(section) + 2 :]  # the heading path is already in the breadcrumb
    line = plain(" ".join(text.split()))
    if len(line) <= width:
        return line
    words = {w.lower() for w in re.findall(r"\w{3,}", query or "")} - _STOPWORDS
    found = [m.start() for m in re.finditer(r"\w+", line) if m.group().lower() in words]
    start = line.rfind(" ", 0, max(found[0] - width // 4, 0)) + 1 if found and found[0] > width // 3 else 0
    if start == 0:
        return line[: width - 1].rstrip() + "…"
    window = line[start : start + width - 2].rstrip()
    return "…" + window + ("…" if start + width - 2 < len(line) else "")


def _row(n: int, hit: Hit) -> str:
    from mmrag.answers import breadcrumb
    from mmrag.terminal import plain

    e = hit.element
    also = f"  (+{len(hit.duplicates)} more)" if hit.duplicates else ""
    return f"{n:>2}. {hit.score:.4f}  {plain(breadcrumb(e))} ({e.kind}){also}  {plain(hit.object_uri or '')}"


def _check_image_ref(image_ref: str) -> None:
    """``--image`` names one picture: a folder is a usage error (exit 2), said in those words."""
    from pathlib import Path

    from mmrag.parsers.sources import is_url
    from mmrag.terminal import plain

    if not is_url(image_ref) and Path(image_ref.removeprefix("file://")).expanduser().is_dir():
        raise click.BadParameter(f"{plain(image_ref)} is a folder: --image takes one image file (or URL)",
                                 param_hint="'--image'")


def _search_by_image(blob: Any, image_ref: str, providers: Any, col: Any, *, k: int, where: Any) -> list[Hit]:
    """Image→image search; a query that is not a picture (README.md, a corrupt PNG) is a usage error (exit 2)."""
    from mmrag.errors import NotFoundError, ParseError
    from mmrag.retrievers.search import search_image
    from mmrag.terminal import plain

    if not blob.mime_type.startswith("image/"):
        raise click.BadParameter(f"{plain(image_ref)} is not an image (its content is {plain(blob.mime_type)})",
                                 param_hint="'--image'")
    try:
        return search_image(blob.data, providers, col, k=k, name=image_ref, where=where)  # type: ignore[no-any-return]
    except ParseError as e:
        if isinstance(e, NotFoundError):
            raise
        raise click.BadParameter(plain(str(e)), param_hint="'--image'") from e


@cli.command()
@click.argument("query", required=False)
@click.option("--image", "image_ref", metavar="FILE_OR_URL",
              help="Find images similar to this image file or URL (image→image; URLs fetched as ingest does).")
@click.option("--images", "images_only", is_flag=True, help="Only images and page renders (text→image).")
@click.option("--kind", "kinds", type=click.Choice(KINDS), multiple=True, help="Only these kinds (repeatable).")
@click.option("--source", "source_glob", metavar="GLOB", help="Only sources matching GLOB (path or file name).")
@click.option("--page", type=click.IntRange(1), help="Only elements of this page.")
@click.option("--threshold", type=float,
              help="Drop vector matches whose cosine similarity is below this (keyword matches stay; a text query's "
                   "scores are then fused RRF scores, --image scores are cosines).")
@click.option("-c", "--collection", help="Collection to search [default: MMRAG_COLLECTION or 'default'].")
@click.option("-k", "k", type=click.IntRange(1, 200), default=10, show_default=True, help="Results to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result per line.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the results as one self-contained HTML gallery to this file.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML gallery in the default browser.")
@click.pass_context
def search(ctx: click.Context, /, query: str | None, image_ref: str | None, images_only: bool,
           kinds: tuple[str, ...], source_glob: str | None, page: int | None, threshold: float | None,
           collection: str | None, k: int, as_json: bool, html_path: str | None, open_browser: bool) -> None:
    """Search a collection by text (QUERY; --images for text→image) or by image (--image FILE_OR_URL).

    \b
    Examples:
      mmrag search "confusion matrix" --images --html gallery.html
      mmrag search --image tests/data/images/img_029.png -k 5 --json
    """
    if (query is None) == (image_ref is None):
        raise click.UsageError("give either a text QUERY or --image FILE_OR_URL", ctx)
    if query is not None and not query.strip():
        raise click.UsageError("the query is empty", ctx)
    if open_browser and not html_path:
        raise click.UsageError("--open needs --html PATH (the page to open)", ctx)
    check_output_file(html_path)
    if image_ref is not None:
        _check_image_ref(image_ref)
    with gc_paused():  # imports and opening: most of a cold search, as for ``mmrag ask``
        from mmrag.chains._components import open_components
        from mmrag.parsers.sources import load_blob
        from mmrag.retrievers.search import SearchFilter, search_text

        freeze_imports()
        settings = settings_from(ctx, collection=collection)
        where = SearchFilter(kinds=kinds, source=source_glob, page=page, threshold=threshold)
        providers, col = open_components(settings, create=False)
    if image_ref is not None:
        blob = load_blob(image_ref)  # a URL is fetched with ingest's safety rules (no private addresses...)
        hits = _search_by_image(blob, image_ref, providers, col, k=k, where=where)
    else:
        assert query is not None
        hits = search_text(query, providers, col, k=k, images_only=images_only, where=where)
        if images_only and not getattr(providers.image_embedder, "supports_text_queries", False):
            click.secho("(text→image through captions, OCR and nearby text: the image model cannot embed "
                        "text; configure CLIP or the bedrock profile for visual matching)", dim=True, err=True)
    for n, hit in enumerate(hits, 1):
        if as_json:
            click.echo(json.dumps({"rank": n, **hit.to_dict()}, ensure_ascii=False))
        else:
            click.echo(_row(n, hit))
            snippet = _snippet(hit, query)
            if snippet:
                click.echo(f"      {snippet}")
    if not hits and not as_json:
        click.echo("no results")
    if html_path:
        from mmrag.render import gallery_html, write_html

        label = query if query is not None else f"similar to {image_ref}"
        uri = write_html(html_path, gallery_html(hits, objects=col.objects, query=label, collection=col.name,
                                                 query_image=blob.data if image_ref is not None else None))
        from mmrag.terminal import plain

        click.secho(f"gallery: {plain(uri)} ({len(hits)} results)", err=True, dim=True)
        if open_browser:
            open_in_browser(uri)
