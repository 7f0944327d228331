"""What the CLI draws: progress bars and report tables (rich), kept out of the library."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrag.chains.ingestion import IngestReport, Progress
    from mmrag.config import Settings

__all__ = ["JobProgress", "ingest_progress", "print_ingest_report"]

_STAGES = {"sources": "parse", "models": "caption + embed", "write": "write"}


class JobProgress:
    """What the ingest bars show, from the library's progress ticks (no rich here, so it is testable).

    The model and write stages learn their total only as sources are parsed (``planned`` ticks): until every
    source is parsed it is shown as unknown (``?``), never as the count done so far. The ETA covers the whole job:
    parsing and the model stage run side by side, so it is the later of the two, the model stage's total
    projected from the sources parsed so far while parsing goes on.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.sources_total: int | None = None
        self.done = {"sources": 0, "models": 0, "write": 0}
        self.planned = 0
        self.first_model: float | None = None
        self._lock = threading.Lock()  # ticks come from the model stage's worker threads too

    def update(self, stage: str, advance: int, total: int | None) -> None:
        with self._lock:
            self._update(stage, advance, total)

    def _update(self, stage: str, advance: int, total: int | None) -> None:
        if stage == "sources" and total is not None:
            self.sources_total = total
        if stage == "planned":
            self.planned += advance
        elif stage in self.done and advance:
            if stage == "models" and self.first_model is None:
                self.first_model = self.clock()
            self.done[stage] += advance

    @property
    def parsed(self) -> bool:
        return self.sources_total is not None and self.done["sources"] >= self.sources_total

    def total(self, stage: str) -> int | None:
        """The stage's total, or None while it is not known yet."""
        if stage == "sources":
            return self.sources_total
        return max(self.planned, self.done[stage]) if self.parsed else None

    def running(self) -> list[str]:
        """The stages working now, in pipeline order."""
        out = []
        if not self.parsed:
            out.append("sources")
        if self.done["models"] < self.planned or (not self.parsed and self.planned):
            out.append("models")
        if self.done["write"] < self.done["models"] and "models" not in out:  # a group is written once embedded
            out.append("write")
        return out

    def eta(self) -> float | None:
        """Seconds left for the whole job, or None while there is too little to go on."""
        now = self.clock()
        parse_left = 0.0
        if not self.parsed:
            done, total = self.done["sources"], self.sources_total
            if not done or not total:
                return None
            parse_left = (now - self.started) / done * (total - done)
        models_left = 0.0
        planned = self.planned
        if not self.parsed and self.done["sources"] and self.sources_total:
            planned = round(self.planned * self.sources_total / self.done["sources"])  # projected
        remaining = max(planned - self.done["models"], 0)
        if remaining:
            if not self.done["models"] or self.first_model is None:
                return None if self.parsed else parse_left or None
            rate = self.done["models"] / max(now - self.first_model, 1e-6)
            models_left = remaining / rate
        return max(parse_left, models_left)


