"""Run a sweep spec: trials in an Optuna study, by one or several workers, resumable.

Owns the flow of ``genlab sweep`` (the spec: ``genlab.core.specs.sweep``; study rules:
``genlab.core.experiments.study``; one trial: ``genlab.core.experiments.trial``; events:
``genlab.core.experiments.events``). ``iter_sweep``:

1. checks the output directory and model, then opens it (``spec.json``, ``results.jsonl``);
2. opens the study (``--storage``, default ``sqlite:///<out>/study.db``), settles trials that a
   kill left RUNNING, and for grids enqueues the points not done yet;
3. runs workers until the budget is used: in this process (``workers=1``) or in ``workers``
   spawned processes that share the study and stream their events back through a queue. Each
   trial is a normal run directory ``<out>/trials/<number>``; its row is appended to
   ``results.jsonl`` (then recorded in the study) as it finishes;
4. unless stopped: retrains the best configuration (``retrain_best``, into ``<out>/best/``,
   described by ``best.json``) and writes the report.

Other machines join the same study with ``iter_sweep(..., worker_only=True)`` (``genlab sweep
--worker``): they run trials but neither retrain nor report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from genlab.core.events import StopToken
from genlab.core.experiments.events import (
    RetrainFinished,
    RetrainStarted,
    SweepFinished,
    SweepStarted,
    WaitingForTrials,
)
from genlab.core.experiments.storage import check_storage_url, default_storage, make_storage
from genlab.core.experiments.study import (
    SweepSetupError,
    check_study_identity,
    counts,
    enqueue_grid,
    finished_rows,
    open_study,
    recover,
)
from genlab.core.experiments.trial import iter_train_point, trial_threads
from genlab.core.experiments.trial_loop import iter_worker
from genlab.core.experiments.worker import WorkerJob, iter_workers
from genlab.core.io import clear_dir, write_json_atomic
from genlab.core.reports.report import write_sweep_report
from genlab.core.reports.results import (
    RESULTS_FILE,
    append_row,
    check_out_dir,
    default_out_dir,
    open_out_dir,
    read_rows,
)
from genlab.core.specs.loader import resolve_model
from genlab.core.specs.sweep import SweepSpec

BEST_FILE = "best.json"
BEST_DIR = "best"
GOOD = ("completed", "early-stopped")


def prepare_sweep(spec: SweepSpec, out_dir: str | Path | None = None,
                  storage: str | None = None, *, force: bool = False
                  ) -> tuple[Path, str, str, str]:
    """Resolve output directory, storage URL and model before anything is written.

    Returns:
        ``(out_dir, storage URL, model, state)``; ``state`` as
        ``reports.results.check_out_dir`` says.

    Raises:
        OutDirError: ``out_dir`` holds something else.
        LookupError: No model given and no default model installed.
    """

    out = Path(out_dir) if out_dir is not None else default_out_dir("sweep", spec.name)
    state = check_out_dir(out, "sweep", spec.identity(), force=force)
    model = resolve_model(spec.model)
    url = check_storage_url(storage) if storage is not None else default_storage(out)
    return out, url, model, state


def iter_sweep(spec: SweepSpec, out_dir: str | Path | None = None, *,
               storage: str | None = None, workers: int = 1,
               stop_token: StopToken | None = None, worker_only: bool = False,
               force: bool = False) -> Iterator[Any]:
    """Run ``spec`` (see the module docstring) and yield its events.

    Args:
        spec: The validated spec.
        out_dir: Output directory (default ``runs/sweep-<timestamp>-<name>``); an existing
            output of the same spec is resumed.
        storage: Optuna storage URL (default ``sqlite:///<out>/study.db``).
        workers: Local worker processes (1 = run trials in this process).
        stop_token: Stops every running trial at its next step; stopped trials are not
            recorded and run again on resume.
        worker_only: Only run trials (another process retrains and reports).
        force: Replace an ``out_dir`` that holds something else (``--force``).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepSetupError(f"--workers {workers}: must be an integer >= 1")
    start = time.perf_counter()
    out, url, model, state = prepare_sweep(spec, out_dir, storage, force=force)
    stop = stop_token or StopToken()
    study, done = _open(spec, out, url, state, default_file=storage is None,
                        worker_only=worker_only)
    yield SweepStarted(str(out), url, spec.name, spec.method, spec.budget, done, workers, model)
    yield from _iter_trials(spec, study, out, url, model, workers, stop, worker_only)
    rows = _merged_rows(out, study)
    best = best_row(rows)
    report = ""
    if not worker_only:
        _sync_rows(out, rows)
        if not stop.stopped and best is not None:
            yield from _iter_retrain(spec, out, model, best, stop)
        if rows:
            report = str(write_sweep_report(out, rows))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.get("status", "?")] = counts.get(row.get("status", "?"), 0) + 1
    yield SweepFinished(str(out), len(rows), counts, best, stop.stopped, report,
                        time.perf_counter() - start)


def _open(spec: SweepSpec, out: Path, url: str, state: str, *, default_file: bool,
          worker_only: bool) -> tuple[Any, int]:
    """Open the output directory and the study, settle trials a kill left RUNNING, enqueue
    the grid; returns the study and how many trials are done."""
    if state == "replace":  # --force: the user chose to replace what is there
        clear_dir(out)
    file_rows = _rows_by_trial(read_rows(out / RESULTS_FILE))
    if default_file:  # the default SQLite file lives in the output directory
        out.mkdir(parents=True, exist_ok=True)
    # A joining worker must not replay the coordinator's random draws: offset by its pid.
    offset = len(file_rows) + (1000 * (os.getpid() % 100_000) if worker_only else 0)
    study = open_study(spec, make_storage(url), seed_offset=offset)
    check_study_identity(study, spec)
    open_out_dir(out, spec.to_dict(), spec.identity())
    recover(study, file_rows, out)
    if spec.method == "grid":
        enqueue_grid(study, spec)
    return study, len(_merged_rows(out, study))


