"""The loop every sweep worker runs: claim a trial, train it, record its row, repeat.

The same loop runs in the coordinating process (``workers=1``), in each local worker process
(``experiments.worker``) and on other machines (``--worker``); the study's claims
(``experiments.study``) keep the budget exact across all of them. Local workers claim one at a
time, under an exclusive lock on ``<out>/.claim.lock``: on SQLite (the default storage) Optuna
cannot lock the waiting trial it pops, so two workers asking at once could both get the same
grid point and train it into the same directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genlab.core.events import StopToken
from genlab.core.experiments.events import TrialFinished, TrialStarted
from genlab.core.experiments.storage import Heartbeat
from genlab.core.experiments.study import claim_trial, record, release
from genlab.core.experiments.trial import build_row, iter_train_point, trial_dir
from genlab.core.reports.results import RESULTS_FILE, append_row
from genlab.core.specs.sweep import SweepSpec


def iter_worker(spec: SweepSpec, study: Any, out: Path, model: str, stop: StopToken,
                worker: int = 0) -> Iterator[Any]:
    """Claim and run trials until the budget is used or ``stop`` is set."""
    while not stop.stopped:
        with claim_lock(out):
            trial = claim_trial(study, spec)
        if trial is None:
            return
        try:
            with Heartbeat(study, trial):  # so other machines can tell this trial is alive
                yield from _iter_trial(spec, study, trial, out, model, stop, worker)
        except BaseException:
            release(study, trial, trial_dir(out, trial.number))
            raise


def _iter_trial(spec: SweepSpec, study: Any, trial: Any, out: Path, model: str,
                stop: StopToken, worker: int) -> Iterator[Any]:
    params = spec.search.suggest(trial)
    run_dir = trial_dir(out, trial.number)
    yield TrialStarted(trial.number, params, str(run_dir), worker)
    pruning = trial if spec.pruner.kind != "none" else None
    outcome = yield from iter_train_point(spec, params, run_dir, model, stop=stop,
                                          number=trial.number, worker=worker, trial=pruning)
    if outcome.status == "stopped":
        release(study, trial, run_dir)
        return
    row = build_row(spec, trial.number, params, run_dir, out, outcome, worker)
    append_row(out / RESULTS_FILE, row)  # first the file (source of truth), then the study
    record(study, trial, row)
    yield TrialFinished(trial.number, row["status"], row["objective"], row, worker)


CLAIM_LOCK = ".claim.lock"


@contextlib.contextmanager
def claim_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<out>/.claim.lock`` (local workers, one claim at a time).

    Where the lock cannot be taken (no ``fcntl``, a file system without locks) the claim goes
    ahead unlocked: databases with row locks (PostgreSQL) keep claims exact on their own.
    """
    with contextlib.ExitStack() as stack:
        try:
            import fcntl

            handle = stack.enter_context(open(Path(out) / CLAIM_LOCK, "a+b"))
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        except (ImportError, OSError):
            pass
        yield
