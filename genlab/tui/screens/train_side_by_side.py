"""The Train screen's configs side by side, as they run: the sweep's events, drawn.

Owns turning the events of a side-by-side comparison (``iter_sweep`` over the configs, see
``train_compare``) into the screen's views: each config's curves under its legend
(``A lr=0.0002``), its evaluations and samples in the log, a finished config's adapter
offered to the Sample screen, and the end (the best config and the report, or how to resume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.core.experiments.events import (
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
)
from genlab.core.training import run_dir as runs
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.train_charts import TrainCharts
from genlab.tui.wording import tui_message

GOOD = ("completed", "early-stopped")


class SideBySide:
    """One comparison run into ``out_dir``; ``handle`` draws each of its events."""

    def __init__(self, out_dir: Path, charts: TrainCharts, samples: EvalSamples) -> None:
        self.out_dir = Path(out_dir)
        self.charts, self.samples = charts, samples
        self.labels: dict[int, str] = {}
        self.status = ""
        """The latest line for the status bar."""
        self.offers: list[tuple[str, Path]] = []
        """(name, adapter dir) of configs that finished with weights, not yet offered."""
        self.finished: SweepFinished | None = None

    def handle(self, event: Any) -> None:
        if isinstance(event, SweepStarted):
            self.status = f"side by side: {event.done} of {event.budget} configs done before"
        elif isinstance(event, TrialStarted):
            label = str(event.params.get("config", event.number))
            self.labels[event.number] = label
            self.charts.reset_run(label)
            self.samples.add_note(f"{label}: training…", "bold")
        elif isinstance(event, TrialProgress):
            self._progress(event)
        elif isinstance(event, TrialFinished):
            self._trial_finished(event)
        elif isinstance(event, SweepFinished):
            self._finished(event)

    def _progress(self, event: TrialProgress) -> None:
        label = self.labels.get(event.number, str(event.number))
        if event.total_steps:
            self.charts.set_total(label, event.total_steps)
        if event.eval_loss is not None:
            self.charts.add_eval_point(label, event.step, event.eval_loss)
            self.samples.add_note(f"{label} · step {event.step} · eval loss "
                                  f"{event.eval_loss:.3f}", "bold")
            for sample in event.samples:
                self.samples.add_sample(sample.get("prompt", ""), sample.get("text", ""))
        elif event.loss is not None:
            self.charts.add_point(label, event.step, event.loss, event.lr, event.grad_norm)
            self.status = (f"{label}: step {event.step}/{event.total_steps} · loss "
                           f"{event.loss:.3f}")

    def _trial_finished(self, event: TrialFinished) -> None:
        label = self.labels.get(event.number, str(event.number))
        row = event.row
        best = row.get("best_eval_loss")
        value = f" · best eval {best:.3f}" if isinstance(best, float) else ""
        self.samples.add_note(f"{label}: {event.status}{value} · "
                              f"{tui_message(str(row.get('message', '')))}",
                              "bold red" if event.status == "diverged" else "bold")
        adapter = self.out_dir / str(row.get("run_dir", "")) / runs.ADAPTER_DIR
        if event.status in GOOD and adapter.is_dir():
            name = f"{self.out_dir.name.split('-', 3)[-1]}-{label.split()[0]}"
            self.offers.append((name, adapter))

    def _finished(self, event: SweepFinished) -> None:
        self.finished = event
        self.charts.redraw()
        if event.stopped:
            self.status = (f"stopped: {event.trials} configs finished; F6 runs the rest "
                           f"(into {Path(event.out_dir).name})")
        else:
            best = event.best.get("params", {}).get("config", "") if event.best else ""
            report = Path(event.out_dir) / "report.html"
            self.status = f"done: best {best or '–'} · report {report}"
        self.samples.add_note(self.status, "bold")
