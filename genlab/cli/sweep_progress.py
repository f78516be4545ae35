"""Rendering of ``genlab sweep`` events on stderr: live bars per running trial, a line per result.

Owns only presentation: a transient rich progress bar per running trial (steps, latest loss)
and one permanent line per finished trial (status, objective, parameters, compute), plus the
retrain and worker-failure lines. Events come from ``genlab.core.experiments.events``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from genlab.cli.render import EventRenderer, TaskBars, renders
from genlab.cli.spec_common import describe_params
from genlab.core.experiments.events import (
    RetrainFinished,
    RetrainStarted,
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
    WaitingForTrials,
    WorkerFailed,
)

STYLES = {"completed": "green", "early-stopped": "green", "pruned": "yellow",
          "diverged": "red", "failed": "red"}


class SweepProgress(EventRenderer):
    """Consumes sweep events (``handle``) inside a ``with`` block."""

    def __init__(self, console: Console) -> None:
        self.console = console
        # Text columns, never plain-string ones: a string column is parsed as markup by the
        # print that redraws the bar, so with markup off it leaked "[progress.description]".
        self.bars = TaskBars(
            TextColumn("{task.description}", style="progress.description", markup=False),
            BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}", markup=False),
            TimeElapsedColumn(), console=console)
        self.bar = self.bars.progress
        self.tasks: dict[int, Any] = {}
        self.objective = "objective"
        self.out_dir = ""

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def stopping(self) -> None:
        """First Ctrl-C: say what happens next."""
        self.console.print("genlab: stopping the running trials at their next step (Ctrl-C "
                           "again to abort)", style="yellow", highlight=False)

    def _print(self, text: str, style: str | None = None) -> None:
        # A styled Text, not print(style=...): the print's style would tint the bar redrawn
        # under the line too.
        self.console.print(Text(text, style=style or ""), highlight=False)

    @renders(SweepStarted)
    def _on_sweep_started(self, e: SweepStarted) -> None:
        self.out_dir = e.out_dir
        self._print(f"sweep {e.study}: {e.method}, {e.budget} trials ({e.done} already done), "
                    f"{e.workers} worker(s) · {e.model} · {e.out_dir}", "dim")

    @renders(TrialStarted)
    def _on_trial_started(self, e: TrialStarted) -> None:
        label = f"trial {e.number} {describe_params(e.params)}"[:60]
        self.tasks[e.number] = self.bars.add(label, total=None, loss="")

    @renders(RetrainStarted)
    def _on_retrain_started(self, e: RetrainStarted) -> None:
        self._print(f"retraining trial {e.trial}'s config in full -> {e.run_dir}", "dim")
        self.tasks[-1] = self.bars.add("retrain best", total=None, loss="")

    @renders(TrialProgress)
    def _on_trial_progress(self, e: TrialProgress) -> None:
        task = self.tasks.get(e.number)
        if task is None:
            return
        loss = f"loss {e.loss:.4f}" if e.loss is not None else f"eval {e.eval_loss:.4f}"
        self.bar.update(task, completed=e.step, total=e.total_steps or None, loss=loss)

    @renders(TrialFinished)
    def _on_trial_finished(self, e: TrialFinished) -> None:
        task = self.tasks.pop(e.number, None)
        if task is not None:
            self.bar.remove_task(task)
        row = e.row
        value = f"{e.objective:.4f}" if e.objective is not None else "-"
        extra = ""
        if e.status in ("diverged", "failed", "pruned", "early-stopped"):
            extra = f"  ({row.get('message', '')})"
        self._print(f"trial {e.number:<3d} {e.status:<13s} {value:>8s}  "
                    f"{describe_params(row.get('params', {}))}  "
                    f"[{row.get('steps')}/{row.get('total_steps')} steps, "
                    f"{row.get('wall_time_s', 0.0):.1f}s]{extra}", STYLES.get(e.status))

    @renders(RetrainFinished)
    def _on_retrain_finished(self, e: RetrainFinished) -> None:
        task = self.tasks.pop(-1, None)
        if task is not None:
            self.bar.remove_task(task)
        loss = f", best eval loss {e.best_eval_loss:.4f}" if e.best_eval_loss is not None else ""
        self._print(f"retrained best: {e.status}{loss}; weights in {e.output_dir}",
                    STYLES.get(e.status))

    @renders(WaitingForTrials)
    def _on_waiting_for_trials(self, e: WaitingForTrials) -> None:
        numbers = ", ".join(map(str, e.numbers))
        self._print(f"waiting for trial(s) {numbers} running in other processes", "dim")

    @renders(WorkerFailed)
    def _on_worker_failed(self, e: WorkerFailed) -> None:
        self._print(f"worker {e.worker} failed: {e.message}", "red")

    @renders(SweepFinished)
    def _on_sweep_finished(self, e: SweepFinished) -> None:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(e.counts.items()))
        best = ""
        if e.best is not None:
            best = (f"; best trial {e.best['trial']}: {e.best['objective']:.4f} "
                    f"({describe_params(e.best.get('params', {}))})")
        self._print(f"{e.trials} trials ({counts}){best} in {e.elapsed_s:.0f}s", "bold")
