"""``mmrag ask``: a cited answer from a collection."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from mmrag.cli._app import check_output_file, cli, freeze_imports, gc_paused, open_in_browser, settings_from

if TYPE_CHECKING:
    from mmrag.answers import Answer, Citation


def parse_weights(ctx: click.Context | None, param: click.Parameter | None,
                  values: tuple[str, ...]) -> dict[str, float]:
    """``("image=2", "bm25:q1=0.5")`` -> ``{"image": 2.0, "bm25:q1": 0.5}`` (a click callback)."""
    out: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            weight = float(number)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not weight >= 0 or weight == float("inf"):
            raise click.BadParameter(f"{value!r}: write LIST=WEIGHT with a number >= 0, e.g. image=2", ctx, param)
        _check_list_name(name.strip(), ctx, param)
        out[name.strip()] = weight
    return out


def _check_list_name(name: str, ctx: click.Context | None, param: click.Parameter | None) -> None:
    """A weight names a kind of list (``image``) or one list (``bm25:q2``) the retriever makes: a typo is an error,
    not a weight that silently applies to nothing."""
    import difflib
    import re

    from mmrag.retrievers.multimodal import LIST_KINDS

    kind, _, which = name.partition(":")
    if kind in LIST_KINDS and (not which or re.fullmatch(r"q[1-9]\d*", which)):
        return
    if kind in LIST_KINDS:
        raise click.BadParameter(f"{name!r}: a list of one sub-question is written {kind}:q1, {kind}:q2, ...", ctx,
                                 param)
    close = difflib.get_close_matches(kind, LIST_KINDS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise click.BadParameter(f"{name!r} names no list: {hint}lists are {', '.join(LIST_KINDS)} (or one sub-question's, "
                             "e.g. bm25:q2)", ctx, param)


def filter_options(command: Any) -> Any:
    """``--source GLOB``, ``--kind K`` and ``--page N`` (each repeatable): restrict what retrieval may find."""
    for option in reversed([
        click.option("--source", "sources", multiple=True, metavar="GLOB",
                     help="Only these sources (glob on path, relative path, file name or URL; repeatable)."),
        click.option("--kind", "kinds", multiple=True, type=click.Choice(["text", "table", "image", "page"]),
                     help="Only elements of this kind (repeatable)."),
        click.option("--page", "pages", multiple=True, type=click.IntRange(1), help="Only this page (repeatable)."),
    ]):
        command = option(command)
    return command


def _where(citation: Citation) -> str:
    """``, page 3``, ``, slide 3``, ``, Sales!A1:D40``, `` @ 12:31–12:47``: the place in the format's terms, after the
    source."""
    from mmrag.terminal import plain

    if citation.start is not None:  # video and audio: talk.mp4 @ 12:31–12:47
        from mmrag.answers import clock_span

        return f" @ {clock_span(citation.start, citation.end)}"
    if citation.location:
        return f", {plain(citation.location)}"
    return f", page {citation.page}" if citation.page else ""


def print_sources(answer: Answer) -> None:
    """The numbered citations of an answer, one line each."""
    from mmrag.terminal import plain

    if answer.citations:
        click.echo("\nSources:")
    for c in answer.citations:
        where = _where(c)
        link = f"  {plain(c.object_uri)}" if c.object_uri else ""
        click.echo(f"[{c.marker}] {plain(c.source)}{where} ({c.kind}){link}")


@cli.command()
@click.argument("question")
@click.option("-c", "--collection", help="Collection to search [default: MMRAG_COLLECTION or 'default'].")
@click.option("-k", "k", type=click.IntRange(1, 200), default=8, show_default=True, help="Results per ranked list.")
@click.option("--sub-questions", type=click.IntRange(1, 10), default=4, show_default=True,
              help="Most questions retrieval runs (the original included).")
@click.option("--no-decompose", is_flag=True, help="Retrieve for the question as asked only.")
@click.option("--mode", type=click.Choice(["fusion", "qa-pairs"]), default="fusion", show_default=True,
              help="fusion: one synthesis over the fused evidence; qa-pairs: answer each sub-question first "
                   "(needs a chat model: offline it runs as fusion).")
@click.option("--fusion", type=click.Choice(["rrf", "weighted", "relative"]), default=None,
              help="How ranked lists are fused: rrf (default), weighted RRF or relative score fusion "
                   "[default: rrf; weighted when --weights is given].")
@click.option("--weights", "weights", multiple=True, callback=parse_weights, metavar="LIST=W",
              help="Weight of a kind of list (dense, bm25, image) or one list (image:q2), e.g. image=2; repeatable.")
@filter_options
@click.option("--cache/--no-cache", "answer_cache", default=None,
              help="Reuse the answer to a similar earlier question on unchanged data [default: MMRAG_ANSWER_CACHE].")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as one JSON object.")
@click.option("--show-context", is_flag=True, help="Also print the evidence the answer was built from.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the answer with its cited evidence (images, highlighted regions) to this HTML file.")
@click.option("--open", "open_browser", is_flag=True, help="Open the --html page in the default browser.")
@click.pass_context
def ask(ctx: click.Context, /, question: str, collection: str | None, k: int, sub_questions: int,
        no_decompose: bool, mode: str, fusion: str | None, weights: dict[str, float], sources: tuple[str, ...],
        kinds: tuple[str, ...], pages: tuple[int, ...], answer_cache: bool | None, as_json: bool,
        show_context: bool, html_path: str | None = None, open_browser: bool = False) -> None:
    """Answer QUESTION from a collection, with numbered citations (streamed as it is written)."""
    if not question.strip():
        raise click.UsageError("the question is empty", ctx)
    fusion = fusion or ("weighted" if weights else "rrf")
    if weights and fusion == "rrf":
        raise click.UsageError("--weights needs --fusion weighted or relative", ctx)
    if open_browser and not html_path:
        raise click.UsageError("--open needs --html PATH (the page to open)", ctx)
    check_output_file(html_path)  # before the answer streams, not after
    with gc_paused():  # imports and opening: most of a cold ask (bench/startup.py)
        from mmrag.answers import Answer
        from mmrag.chains._components import open_components
        from mmrag.chains.answer_cache import CachedAnswer
        from mmrag.chains.query import QueryOptions, build_query_chain, metadata_filter
        from mmrag.chains.synthesis import render_context
        from mmrag.terminal import plain

        freeze_imports()
        settings = settings_from(ctx, collection=collection)
        providers, col = open_components(settings, create=False)
    options = QueryOptions(k=k, max_sub_questions=sub_questions, decompose=not no_decompose, mode=mode,  # type: ignore[arg-type]
                           fusion=fusion, weights=weights,  # type: ignore[arg-type]
                           filter=metadata_filter(col, sources=sources, kinds=kinds, pages=pages),
                           answer_cache=answer_cache)
    answer: Answer | None = None
    chain = build_query_chain(settings, providers=providers, collection=col, options=options)
    from mmrag._cli_render import AnswerPrinter
    from mmrag.cli._interrupt import interruptible

    printer = AnswerPrinter()  # quoted Markdown tables drawn as tables
    with interruptible():  # Ctrl-C stops at once, not after the retrieval threads finish
        for piece in chain.stream(question):
            if isinstance(piece, Answer):
                answer = piece
            elif not as_json:
                printer.feed(piece)
    printer.close()
    if answer is None:
        raise click.ClickException("the query chain produced no answer")
    _write_html(answer, html_path, open_browser)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    click.echo("")
    if isinstance(answer, CachedAnswer):
        click.secho(f"(cached: the answer to {plain(answer.cached_question)!r}, similarity {answer.similarity:.2f}; "
                    "the collection has not changed since)", dim=True, err=True)
    if answer.decomposition and answer.decomposition.startswith("rules ("):  # the model failed: say so, once
        click.secho(f"(decomposition: {plain(answer.decomposition)})", dim=True, err=True)
    if answer.mode == "extractive" and settings.profile == "local":
        click.secho("(extractive: quoted from the sources; no generator is configured offline)", dim=True, err=True)
    print_sources(answer)
    if show_context:
        click.echo("\nContext:")
        click.echo(plain(render_context(answer.hits)))


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
        open_in_browser(uri)
