"""The fake source's experiments: sweeps and compares with the core's events, no torch.

``FakeExperiments`` is mixed into ``FakeSource``. A fake sweep runs every grid point (or a
typical point per trial) as a made-up training curve whose speed follows the learning rate,
diverging (loss ``inf``) at a learning rate of 0.5 or more, exactly as the core reports it
(``TrialFinished`` with status ``diverged``); a stop ends the running trial unrecorded, and a
rerun into the same output directory skips the trials already finished, like the real study.
A fake compare yields a ``RowFinished`` per generation and a ``CellFinished`` per cell. Nothing
is written to disk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genlab.core.events import RowFinished, StopToken
from genlab.core.experiments.events import (
    CellFinished,
    CompareFinished,
    CompareStarted,
    EstimateFinished,
    PointMeasured,
    PointTiming,
    RetrainFinished,
    RetrainStarted,
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
)
from genlab.core.generation.grid import GridCell, build_rows

FAKE_TRIAL_STEPS = 30
"""Steps of a fake trial whose spec sets no max_steps."""
DIVERGE_LR = 0.5


class FakeExperiments:
    """Sweep, compare and estimate methods of ``FakeSource`` (uses its ``step_delay_s``)."""

    step_delay_s: float
    _sweep_rows: dict[str, dict[int, dict[str, Any]]]

    def iter_sweep(self, spec: Any, *, out_dir: str | Path, stop_token: StopToken
                   ) -> Iterator[Any]:
        rows = self._sweep_rows.setdefault(str(out_dir), {})
        points = _points(spec)
        yield SweepStarted(str(out_dir), "sqlite:///fake-study.db", spec.name, spec.method,
                           spec.budget, len(rows), 1, "fake-model")
        for number, params in enumerate(points):
            if number in rows:
                continue
            if stop_token.stopped:
                break
            row = yield from self._iter_trial(spec, number, params, out_dir, stop_token)
            if row is None:
                break
            rows[number] = row
            yield TrialFinished(number, row["status"], row["objective"], row)
        done = [rows[n] for n in sorted(rows)]
        good = [r for r in done if r["objective"] is not None]
        best = min(good, key=lambda r: r["objective"]) if good else None
        counts: dict[str, int] = {}
        for row in done:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        stopped = stop_token.stopped and len(done) < len(points)
        if best is not None and spec.retrain_best and not stopped:
            yield from self._iter_retrain(spec, best, out_dir)
        report = "" if stopped or not done else str(Path(out_dir) / "report.md")
        yield SweepFinished(str(out_dir), len(done), counts, best, stopped, report, 0.1)

    def _iter_retrain(self, spec: Any, best: dict[str, Any], out_dir: str | Path
                      ) -> Iterator[Any]:
        """The retrain of the best point (``retrain_best``), as trial -1."""
        run_dir = Path(out_dir) / "best"
        yield RetrainStarted(best["trial"], best["params"], str(run_dir))
        lr = float(spec.trial_fields(best["params"])[0].get("lr", 2e-4))
        for step in range(1, FAKE_TRIAL_STEPS + 1):
            yield TrialProgress(-1, step, FAKE_TRIAL_STEPS, fake_loss(lr, step), lr=lr)
        yield RetrainFinished(best["trial"], "completed", str(run_dir),
                              str(run_dir / "adapter"), best.get("objective"))

    def _iter_trial(self, spec: Any, number: int, params: dict[str, Any],
                    out_dir: str | Path, stop: StopToken) -> Iterator[Any]:
        """One fake trial; returns its row, or None when stopped (not recorded)."""
        train, _ = spec.trial_fields(params)
        total = int(train.get("max_steps") or FAKE_TRIAL_STEPS)
        every = int(train.get("eval_every", 10)) or total
        lr = float(train.get("lr", 2e-4))
        run_dir = Path(out_dir) / "trials" / f"{number:04d}"
        yield TrialStarted(number, params, str(run_dir), 0, total)
        best, last_eval, status, step = math.inf, None, "completed", 0
        for step in range(1, total + 1):
            loss = fake_loss(lr, step)
            yield TrialProgress(number, step, total, loss, lr=lr, grad_norm=1.0)
            if not math.isfinite(loss):
                status = "diverged"
                break
            if step % every == 0 or step == total:
                last_eval = loss + 0.2
                best = min(best, last_eval)
                yield TrialProgress(number, step, total, None, last_eval, 0, (
                    {"prompt": "Q:", "text": f" trial {number} at step {step}"},))
            if self.step_delay_s:
                time.sleep(self.step_delay_s)
            if stop.stopped and step < total:
                return None
        objective = None if status == "diverged" else best
        return {"trial": number, "status": status, "objective": objective, "params": params,
                "fields": spec.search.expand(params), "run_dir": f"trials/{number:04d}",
                "steps": step, "total_steps": total, "wall_time_s": step * 0.1,
                "best_eval_loss": objective, "final_eval_loss": last_eval,
                "final_train_loss": None if status == "diverged" else fake_loss(lr, step),
                "message": "loss inf at step 3; try a lower --lr" if status == "diverged"
                else f"fake trial {status}"}

    def iter_compare(self, spec: Any, *, out_dir: str | Path, stop_token: StopToken,
                     loaded: Any = None) -> Iterator[Any]:
        cells = spec.cells()
        grid = [GridCell(c.index, c.params, c.adapter) for c in cells]
        rows = build_rows(spec.prompts, grid, spec.samples, spec.seed)
        yield CompareStarted(str(out_dir), "fake-model", len(cells), 0, len(rows))
        outputs: dict[int, list[dict[str, Any]]] = {c.index: [] for c in cells}
        finished = 0
        for n, row in enumerate(rows):
            if stop_token.stopped:
                break
            text = f" {row.cell.params.temperature:g} says story {row.sample_index}"
            yield RowFinished(n, "length", text, (1, 2, 3), 0.01)
            outputs[row.cell.index].append({"prompt_index": row.prompt_index,
                                            "prompt": spec.prompts[row.prompt_index],
                                            "sample": row.sample_index, "text": text,
                                            "finish_reason": "length", "new_tokens": 3})
            cell = cells[row.cell.index]
            if len(outputs[cell.index]) == spec.rows_per_cell:
                finished += 1
                yield CellFinished(cell.index, cell.label, {
                    "cell": cell.index, "label": cell.label, "settings": cell.settings,
                    "outputs": outputs[cell.index]})
            if self.step_delay_s:
                time.sleep(self.step_delay_s)
        cancelled = finished < len(cells)
        report = "" if cancelled else str(Path(out_dir) / "report.md")
        yield CompareFinished(str(out_dir), finished, 0, cancelled, report, 0.1)

    def iter_estimate(self, spec: Any, *, stop_token: StopToken, loaded: Any = None
                      ) -> Iterator[Any]:
        if spec.kind == "compare":
            rows = len(spec.cells()) * spec.rows_per_cell
            yield EstimateFinished(rows * 0.05, rows, (), 0.01, "")
            return
        points = _points(spec)
        timing = PointTiming("base", 0.5, 0.02, 0.1, FAKE_TRIAL_STEPS, 3, 512)
        yield PointMeasured(1, 1, timing)
        yield EstimateFinished(len(points) * timing.run_s, len(points), (timing,), 0.02, "")


def fake_loss(lr: float, step: int) -> float:
    """A training curve: faster with a higher lr, ``inf`` from step 3 at ``DIVERGE_LR``."""
    if lr >= DIVERGE_LR:
        return math.inf if step >= 3 else 3.0 * 4.0 ** step
    speed = min(max(math.log10(lr / 1e-6), 0.1), 5.0) / 3
    return 1.0 + 2.5 * math.exp(-step * speed / 10) + 0.05 * math.sin(step)


def _points(spec: Any) -> list[dict[str, Any]]:
    if spec.method == "grid":
        return spec.search.grid()[: spec.trials]
    first = {d.name: (d.choices[0] if not d.is_range else d.low) for d in spec.search.dims}
    return [first] * spec.trials
