"""The state of one experiment on the Experiments screen, kept from the core's events.

Owns what the screen draws about a run: per trial its loss series (``curves.Series``) and its
``results.jsonl`` row once finished, the trial running now (its step, its best eval so far),
the samples and cells waiting to be shown, and the end (report, best). Resuming an output
directory first loads what is already there (the rows, and each finished trial's curves from
its ``metrics.jsonl``), so a resumed sweep shows its earlier trials too. ``handle`` returns
the notes the screen writes in its log. No Textual here: the screen renders this.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from genlab.core.events import RowFinished
from genlab.core.experiments.events import (
    CellFinished,
    CompareFinished,
    CompareStarted,
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
from genlab.core.io import read_jsonl
from genlab.core.reports.results import RESULTS_FILE
from genlab.core.reports.summary import sort_rows
from genlab.core.training import run_dir as runs
from genlab.tui.widgets.curves import Series
from genlab.tui.widgets.experiment_table import point_label
from genlab.tui.widgets.plan_view import duration
from genlab.tui.wording import tui_message

RETRAIN = -1
GOOD = ("completed", "early-stopped")
Note = tuple[str, str]


class ExperimentRun:
    """One run of a spec into ``out_dir`` (see the module docstring)."""

    def __init__(self, spec: Any, out_dir: Path) -> None:
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.rows: dict[int, dict[str, Any]] = {}
        self.series: dict[int, Series] = {}
        self.current: int | None = None
        self.current_params: dict[str, Any] = {}
        self.step, self.total, self.loss = 0, 0, math.nan
        self.best_so_far: float | None = None
        self.finished: SweepFinished | CompareFinished | None = None
        self.stopped = False
        self.best: dict[str, Any] | None = None
        self.generations = 0
        self.chart_dirty = self.table_dirty = True
        self._samples: list[dict[str, str]] = []
        self._cells: list[tuple[int, dict[str, Any]]] = []
        self._last_step_at: float | None = None
        self._step_s: float | None = None
        self._started = time.monotonic()
        self.elapsed_s = 0.0

    # ------------------------------------------------------------------ resume

    def carry_over(self, previous: ExperimentRun) -> None:
        """Keep what an earlier run into the same directory finished (in this session)."""
        for number, row in previous.rows.items():
            self.rows.setdefault(number, row)
            if number in previous.series:
                self.series.setdefault(number, previous.series[number])

    def load_finished(self) -> None:
        """Show what an earlier run of this output directory already finished."""
        key = "trial" if self.spec.kind == "sweep" else "cell"
        for row in read_jsonl(self.out_dir / RESULTS_FILE):
            if isinstance(row.get(key), int):
                self.rows.setdefault(row[key], row)
        if self.spec.kind == "compare":
            self._cells += sorted(self.rows.items())
            return
        for number, row in self.rows.items():
            series = Series(point_label(row.get("params", {})))
            run_dir = self.out_dir / str(row.get("run_dir", ""))
            for record in runs.read_metrics(run_dir):
                if record.get("type") == "train" and record.get("loss") is not None:
                    series.add_step(record["step"], record["loss"])
                elif record.get("type") == "eval" and record.get("loss") is not None:
                    series.add_eval(record["step"], record["loss"])
            series.diverged = series.diverged or row.get("status") == "diverged"
            self.series[number] = series

    # ------------------------------------------------------------------ events

    def handle(self, event: Any) -> list[Note]:
        """Update from one core event; returns notes for the log."""
        if isinstance(event, TrialProgress):
            return self._progress(event)
        if isinstance(event, TrialStarted):
            return self._trial_started(event)
        if isinstance(event, TrialFinished):
            return self._trial_finished(event)
        if isinstance(event, RowFinished):
            self.generations += 1
            return []
        if isinstance(event, CellFinished):
            self.rows[event.index] = event.row
            self._cells.append((event.index, event.row))
            self.table_dirty = True
            return []
        if isinstance(event, (SweepFinished, CompareFinished)):
            return self._finished(event)
        return self._other(event)

    def _trial_started(self, event: TrialStarted) -> list[Note]:
        self.current, self.current_params = event.number, dict(event.params)
        self.step, self.total, self.best_so_far = 0, event.total_steps, None
        self.series[event.number] = Series(point_label(event.params))
        self.table_dirty = self.chart_dirty = True
        return [(f"trial {event.number} · {point_label(event.params)}", "bold")]

    def _progress(self, event: TrialProgress) -> list[Note]:
        number = event.number
        if number not in self.series:
            self.series[number] = Series("best, retrained" if number == RETRAIN else
                                         str(number))
        series = self.series[number]
        self.step, self.total = event.step, event.total_steps or self.total
        series.total_steps = self.total or None
        self.chart_dirty = True
        if event.eval_loss is not None:
            series.add_eval(event.step, event.eval_loss)
            if math.isfinite(event.eval_loss):
                self.best_so_far = min(self.best_so_far or math.inf, event.eval_loss)
            self._samples += list(event.samples)
            self.table_dirty = True
            return [(f"step {event.step} · eval loss {event.eval_loss:.3f}", "")]
        if event.loss is not None:
            series.add_step(event.step, event.loss, event.lr, event.grad_norm)
            self.loss = event.loss
            self._time_step()
        return []

    def _time_step(self) -> None:
        now = time.monotonic()
        if self._last_step_at is not None:
            dt = now - self._last_step_at
            self._step_s = dt if self._step_s is None else 0.9 * self._step_s + 0.1 * dt
        self._last_step_at = now

    def _trial_finished(self, event: TrialFinished) -> list[Note]:
        self.rows[event.number] = event.row
        if event.status == "diverged" and event.number in self.series:
            self.series[event.number].diverged = True
        self.current = None
        self._last_step_at = None
        self.table_dirty = self.chart_dirty = True
        value = event.row.get("best_eval_loss")
        best = f" · best eval {value:.3f}" if isinstance(value, float) else ""
        style = "bold red" if event.status == "diverged" else "bold"
        return [(f"trial {event.number}: {event.status}{best} · "
                 f"{tui_message(str(event.row.get('message', '')))}", style)]

    def _other(self, event: Any) -> list[Note]:
        if isinstance(event, SweepStarted):
            return [(f"{event.study}: {event.done} of {event.budget} trials done before · "
                     f"study {event.storage}", "dim italic")]
        if isinstance(event, CompareStarted):
            return [(f"{event.model}: {event.cells} cells, {event.done} done before", "dim")]
        if isinstance(event, RetrainStarted):
            self.current, self.step = RETRAIN, 0
            self.series[RETRAIN] = Series("best, retrained")
            return [(f"retraining the best ({point_label(event.params)}) into "
                     f"{event.run_dir}", "bold")]
        if isinstance(event, RetrainFinished):
            self.current = None
            return [(f"retrained: {event.status} → {event.output_dir}", "bold green")]
        if isinstance(event, WaitingForTrials):
            return [(f"waiting for trials {event.numbers} (other workers)", "dim")]
        if isinstance(event, WorkerFailed):
            return [(f"worker {event.worker} failed: {event.message}", "bold red")]
        return []

    def _finished(self, event: SweepFinished | CompareFinished) -> list[Note]:
        self.finished = event
        self.elapsed_s = time.monotonic() - self._started
        self.stopped = getattr(event, "stopped", False) or getattr(event, "cancelled", False)
        if self.current is not None and self.current not in self.rows:
            self.series.pop(self.current, None)  # a stopped trial is not kept: redone later
        self.current = None
        self.best = getattr(event, "best", None)
        self.table_dirty = self.chart_dirty = True
        return [(self.summary_text(), "bold")]

    # ------------------------------------------------------------------ views

    def take_samples(self) -> list[dict[str, str]]:
        samples, self._samples = self._samples, []
        return samples

    def take_cells(self) -> list[tuple[int, dict[str, Any]]]:
        cells, self._cells = self._cells, []
        return cells

    def rows_list(self) -> list[dict[str, Any]]:
        return [self.rows[n] for n in sorted(self.rows)]

    def running_row(self) -> dict[str, Any] | None:
        if self.current is None or self.current == RETRAIN:
            return None
        return {"trial": self.current, "params": self.current_params, "step": self.step,
                "total": self.total, "best_eval": self.best_so_far}

    def series_snapshot(self) -> list[Series]:
        return [self.series[n].snapshot() for n in sorted(self.series)]

    def table_title(self) -> str:
        if self.spec.kind == "compare":
            return f"cells: {len(self.rows)} of {len(self.spec.cells())} done"
        name = self.spec.objective.replace("_", " ")
        return f"trials: {len(self.rows)} of {self.spec.budget} done · sorted by {name}"

    def status_text(self) -> str:
        """One line: where the run is, and about how long is left."""
        if self.finished is not None:
            return self.summary_text()
        if self.spec.kind == "compare":
            want = len(self.spec.cells()) * self.spec.rows_per_cell
            return (f"{self.spec.name}: {self.generations} of {want} generations · "
                    f"{len(self.rows)} cells done")
        if self.current is None:
            return f"{self.spec.name}: {len(self.rows)} of {self.spec.budget} trials done…"
        label = "best, retrained" if self.current == RETRAIN else \
            f"trial {self.current} ({point_label(self.current_params)})"
        loss = f" · loss {self.loss:.3f}" if math.isfinite(self.loss) else ""
        return (f"{label}: step {self.step}/{self.total or '?'}{loss} · "
                f"{len(self.rows)}/{self.spec.budget} done{self._eta()}")

    def _eta(self) -> str:
        if self._step_s is None or not self.total or self.current == RETRAIN:
            return ""
        left = self.spec.budget - len(self.rows) - 1
        steps = max(left, 0) * self.total + max(self.total - self.step, 0)
        return f" · ~{duration(steps * self._step_s)} left"

    def summary_text(self) -> str:
        spec = self.spec
        if self.finished is None:
            return ""
        if self.stopped:
            return (f"stopped: {len(self.rows)} finished, kept in {self.out_dir}; F5 "
                    "resumes the rest")
        if spec.kind == "compare":
            return f"done: {len(self.rows)} cells · report {self.report_html() or '–'}"
        best = sort_rows(self.rows_list())[:1]
        text = f"done: {len(self.rows)} trials"
        if best and best[0].get("objective") is not None:
            text += (f" · best {point_label(best[0].get('params', {}))} "
                     f"({best[0]['objective']:.3f})")
        return text + f" · report {self.report_html() or '–'}"

    def report_html(self) -> Path | None:
        report = getattr(self.finished, "report_path", "") if self.finished else ""
        if not report:
            return None
        return Path(report).with_suffix(".html")

    def best_weights(self) -> Path | None:
        """The best configuration's weights: the retrain's, else the best trial's."""
        best = self.best
        if not best:
            return None
        retrained = self.out_dir / "best"
        for base in (retrained, self.out_dir / str(best.get("run_dir", ""))):
            for name in (runs.ADAPTER_DIR, runs.MODEL_DIR):
                if (base / name).is_dir():
                    return base / name
        return None
