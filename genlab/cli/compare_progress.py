"""Rendering of ``genlab compare`` events on stderr: a bar of generations, a line per cell.

Owns only presentation; the events come from ``genlab.core.experiments.compare``. Imported by
``compare_cmd`` when the command runs, so ``--help`` stays light.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from genlab.cli.render import EventRenderer, TaskBars, renders
from genlab.core.events import RowFinished
from genlab.core.experiments.compare import CellFinished, CompareStarted


class CompareProgress(EventRenderer):
    """A transient bar of finished generations and one permanent line per finished cell."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = TaskBars(TextColumn("{task.description}", markup=False), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.bar = self.bars.progress
        self.task: Any = None

    def __enter__(self) -> CompareProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def stopping(self) -> None:
        """First Ctrl-C: say what happens next."""
        self.console.print("genlab: stopping after the batch in flight (Ctrl-C again to "
                           "abort)", style="yellow", highlight=False)

    @renders(CompareStarted)
    def _on_started(self, event: CompareStarted) -> None:
        self.console.print(f"{event.model} · {event.cells} cells ({event.done} already done) "
                           f"· {event.out_dir}", style="dim", markup=False, highlight=False)
        self.task = self.bars.add("generating", total=max(1, event.rows))

    @renders(RowFinished)
    def _on_row(self, event: RowFinished) -> None:
        if self.task is not None:
            self.bar.advance(self.task)

    @renders(CellFinished)
    def _on_cell(self, event: CellFinished) -> None:
        texts = [o["text"] for o in event.row.get("outputs", [])]
        first = (texts[0] if texts else "").replace("\n", " ")[:60]
        self.console.print(f"cell {event.index}: {event.label}  {first!r}", markup=False,
                           highlight=False)
