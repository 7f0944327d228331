"""What the CLI draws: progress bars and report tables (rich), kept out of the library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrag.chains.ingestion import IngestReport, Progress
    from mmrag.config import Settings

__all__ = ["ingest_progress", "print_ingest_report"]

_STAGES = {"sources": "parse", "models": "caption + embed", "write": "write"}


@contextmanager
def ingest_progress(*, enabled: bool) -> Iterator[Progress]:
    """A progress callback drawing one bar per stage on stderr (nothing when disabled or not a terminal)."""
    if not enabled:
        yield lambda stage, advance, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class _EtaColumn(ProgressColumn):
        """Time left, from the rate so far, on bars whose total is known in advance (the sources bar)."""

        max_refresh = 1.0

        def render(self, task: Task) -> Text:
            left = task.time_remaining
            if not task.fields.get("eta") or task.finished or not task.total or not task.completed or left is None:
                return Text("")
            minutes, seconds = divmod(int(left), 60)
            return Text(f"ETA {minutes}:{seconds:02d}", style="progress.remaining")

    console = Console(stderr=True)
    # One source can take minutes (OCR): estimate the pace over a long window, or the ETA swings wildly.
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  _EtaColumn(), console=console, transient=False, disable=not console.is_terminal,
                  speed_estimate_period=600) as bars:
        tasks = {stage: bars.add_task(label, total=None, eta=stage == "sources") for stage, label in _STAGES.items()}

        def update(stage: str, advance: int, total: int | None) -> None:
            task = tasks[stage]
            if total is not None:
                bars.update(task, total=total)
            if advance:
                bars.advance(task, advance)
                if stage != "sources":
                    done = bars.tasks[task].completed
                    bars.update(task, total=done)

        yield update


def _short(source: str) -> str:
    """A path under the working directory is shown relative to it (the report is absolute-path keyed)."""
    import os

    if source.startswith(("http://", "https://")) or not os.path.isabs(source):
        return source
    rel = os.path.relpath(source)
    return source if rel.startswith("..") else rel


def print_ingest_report(report: IngestReport, settings: Settings) -> None:
    """The final table: per-source status, elements by kind, model calls (new vs cached), estimated cost."""
    from rich.console import Console
    from rich.table import Table

    from mmrag.terminal import counted, markup

    out, err = Console(highlight=False), Console(stderr=True, highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)  # piped or captured: do not squeeze paths into 80 columns
    table = Table(title=f"collection {markup(report.collection)}", show_lines=False)
    columns = ["source", "status", "text", "table", "image", "page", "added", "removed"]
    if report.pending:
        columns.append("pending")
    for column in columns:
        table.add_column(column, justify="left" if column in ("source", "status") else "right",
                         overflow="fold" if column == "source" else "ellipsis")
    style = {"failed": "red", "unchanged": "dim", "new": "green", "updated": "yellow"}
    unchanged = [s for s in report.sources if s.status == "unchanged"]
    for s in report.sources:
        if s.status == "unchanged" and len(unchanged) > 1:
            continue  # one summary row below: a re-run lists what changed, not the whole collection again
        counts = [str(s.elements.get(k, 0)) for k in ("text", "table", "image", "page")]
        pending = [f"[yellow]{s.pending}[/]" if s.pending else "0"] if report.pending else []
        table.add_row(markup(_short(s.source)), f"[{style[s.status]}]{s.status}[/]", *counts, str(s.added),
                      str(s.removed), *pending)
    if len(unchanged) > 1:
        counts = [str(sum(s.elements.get(k, 0) for s in unchanged)) for k in ("text", "table", "image", "page")]
        table.add_row(f"[dim]({counted(len(unchanged), 'other source')})[/]" if len(unchanged) < len(report.sources)
                      else f"[dim](all {len(unchanged)} sources)[/]", "[dim]unchanged[/]", *counts, "0", "0",
                      *(["0"] if report.pending else []))
    out.print(table)
    for s in report.sources:
        if s.error:
            err.print(f"[red]✗ {markup(s.source)}: {markup(s.error)}[/]")
        for w in s.warnings:
            err.print(f"[yellow]  ! {markup(s.source)}: {markup(w)}[/]")
    calls = report.model_calls
    kinds = ", ".join(f"{n} {k}" for k, n in report.elements.items()) or "no elements"
    failed = sum(s.status == "failed" for s in report.sources)
    left = f"; {counted(report.pending, 'element')} left pending" if report.pending else ""
    out.print(f"{counted(len(report.sources), 'source')} ({failed} failed); {kinds}{left}")
    out.print(f"model calls: {calls['new']} new, {calls['cached']} cached"
              + (f"; estimated Bedrock cost ${report.estimated_cost_usd:.4f}" if settings.profile == "bedrock" else
                 " (local models: no cost)"))
    if report.pending:
        err.print(f"[yellow]! {report.pending} images/tables got no caption or summary and are left pending "
                  "(searchable by their context text only): run the same ingest again to retry them; "
                  "see -v for why (exit status 1)[/]")
    if settings.profile == "local" and len(unchanged) < len(report.sources):
        out.print("[dim]offline profile: images are described by OCR text only (no vision model); "
                  "set MMRAG_PROFILE=bedrock for Claude captions[/]")
    out.print(f"done in {report.seconds:.1f} s")