@contextmanager
def ingest_progress(*, enabled: bool) -> Iterator[Progress]:
    """A progress callback drawing one bar per stage and a whole-job line with the ETA on stderr (nothing when
    disabled or not a terminal)."""
    if not enabled:
        yield lambda stage, advance, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
    from rich.text import Text

    job = JobProgress()

    class _Count(ProgressColumn):
        """done/total, with ``?`` for a total not known yet."""

        def render(self, task: Task) -> Text:
            stage = task.fields["stage"]
            if stage == "job":
                return Text("")
            total = job.total(stage)
            return Text(f"{job.done[stage]}/{'?' if total is None else total}", style="progress.download")

    class _State(ProgressColumn):
        """The whole job's ETA on the first line; "running" on the stages working now, "done" on finished ones."""

        max_refresh = 1.0

        def render(self, task: Task) -> Text:
            stage = task.fields["stage"]
            if stage == "job":
                left = job.eta()
                if left is None:
                    return Text("ETA …", style="progress.remaining")
                minutes, seconds = divmod(int(left), 60)
                return Text(f"ETA {minutes}:{seconds:02d}", style="progress.remaining")
            if stage in job.running():
                return Text("running", style="bold cyan")
            total = job.total(stage)
            if total is not None and job.done[stage] >= total:
                return Text("done", style="green")
            return Text("waiting", style="dim")

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), _Count(), TimeElapsedColumn(), _State(),
                  console=console, transient=False, disable=not console.is_terminal) as bars:
        whole = bars.add_task("ingest", total=None, stage="job")
        tasks = {stage: bars.add_task(label, total=None, stage=stage) for stage, label in _STAGES.items()}

        def redraw() -> None:
            running = job.running()
            label = " + ".join(_STAGES[s] for s in running) if running else "finishing"
            bars.update(whole, description=f"ingest: {label}"[:40])
            for stage, task in tasks.items():
                bars.update(task, total=job.total(stage), completed=job.done[stage])

        def update(stage: str, advance: int, total: int | None) -> None:
            job.update(stage, advance, total)
            redraw()

        yield update
        redraw()


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
    placed = {k: sum(s.elements.get(k, 0) for s in report.sources if s.status != "failed") for k in report.elements}
    shared = [f"{counted(n, k)} in the table" for k, n in placed.items() if n != report.elements[k]]
    if shared:  # the table counts places: a picture in a page and in a folder is in two rows, indexed once
        kinds += f" ({', '.join(shared)}: a picture found in several sources is indexed once)"
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


class AnswerPrinter:
    """Streams an answer to stdout as it is written, drawing the Markdown tables it quotes as rich tables.

    Text is printed as it arrives; a line that may be a table row (it starts with ``|``) is held until the line
    after it shows whether a table goes on, so a table is drawn once, whole. Cells are document data: printed as
    plain text (no markup), control characters replaced.
    """

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        if not self.console.is_terminal:
            self.console = Console(highlight=False, width=160)  # piped: no squeezing into 80 columns
        self.pending = ""  # the current line, when it may be a table row
        self.table: list[str] = []
        self.mid_line = False  # part of the current line is printed already: it is text

    def feed(self, piece: str) -> None:
        text = self.pending + piece
        self.pending = ""
        while "\n" in text:
            line, text = text.split("\n", 1)
            self._line(line)
        if not text:
            return
        if not self.mid_line and text.lstrip().startswith("|"):
            self.pending = text  # maybe a table row: wait for the end of the line
            return
        self._flush_table()
        self._echo(text, end="")
        self.mid_line = True

    def close(self) -> None:
        """Print what is still held (call once the answer is complete)."""
        if self.pending:
            self._line(self.pending)
            self.pending = ""
        self._flush_table()

    def _line(self, line: str) -> None:
        from mmrag._tables import is_table_row

        if not self.mid_line and is_table_row(line):
            self.table.append(line)
            return
        self._flush_table()
        self._echo(line, end="\n")
        self.mid_line = False

    def _echo(self, text: str, end: str) -> None:
        from rich.text import Text

        from mmrag.terminal import plain

        self.console.print(Text(plain(text)), end=end, soft_wrap=True)

    def _flush_table(self) -> None:
        from rich.table import Table as RichTable
        from rich.text import Text

        from mmrag._tables import Table, segments
        from mmrag.terminal import plain

        lines, self.table = self.table, []
        if not lines:
            return
        for part in segments("\n".join(lines)):
            if isinstance(part, str):
                self._echo(part.rstrip("\n"), end="\n")
                continue
            assert isinstance(part, Table)
            width = max([len(part.header), *(len(r) for r in part.rows)])
            table = RichTable(show_header=bool(part.header), show_lines=False)
            for n in range(width):
                name = part.header[n] if n < len(part.header) else ""
                table.add_column(Text(plain(name)), overflow="fold")
            for row in part.rows:
                table.add_row(*(Text(plain(c)) for c in row))
            self.console.print(table)
