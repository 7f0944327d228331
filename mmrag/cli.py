"""The ``mmrag`` command line. Thin: every command calls a library function that tests can call directly.

Only click is imported at module level so that ``mmrag --help`` starts fast; everything else loads inside
the command that needs it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.parsers import SourceResult

__all__ = ["main"]

_KINDS = ("text", "table", "image", "page")


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    from pydantic import ValidationError

    from mmrag.config import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        raise click.UsageError(f"invalid settings: {problems}", ctx) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmrag", prog_name="mmrag")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """mmrag: multimodal RAG over PDFs, web pages and images.

    Runs offline by default (profile "local"); set MMRAG_PROFILE=bedrock for AWS. Settings come from
    MMRAG_* environment variables and a .env file.
    """
    if verbose:
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _summary_line(result: SourceResult) -> str:
    counts: Counter[str] = Counter(e.kind for e in result.elements)
    parts = [f"{counts[k]} {k}{'s' if counts[k] != 1 else ''}" for k in _KINDS if counts[k]]
    needs_ocr = sum(1 for e in result.elements if e.metadata.get("needs_ocr"))
    if needs_ocr:
        parts.append(f"{needs_ocr} {'pages need' if needs_ocr != 1 else 'page needs'} OCR")
    return ", ".join(parts) or "no content found"


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per element per line (no raw bytes).")
@click.option("--chunk-size", type=int, help="Target chunk size in characters [default: 1000].")
@click.option("--chunk-overlap", type=int, help="Characters shared by consecutive chunks [default: 200].")
@click.option("--pages-as-images/--no-pages-as-images", default=None, help="Also render every PDF page.")
@click.option("--find-tables", type=click.Choice(["auto", "always", "never"]), help="Table detection [default: auto].")
@click.option("--allow-private-urls", is_flag=True, default=None,
              help="Allow URLs on loopback/private addresses (refused by default).")
@click.option("--preview", type=int, default=200, show_default=True, help="Characters of text shown per element.")
@click.pass_context
def parse(ctx: click.Context, /, sources: tuple[str, ...], as_json: bool, preview: int, **overrides: Any) -> None:
    """Split SOURCES (PDFs, HTML files, URLs, images, folders, globs) into elements and report them.

    Exits with status 1 if any source failed; the others are still parsed.
    """
    from mmrag.parsers import ParseOptions, parse_sources

    options = ParseOptions.from_settings(_settings(ctx, **overrides))
    failed = 0
    totals: Counter[str] = Counter()
    for result in parse_sources(sources, options):
        if as_json:
            for element in result.elements:
                click.echo(element.to_json(preview=preview))
            for warning in result.warnings:
                click.echo(json.dumps({"source": result.source, "warning": warning}), err=True)
            if result.error:
                click.echo(json.dumps({"source": result.source, "error": result.error}), err=True)
        else:
            if result.error:
                click.secho(f"✗ {result.source}: {result.error}", fg="red", err=True)
            else:
                click.echo(f"✓ {result.source}: {_summary_line(result)}")
            for warning in result.warnings:
                click.secho(f"  ! {warning}", fg="yellow", err=True)
        failed += not result.ok
        totals.update(e.kind for e in result.elements)
    if not as_json:
        total = ", ".join(f"{totals[k]} {k}" for k in _KINDS)
        click.echo(f"{total} elements; {failed} source{'s' if failed != 1 else ''} failed")
    if failed:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per role per line.")
@click.pass_context
def models(ctx: click.Context, /, as_json: bool) -> None:
    """Show which model serves each role (embeddings, image space, captions, decomposition, synthesis) and why.

    Loads no model and makes no network call.
    """
    from dataclasses import asdict

    from mmrag.providers.factory import describe_roles

    settings = _settings(ctx)
    roles = describe_roles(settings)
    if as_json:
        for role in roles:
            click.echo(json.dumps({"profile": settings.profile, **asdict(role)}))
        return
    click.echo(f"profile: {settings.profile}")
    width = max(len(r.role) for r in roles)
    for role in roles:
        mark = "✓" if role.available else "✗"
        click.echo(f"{mark} {role.role:<{width}}  {role.provider}: {role.model}")
        click.echo(f"  {'':<{width}}  {role.why}")


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-c", "--collection", help="Collection to fill [default: MMRAG_COLLECTION or 'default'].")
@click.option("--force", is_flag=True, help="Re-process sources even when they are unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--chunk-size", type=int, help="Target chunk size in characters [default: 1000].")
@click.option("--chunk-overlap", type=int, help="Characters shared by consecutive chunks [default: 200].")
@click.option("--pages-as-images/--no-pages-as-images", default=None, help="Also render every PDF page.")
@click.option("--allow-private-urls", is_flag=True, default=None,
              help="Allow URLs on loopback/private addresses (refused by default).")
@click.pass_context
def ingest(ctx: click.Context, /, sources: tuple[str, ...], as_json: bool, force: bool, **overrides: Any) -> None:
    """Parse, caption, embed and index SOURCES into a collection (re-running skips unchanged sources).

    Exits with status 1 if any source failed; the others are still ingested.
    """
    from mmrag._cli_render import ingest_progress, print_ingest_report
    from mmrag.chains.ingest import ingest as run_ingest
    from mmrag.errors import MmragError

    settings = _settings(ctx, **overrides)
    try:
        with ingest_progress(enabled=not as_json) as progress:
            report = run_ingest(sources, settings, force=force, progress=progress)
    except MmragError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print_ingest_report(report, settings)
    if not report.ok:
        sys.exit(1)


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per collection per line.")
@click.pass_context
def collections(ctx: click.Context, /, as_json: bool) -> None:
    """List collections under MMRAG_HOME with their sizes (or delete one: mmrag collections delete NAME)."""
    if ctx.invoked_subcommand is not None:
        return
    from mmrag.stores.collection import list_collections

    found = list_collections(_settings(ctx))
    if as_json:
        for c in found:
            click.echo(json.dumps(c))
        return
    if not found:
        click.echo("no collections yet: run mmrag ingest SOURCE...")
    for c in found:
        kinds = ", ".join(f"{n} {k}" for k, n in c["elements"].items()) or "empty"
        click.echo(f"{c['name']}: {c['sources']} sources; {kinds}; {c['bytes'] / 1e6:.1f} MB on disk "
                   f"({c['vector_store']}; text: {c['text_model']}; image: {c['image_model']})")


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def collections_delete(ctx: click.Context, /, name: str, yes: bool) -> None:
    """Delete the collection NAME: its vectors, objects and manifest."""
    from mmrag.errors import MmragError
    from mmrag.stores.collection import delete_collection

    if not yes:
        click.confirm(f"Delete collection {name!r} and everything in it?", abort=True)
    try:
        done = delete_collection(_settings(ctx), name)
    except MmragError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"deleted {done['name']} ({done['sources']} sources)")


@cli.command()
@click.argument("question")
@click.option("-c", "--collection", help="Collection to search [default: MMRAG_COLLECTION or 'default'].")
@click.option("-k", "k", type=click.IntRange(1, 200), default=8, show_default=True, help="Results per ranked list.")
@click.option("--sub-questions", type=click.IntRange(1, 10), default=4, show_default=True,
              help="Most questions retrieval runs (the original included).")
@click.option("--no-decompose", is_flag=True, help="Retrieve for the question as asked only.")
@click.option("--mode", type=click.Choice(["fusion", "qa-pairs"]), default="fusion", show_default=True,
              help="fusion: one synthesis over the fused evidence; qa-pairs: answer each sub-question first.")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as one JSON object.")
@click.option("--show-context", is_flag=True, help="Also print the evidence the answer was built from.")
@click.pass_context
def ask(ctx: click.Context, /, question: str, collection: str | None, k: int, sub_questions: int,
        no_decompose: bool, mode: str, as_json: bool, show_context: bool) -> None:
    """Answer QUESTION from a collection, with numbered citations (streamed as it is written)."""
    from mmrag.answers import Answer
    from mmrag.chains.query import QueryOptions, build_query_chain
    from mmrag.chains.synthesize import render_context
    from mmrag.errors import MmragError

    settings = _settings(ctx, collection=collection)
    options = QueryOptions(k=k, max_sub_questions=sub_questions, decompose=not no_decompose, mode=mode)  # type: ignore[arg-type]
    answer: Answer | None = None
    try:
        chain = build_query_chain(settings, options=options)
        for piece in chain.stream(question):
            if isinstance(piece, Answer):
                answer = piece
            elif not as_json:
                click.echo(piece, nl=False)
    except MmragError as e:
        raise click.ClickException(str(e)) from e
    if answer is None:
        raise click.ClickException("the query chain produced no answer")
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    click.echo("")
    if answer.mode == "extractive" and settings.profile == "local":
        click.secho("(extractive: quoted from the sources; no generator is configured offline)", dim=True, err=True)
    if answer.citations:
        click.echo("\nSources:")
    for c in answer.citations:
        page = f", page {c.page}" if c.page else ""
        link = f"  {c.object_uri}" if c.object_uri else ""
        click.echo(f"[{c.marker}] {c.source}{page} ({c.kind}){link}")
    if show_context:
        click.echo("\nContext:")
        click.echo(render_context(answer.hits))


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

    from mmrag.chains.ingest import open_components
    from mmrag.chains.synthesize import object_uri
    from mmrag.errors import MmragError
    from mmrag.retrievers.search import search_image, search_text

    if (query is None) == (image_path is None):
        raise click.UsageError("give either a text QUERY or --image FILE", ctx)
    settings = _settings(ctx, collection=collection)
    try:
        providers, col = open_components(settings)
        if image_path is not None:
            hits = search_image(Path(image_path).read_bytes(), providers, col, k=k)
        else:
            assert query is not None
            hits = search_text(query, providers, col, k=k, images_only=images_only)
            if images_only and not getattr(providers.image_embedder, "supports_text_queries", False):
                click.secho("(text→image through captions, OCR and nearby text: the image model cannot embed "
                            "text; configure CLIP or the bedrock profile for visual matching)", dim=True, err=True)
    except (MmragError, ValueError) as err:
        raise click.ClickException(str(err)) from err
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


def main() -> None:
    """Entry point of the ``mmrag`` console script and ``python -m mmrag``."""
    cli(prog_name="mmrag")