def _iter_trials(spec: SweepSpec, study: Any, out: Path, url: str, model: str, workers: int,
                 stop: StopToken, worker_only: bool) -> Iterator[Any]:
    """Run trials until the budget is used; the coordinator then waits for other processes'
    trials, and runs again the ones they could not finish (their process died)."""
    while True:
        if workers == 1:
            yield from iter_worker(spec, study, out, model, stop, worker=0)
        else:  # seeds offset by the trials so far: a second round draws new points
            offset = len(study.get_trials(deepcopy=False))
            yield from _iter_processes(spec, out, url, model, workers, stop, offset)
        if worker_only or stop.stopped:
            return
        more = yield from _iter_wait_for_others(spec, study, out, stop)
        if not more:
            return


def _iter_wait_for_others(spec: SweepSpec, study: Any, out: Path, stop: StopToken,
                          poll_s: float = 2.0) -> Iterator[Any]:
    """Wait for trials that other processes (``--worker``) still run; returns True as soon as
    a trial of a dead process was given back (there is work to do again), False when none
    runs any more."""

    shown: tuple[int, ...] = ()
    while not stop.stopped:
        recover(study, _rows_by_trial(read_rows(out / RESULTS_FILE)), out)
        if spec.method == "grid":
            enqueue_grid(study, spec)  # grid points of failed trials wait again
        if _work_left(study, spec):
            return True
        running = tuple(t.number for t in study.get_trials(deepcopy=False,
                                                          states=(TrialState.RUNNING,)))
        if not running:
            return False
        if running != shown:
            shown = running
            yield WaitingForTrials(running)
        time.sleep(poll_s)
    return False


def _work_left(study: Any, spec: SweepSpec) -> bool:
    """True when a worker could claim a trial now (a waiting grid point, unused budget)."""
    trials = study.get_trials(deepcopy=False)
    if spec.method == "grid":
        return any(t.state == TrialState.WAITING for t in trials)
    return sum(counts(t) for t in trials) < spec.budget


# ----------------------------------------------------------------------------- rows


def _rows_by_trial(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    by_trial: dict[int, dict[str, Any]] = {}
    for row in rows:
        number = row.get("trial")
        if isinstance(number, int) and number not in by_trial:
            by_trial[number] = row
    return by_trial


def _merged_rows(out: Path, study: Any) -> list[dict[str, Any]]:
    """Rows of ``results.jsonl`` plus rows other machines recorded only in the study."""
    rows = _rows_by_trial(read_rows(out / RESULTS_FILE))
    for number, row in finished_rows(study).items():
        rows.setdefault(number, row)
    return [rows[n] for n in sorted(rows)]


def _sync_rows(out: Path, rows: list[dict[str, Any]]) -> None:
    """Append to ``results.jsonl`` the rows only the study has (trials of other machines), so
    the coordinator's file lists every trial."""
    have = set(_rows_by_trial(read_rows(out / RESULTS_FILE)))
    for row in rows:
        if row.get("trial") not in have:
            append_row(out / RESULTS_FILE, row)


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed row with the lowest objective (ties: the earlier trial)."""
    good = [r for r in rows if r.get("status") in GOOD and r.get("objective") is not None]
    return min(good, key=lambda r: (r["objective"], r["trial"])) if good else None


# ----------------------------------------------------------------------------- retrain


def _iter_retrain(spec: SweepSpec, out: Path, model: str, best: dict[str, Any],
                  stop: StopToken) -> Iterator[Any]:
    """Write ``best.json``; with ``retrain_best``, train the best point in full first."""
    record_data: dict[str, Any] = {
        "trial": best["trial"], "params": best["params"], "fields": best.get("fields", {}),
        "objective": best["objective"], "objective_name": spec.objective,
        "run_dir": best.get("run_dir"), "retrain": None,
    }
    previous = _read_best(out)
    if spec.retrain_best:
        if previous and previous.get("trial") == best["trial"] and previous.get("retrain"):
            record_data["retrain"] = previous["retrain"]
        else:
            run_dir = out / BEST_DIR
            yield RetrainStarted(best["trial"], best["params"], str(run_dir))
            outcome = yield from iter_train_point(
                spec, best["params"], run_dir, model, stop=stop, number=-1,
                overrides=spec.retrain_overrides)
            if outcome.status == "stopped":
                return
            f = outcome.finished
            record_data["retrain"] = {
                "status": outcome.status, "run_dir": BEST_DIR,
                "output_dir": f.output_dir if f else "", "message": outcome.message,
                "overrides": spec.retrain_overrides, "steps": f.steps if f else 0,
                "best_eval_loss": f.best_eval_loss if f else None,
                "final_train_loss": f.final_train_loss if f else None,
            }
            yield RetrainFinished(best["trial"], outcome.status, str(run_dir),
                                  f.output_dir if f else "", f.best_eval_loss if f else None)
    write_json_atomic(out / BEST_FILE, record_data)


def _read_best(out: Path) -> dict[str, Any] | None:

    try:
        return json.loads((out / BEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- processes


def _iter_processes(spec: SweepSpec, out: Path, url: str, model: str, workers: int,
                    stop: StopToken, offset: int) -> Iterator[Any]:
    """Run ``workers`` worker processes on the study and relay their events."""

    # the same in every worker and in-process: results must not vary with the worker count
    threads = trial_threads(spec.base.get("threads"))
    jobs = [WorkerJob(spec, str(out), url, model, i, threads, offset + 1000 * (i + 1))
            for i in range(workers)]
    yield from iter_workers(jobs, stop)
