"""``mmrag models``: which model serves each role, and why; ``--iam``: the IAM policy of each use."""

from __future__ import annotations

import json

import click

from mmrag.cli._app import cli, settings_from


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per role (or per policy) per line.")
@click.option("--iam", is_flag=True, help="Print the IAM policy of the ingest role and of the query role instead.")
@click.option("--account", default="*", show_default=True, help="--iam: AWS account id for the ARNs.")
@click.option("--kms-key", default=None, help="--iam: KMS key ARN of an SSE-KMS bucket.")
@click.pass_context
def models(ctx: click.Context, /, as_json: bool, iam: bool, account: str, kms_key: str | None) -> None:
    """Show which model serves each role (embeddings, image space, captions, decomposition, synthesis) and why.

    With --iam, print one IAM policy document per use (ingest role, query role) for the configured models,
    Region and stores, plus the OpenSearch Serverless data-access policy when it applies. Loads no model and
    makes no network call.
    """
    from dataclasses import asdict

    settings = settings_from(ctx)
    if iam:
        _print_iam(settings, as_json, account, kms_key)
        return
    from mmrag.providers.factory import describe_roles

    roles = describe_roles(settings)
    warnings = _lifecycle_warnings(settings)
    if as_json:
        for role in roles:
            click.echo(json.dumps({"profile": settings.profile, **asdict(role)}))
        for warning in warnings:
            click.echo(json.dumps({"warning": warning}))
        return
    click.echo(f"profile: {settings.profile}")
    width = max(len(r.role) for r in roles)
    for role in roles:
        mark = "✓" if role.available else "✗"
        click.echo(f"{mark} {role.role:<{width}}  {role.provider}: {role.model}")
        click.echo(f"  {'':<{width}}  {role.why}")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _lifecycle_warnings(settings: object) -> list[str]:
    from mmrag.providers.bedrock.catalog import lifecycle_warning

    if getattr(settings, "profile", None) != "bedrock":
        return []
    names = ("fast_model", "strong_model", "text_embedding_model", "image_embedding_model")
    found = [lifecycle_warning(str(getattr(settings, n))) for n in names]
    return list(dict.fromkeys(w for w in found if w))


def _print_iam(settings: object, as_json: bool, account: str, kms_key: str | None) -> None:
    from mmrag.config import Settings
    from mmrag.providers.bedrock.iam import iam_policies

    assert isinstance(settings, Settings)
    policies = iam_policies(settings, account=account, kms_key=kms_key)
    documents: list[tuple[str, object]] = [(f"{use} role", doc) for use, doc in policies.identity.items()]
    if policies.aoss_data_access is not None:
        documents.append(("OpenSearch Serverless data-access policy", policies.aoss_data_access))
    if as_json:
        for name, doc in documents:
            click.echo(json.dumps({"policy": name, "document": doc}))
        for note in policies.notes:
            click.echo(json.dumps({"note": note}))
        return
    for name, doc in documents:
        click.echo(f"# {name}")
        click.echo(json.dumps(doc, indent=2))
    for note in policies.notes:
        click.echo(f"# note: {note}")
