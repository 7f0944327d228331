"""``mmrag parse``: what the parsers extract, without indexing anything."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import click

from mmrag.cli._app import cli, parse_options, settings_from

if TYPE_CHECKING:
    from mmrag.parsers import SourceResult

_KINDS = ("text", "table", "image", "page")


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
@parse_options
@click.option("--preview", type=int, default=200, show_default=True, help="Characters of text shown per element.")
@click.pass_context
def parse(ctx: click.Context, /, sources: tuple[str, ...], as_json: bool, preview: int, **overrides: Any) -> None:
    """Split SOURCES (PDFs, HTML files, URLs, images, folders, globs) into elements and report them.

    Exits with status 1 if any source failed; the others are still parsed.
    """
    from mmrag.parsers import ParseOptions, parse_sources
    from mmrag.terminal import plain

    options = ParseOptions.from_settings(settings_from(ctx, **overrides))
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
                click.secho(f"✗ {plain(result.source)}: {plain(result.error)}", fg="red", err=True)
            else:
                click.echo(f"✓ {plain(result.source)}: {_summary_line(result)}")
            for warning in result.warnings:
                click.secho(f"  ! {plain(warning)}", fg="yellow", err=True)
        failed += not result.ok
        totals.update(e.kind for e in result.elements)
    if not as_json:
        total = ", ".join(f"{totals[k]} {k}" for k in _KINDS)
        click.echo(f"{total} elements; {failed} source{'s' if failed != 1 else ''} failed")
    if failed:
        sys.exit(1)
