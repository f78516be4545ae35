"""Terminal rendering of ``genlab lr-find``: a bar with the swept lr and the smoothed loss,
then the suggestions. Presentation only; nothing here imports torch."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from genlab.cli.render import EventRenderer, renders
from genlab.core.events import LrFindFinished, LrFindStarted, LrFindStep

REASONS = {"exploded": "the loss exploded", "end": "--end-lr reached",
           "stopped": "stopped by Ctrl-C"}


def _lr(value: float | None) -> str:
    return f"{value:.2e}" if value is not None else "-"


class LrFindProgress(EventRenderer):
    """A transient bar while the sweep runs (nothing when quiet or not a terminal)."""

    def __init__(self, console: Console, *, quiet: bool, total: int) -> None:
        self.console = console
        self.quiet = quiet
        self.step = 0
        self._bar = Progress(TextColumn("lr-find {task.completed:>4.0f}/{task.total:.0f}"),
                             BarColumn(bar_width=28), TextColumn("lr {task.fields[lr]}"),
                             TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                             console=console, transient=True,
                             disable=quiet or not console.is_terminal)
        self._task = self._bar.add_task("", total=total, lr="-", loss="-")

    def __enter__(self) -> LrFindProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    @renders(LrFindStarted)
    def _on_started(self, event: LrFindStarted) -> None:
        if not self.quiet:
            self.console.print(
                f"lr-find {event.out_dir}: {event.num_steps} steps from lr "
                f"{event.start_lr:g} to {event.end_lr:g} on {event.device}, "
                f"{event.trainable_params:,} params trained (a copy: the model is not "
                "changed)", style="dim", highlight=False)

    @renders(LrFindStep)
    def _on_step(self, event: LrFindStep) -> None:
        self.step = event.step
        self._bar.update(self._task, completed=event.step, lr=_lr(event.lr),
                         loss=f"{event.smoothed_loss:.4f}")


def result_lines(finished: LrFindFinished, data: Any = "DATA") -> list[str]:
    """The summary printed on stdout: the suggestions, why it stopped, the files."""
    lines = [f"Suggested lr: {_lr(finished.suggested_lr)} (steepest descent of the smoothed "
             "loss)",
             f"  minimum / 10   {_lr(finished.min_div10_lr)} (minimum at "
             f"{_lr(finished.min_loss_lr)})",
             f"  {finished.steps} steps in {finished.wall_time_s:.1f}s; stopped: "
             f"{REASONS.get(finished.stop_reason, finished.stop_reason)}",
             f"  plot           {finished.plot_path}",
             f"  curve          {finished.records_path}"]
    if finished.suggested_lr:
        lines += ["Train with it:",
                  f"  genlab train --data {data} --lr {finished.suggested_lr:.2g} ..."]
    return lines
