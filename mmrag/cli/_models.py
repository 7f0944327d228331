"""``mmrag models``: which model serves each role, and why."""

from __future__ import annotations

import json

import click

from mmrag.cli._app import cli, settings_from


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per role per line.")
@click.pass_context
def models(ctx: click.Context, /, as_json: bool) -> None:
    """Show which model serves each role (embeddings, image space, captions, decomposition, synthesis) and why.

    Loads no model and makes no network call.
    """
    from dataclasses import asdict

    from mmrag.providers.factory import describe_roles

    settings = settings_from(ctx)
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
