"""What the CLI's long-running commands show while they run (issue 13 item 5): on a terminal a
`rich` progress bar with rate and ETA; elsewhere (a pipe, a log file, CI) the plain lines the
commands always printed, so scripts that read them keep working.

Every value shown that came from a client is printed as text (`markup=False`, `Text`), never
read as rich markup."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _Rate(ProgressColumn):
    """Events per second since the start (the task's `events` field)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        events = int(task.fields.get("events", 0))
        rate = events / elapsed if elapsed > 0 else 0.0
        return Text(f"{events:,} events  {rate:,.0f}/s", style="progress.data.speed")


class Bar:
    """One task's progress: `update(done, events=..., note=...)`; `total` None when unknown."""

    def __init__(self, progress: Progress | None, total: float | None, label: str) -> None:
        self.progress = progress
        self.task = (
            None if progress is None else progress.add_task(label, total=total, events=0, note="")
        )
        self.started = time.monotonic()

    def update(self, done: float, *, events: int, note: str = "") -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done, events=events, note=note)


def console(file: IO[str] | None = None, *, force_terminal: bool | None = None) -> Console:
    return Console(
        file=file or sys.stderr, force_terminal=force_terminal, highlight=False, markup=False
    )


@contextmanager
def bar(label: str, total: float | None, out: Console | None = None) -> Iterator[Bar | None]:
    """A progress bar on a terminal (`out`, stderr by default); None elsewhere: the caller
    prints its plain lines."""
    out = out or console()
    if not out.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=out, transient=False) as progress:
        yield Bar(progress, total, label)
