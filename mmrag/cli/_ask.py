"""``mmrag ask``: a cited answer from a collection."""

from __future__ import annotations

import json

import click

from mmrag.cli._app import cli, settings_from


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
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the answer with its cited evidence (images, highlighted regions) to this HTML file.")
@click.option("--open", "open_browser", is_flag=True, help="Open the --html page in the default browser.")
@click.pass_context
def ask(ctx: click.Context, /, question: str, collection: str | None, k: int, sub_questions: int,
        no_decompose: bool, mode: str, as_json: bool, show_context: bool, html_path: str | None = None,
        open_browser: bool = False) -> None:
    """Answer QUESTION from a collection, with numbered citations (streamed as it is written)."""
    from mmrag.answers import Answer
    from mmrag.chains.query import QueryOptions, build_query_chain
    from mmrag.chains.synthesis import render_context

    settings = settings_from(ctx, collection=collection)
    options = QueryOptions(k=k, max_sub_questions=sub_questions, decompose=not no_decompose, mode=mode)  # type: ignore[arg-type]
    answer: Answer | None = None
    if not question.strip():
        raise click.UsageError("the question is empty", ctx)
    chain = build_query_chain(settings, options=options)
    for piece in chain.stream(question):
        if isinstance(piece, Answer):
            answer = piece
        elif not as_json:
            click.echo(piece, nl=False)
    if answer is None:
        raise click.ClickException("the query chain produced no answer")
    _write_html(answer, html_path, open_browser)
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


def _write_html(answer: object, html_path: str | None, open_browser: bool) -> None:
    """``--html PATH [--open]``: the visual answer page (pictures read from the citations' object links)."""
    if not html_path:
        if open_browser:
            raise click.UsageError("--open needs --html PATH (the page to open)")
        return
    from mmrag.answers import Answer
    from mmrag.render import answer_html, write_html
    from mmrag.terminal import plain

    assert isinstance(answer, Answer)
    uri = write_html(html_path, answer_html(answer, fetch_links=True))
    click.secho(f"answer page: {plain(uri)}", err=True, dim=True)
    if open_browser:
        import webbrowser

        webbrowser.open(uri)
