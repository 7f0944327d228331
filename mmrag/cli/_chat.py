"""``mmrag chat``: an interactive conversation over a collection, with streamed, cited answers.

Each line typed is a question; a follow-up ("and its weight?") is rewritten into a standalone question from the
conversation before retrieval. The conversation is kept in ``MMRAG_HOME/chat_history.sqlite`` under the collection
and the session id, so ``mmrag chat --session ID`` picks up where it left off in that collection, and another
collection never sees it. A damaged history row is skipped with a warning naming the file. Commands: ``/sources``
(the last answer's citations, with snippets and links), ``/reset`` (forget this session's history, damaged rows
included), ``/exit`` (or end of input).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from mmrag.cli._app import cli, settings_from

if TYPE_CHECKING:
    from mmrag.answers import Answer

HELP = "Commands: /sources (citations of the last answer), /reset (forget this conversation), /exit."
_SHOWN_LOGGERS = ("mmrag.chains.chat_history", "mmrag.chains.conversation")


class _Warnings(logging.Handler):
    """Shows the chat's own warnings (a damaged history row, a failed rewrite) as one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from mmrag.terminal import plain

        click.echo(f"warning: {plain(record.getMessage())}", err=True)


@contextmanager
def _warnings_shown(verbose: int) -> Iterator[None]:
    if verbose:  # -v: the root handler prints them already
        yield
        return
    handler = _Warnings(logging.WARNING)
    for name in _SHOWN_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield
    finally:
        for name in _SHOWN_LOGGERS:
            logging.getLogger(name).removeHandler(handler)


def _show_sources(answer: Answer | None) -> None:
    from mmrag.terminal import plain

    if answer is None:
        click.echo("no answer yet in this session")
        return
    if not answer.citations:
        click.echo("the last answer cites no sources")
    for c in answer.citations:
        where = f", {plain(c.location)}" if c.location else (f", page {c.page}" if c.page else "")
        click.echo(f"[{c.marker}] {plain(c.source)}{where} ({c.kind})")
        if c.snippet:
            click.echo(f"    {plain(' '.join(c.snippet.split()))}")
        if c.object_uri:
            click.echo(f"    {plain(c.object_uri)}")


@cli.command()
@click.option("--session", default="default", show_default=True,
              help="Conversation id within the collection (history survives restarts).")
@click.option("-c", "--collection", help="Collection to search [default: MMRAG_COLLECTION or 'default'].")
@click.option("-k", "k", type=click.IntRange(1, 200), default=8, show_default=True, help="Results per ranked list.")
@click.option("--no-decompose", is_flag=True, help="Retrieve for each question as asked only.")
@click.pass_context
def chat(ctx: click.Context, /, session: str, collection: str | None, k: int, no_decompose: bool) -> None:
    """Chat with a collection: follow-up questions use the conversation so far (kept per collection and session)."""
    if not session.strip():
        raise click.UsageError("the session id is empty", ctx)
    with _warnings_shown(int(ctx.meta.get("mmrag.verbose", 0))):
        _chat(ctx, session, collection, k, no_decompose)


def _chat(ctx: click.Context, session: str, collection: str | None, k: int, no_decompose: bool) -> None:
    from mmrag.answers import Answer
    from mmrag.chains._components import open_components
    from mmrag.chains.conversation import conversational_chain, sqlite_chat_history, with_message_history
    from mmrag.chains.query import QueryOptions, build_query_chain
    from mmrag.terminal import plain

    settings = settings_from(ctx, collection=collection)
    providers, col = open_components(settings, create=False)
    query = build_query_chain(settings, providers=providers, collection=col,
                              options=QueryOptions(k=k, decompose=not no_decompose))
    histories = sqlite_chat_history(settings, collection=col.name)
    chain = with_message_history(conversational_chain(query, providers.fast_chat), histories)
    config: Any = {"configurable": {"session_id": session}}
    history = histories(session)
    interactive = sys.stdin.isatty()
    turns = len(history.messages) // 2
    click.echo(f"mmrag chat: collection {col.name}, session {plain(session)}"
               + (f" ({turns} earlier exchanges)" if turns else "") + f". {HELP}", err=True)
    last: Answer | None = None
    while True:
        if interactive:
            click.echo("> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/exit", "/quit"):
            break
        if question == "/reset":
            history.clear()
            last = None
            click.echo("(conversation forgotten)", err=True)
            continue
        if question == "/sources":
            _show_sources(last)
            continue
        if question.startswith("/"):
            click.echo(f"unknown command {plain(question)!r}. {HELP}", err=True)
            continue
        for chunk in chain.stream({"question": question}, config=config):
            if "standalone_question" in chunk and chunk["standalone_question"] != question:
                click.secho(f"(searching for: {plain(chunk['standalone_question'])})", dim=True, err=True)
            if "answer" in chunk:
                click.echo(plain(chunk["answer"]), nl=False)
            if isinstance(chunk.get("result"), Answer):
                last = chunk["result"]
        click.echo("")
        if last is not None and last.citations:
            from mmrag.answers import PLACE_KINDS

            markers = ", ".join(f"[{c.marker}] {plain(c.source)}" + (
                f" {plain(c.location)}" if c.location_kind in PLACE_KINDS else f" p.{c.page}" if c.page else "")
                                for c in last.citations)
            click.secho(f"Sources: {markers}", dim=True)
