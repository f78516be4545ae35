"""One plain line per sweep milestone, for logs (``genlab.sweep`` logs them; nothing prints here).

``sweep_line(event)`` turns an event of ``genlab.core.experiments.events`` into ``(level,
text)``: the sweep's start, each trial's start and result, the retrain of the best config,
a worker's failure and the sweep's end. Per-step ``TrialProgress`` events get no line (a log
line per training step would drown the results); everything else returns None.
"""

from __future__ import annotations

import logging
from typing import Any

from genlab.core.experiments.events import (
    RetrainFinished,
    RetrainStarted,
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialStarted,
    WaitingForTrials,
    WorkerFailed,
)
from genlab.core.generation.grid import format_value

INFO, WARNING = logging.INFO, logging.WARNING


def describe_params(params: dict[str, Any]) -> str:
    """``lr=0.001 rank=8`` (``model_shape.`` prefixes dropped)."""
    return " ".join(f"{key.split('.')[-1]}={_short(value)}" for key, value in params.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else format_value(value)


def _finished(e: TrialFinished) -> str:
    row = e.row
    value = f"{e.objective:.4f}" if e.objective is not None else "-"
    note = f" ({row['message']})" if e.status != "completed" and row.get("message") else ""
    return (f"trial {e.number} {e.status} {value} {describe_params(row.get('params', {}))} "
            f"[{row.get('steps')}/{row.get('total_steps')} steps, "
            f"{row.get('wall_time_s', 0.0):.1f}s]{note}")


def _sweep_finished(e: SweepFinished) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(e.counts.items()))
    best = ""
    if e.best is not None:
        best = (f"; best trial {e.best['trial']}: {e.best['objective']:.4f} "
                f"({describe_params(e.best.get('params', {}))})")
    stopped = " (stopped: rerun into the same directory to finish)" if e.stopped else ""
    report = f"; report {e.report_path}" if e.report_path else ""
    return f"{e.trials} trials ({counts}){best} in {e.elapsed_s:.0f}s{stopped}{report}"


def sweep_line(event: Any) -> tuple[int, str] | None:
    """``(logging level, line)`` for a sweep milestone; None for other events."""
    if isinstance(event, SweepStarted):
        return INFO, (f"sweep {event.study}: {event.method}, {event.budget} trials "
                      f"({event.done} already done), {event.workers} worker(s) -> "
                      f"{event.out_dir}")
    if isinstance(event, TrialStarted):
        return INFO, f"trial {event.number} started: {describe_params(event.params)}"
    if isinstance(event, TrialFinished):
        return (INFO if event.status != "failed" else WARNING), _finished(event)
    if isinstance(event, RetrainStarted):
        return INFO, f"retraining trial {event.trial}'s config in full -> {event.run_dir}"
    if isinstance(event, RetrainFinished):
        loss = (f", best eval loss {event.best_eval_loss:.4f}"
                if event.best_eval_loss is not None else "")
        return INFO, f"retrained best: {event.status}{loss}; weights in {event.output_dir}"
    if isinstance(event, WaitingForTrials):
        return INFO, (f"waiting for trial(s) {', '.join(map(str, event.numbers))} running in "
                      "other processes")
    if isinstance(event, WorkerFailed):
        return WARNING, f"worker {event.worker} failed: {event.message}"
    if isinstance(event, SweepFinished):
        return INFO, _sweep_finished(event)
    return None
