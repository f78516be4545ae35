"""The Optuna study behind a sweep: storage, budgeted claims, and recovery after a kill.

Owns every rule that keeps one study consistent when several processes (local ``--workers`` or
other machines sharing a ``--storage`` URL) run it, and when a run is killed:

* **Budget.** A trial *counts* when it is COMPLETE, PRUNED, RUNNING, or FAIL with a recorded
  row (a trial that really failed). Random/Bayes: a worker asks Optuna for a trial and keeps it
  only when fewer than ``budget`` counted trials have a lower number; trial numbers are given
  out atomically by the storage, so exactly ``budget`` trials are kept however many workers
  race. Over-budget trials are told FAIL without a row (they never count) and the worker stops.
* **Grids.** Each grid point is enqueued once as a WAITING trial tagged ``grid_index``; workers
  pop them (atomically, in the storage). A point already taken by a lower-numbered or finished
  trial (two processes enqueued it at once) is told FAIL without a row and skipped.
* **Recovery.** Each claimed trial records its owner (host, pid). A RUNNING trial whose owner
  process is gone on this host was killed: with a row in ``results.jsonl`` (killed between the
  append and the tell) it is told what the row says; without one it is told FAIL (it never
  counts) so its budget slot, or its grid point, is run again. Trials owned by live processes
  or by other hosts are left alone.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from genlab.core.errors import GenlabError
from genlab.core.experiments.trial import trial_dir
from genlab.core.io import jsonable
from genlab.core.specs.sweep import SweepSpec

ROW_ATTR = "genlab_row"
GRID_ATTR = "grid_index"
OWNER_ATTR = "genlab_owner"


def open_study(spec: SweepSpec, storage: Any, *, seed_offset: int = 0) -> Any:
    """Create or load the spec's study (named after the spec) with its sampler and pruner."""

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage, study_name=spec.name, direction="minimize",
        sampler=make_sampler(spec, seed_offset), pruner=make_pruner(spec), load_if_exists=True)


IDENTITY_ATTR = "genlab_identity"


class SweepSetupError(GenlabError, ValueError):
    """A sweep cannot start (bad worker count, a study of another spec); one line."""


def check_study_identity(study: Any, spec: SweepSpec) -> None:
    """Tag a new study with the spec's identity; refuse a study of the same name that holds
    another spec (two specs sharing a name in one storage would mix their trials).

    Raises:
        SweepSetupError: The study belongs to a different spec.
    """

    mine = jsonable(spec.identity())
    theirs = study.user_attrs.get(IDENTITY_ATTR)
    if theirs is None:
        study.set_user_attr(IDENTITY_ATTR, mine)
    elif theirs != mine:
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise SweepSetupError(f"--storage: the study {spec.name!r} there belongs to a different "
                         f"spec (differs in: {', '.join(differ)}); rename the spec (name:) or "
                         "use another storage")


def make_sampler(spec: SweepSpec, seed_offset: int = 0) -> Any:
    """Random for ``random`` and ``grid`` (grid points come from the queue), TPE for ``bayes``.

    ``seed_offset`` differs per worker and per resume, so workers do not draw the same points.
    """

    seed = spec.seed + seed_offset
    if spec.method == "bayes":
        startup = min(10, max(2, spec.trials // 4))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(spec: SweepSpec) -> Any:
    """``MedianPruner`` for ``pruner: median``, else no pruning."""

    if spec.pruner.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner.startup_trials,
                                           n_warmup_steps=spec.pruner.warmup_steps)
    return optuna.pruners.NopPruner()


# ----------------------------------------------------------------------------- counting


def counts(trial: Any) -> bool:
    """True when a (frozen) trial uses up part of the budget."""

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and ROW_ATTR in trial.user_attrs


def counted_trials(study: Any) -> int:
    """Trials that count against the budget."""
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def finished_rows(study: Any) -> dict[int, dict[str, Any]]:
    """Trial number -> its recorded row, for every trial that has one."""
    return {t.number: t.user_attrs[ROW_ATTR] for t in study.get_trials(deepcopy=False)
            if ROW_ATTR in t.user_attrs}


# ----------------------------------------------------------------------------- claiming


def enqueue_grid(study: Any, spec: SweepSpec) -> None:
    """Enqueue every grid point (of the first ``trials``) that no trial holds or waits for."""

    points = spec.search.grid()[: spec.trials]
    held = {t.user_attrs.get(GRID_ATTR) for t in study.get_trials(deepcopy=False)
            if counts(t) or t.state == TrialState.WAITING}
    for index, point in enumerate(points):
        if index not in held:
            study.enqueue_trial(point, user_attrs={GRID_ATTR: index})


def claim_trial(study: Any, spec: SweepSpec) -> Any | None:
    """Ask for the next trial of this worker, or None when the budget is used up."""

    while True:
        trials = study.get_trials(deepcopy=False)
        if spec.method == "grid":
            if not any(t.state == TrialState.WAITING for t in trials):
                return None
            trial = _ask(study)
            index = trial.user_attrs.get(GRID_ATTR)
            if index is None or _grid_point_taken(study, index, trial.number):
                study.tell(trial, state=TrialState.FAIL)
                if index is None:
                    return None
                continue
        else:
            if sum(counts(t) for t in trials) >= spec.budget:
                return None
            trial = _ask(study)
            before = sum(counts(t) for t in study.get_trials(deepcopy=False)
                         if t.number < trial.number)
            if before >= spec.budget:
                study.tell(trial, state=TrialState.FAIL)
                return None
        trial.set_user_attr(OWNER_ATTR, {"host": socket.gethostname(), "pid": os.getpid()})
        return trial


def _ask(study: Any) -> Any:
    """``study.ask()`` without Optuna's note that heartbeats are meant for ``optimize`` (genlab
    records them itself: ``storage.Heartbeat``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
        return study.ask()


def _grid_point_taken(study: Any, index: int, number: int) -> bool:

    for t in study.get_trials(deepcopy=False):
        if t.number == number or t.user_attrs.get(GRID_ATTR) != index or not counts(t):
            continue
        if t.state != TrialState.RUNNING or t.number < number:
            return True
    return False


def record(study: Any, trial: Any, row: dict[str, Any]) -> None:
    """Store ``row`` on the trial and tell Optuna how it ended (see ``tell_from_row``)."""

    trial.set_user_attr(ROW_ATTR, jsonable(row))
    tell_from_row(study, trial.number, row)


def tell_from_row(study: Any, number: int, row: dict[str, Any]) -> None:
    """completed/early-stopped: the objective; diverged: +inf; pruned: PRUNED; failed: FAIL."""

    status = row.get("status")
    if status == "pruned":
        study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
    elif status == "diverged":
        study.tell(number, math.inf, skip_if_finished=True)
    elif status in ("completed", "early-stopped") and row.get("objective") is not None:
        study.tell(number, float(row["objective"]), skip_if_finished=True)
    else:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)


def release(study: Any, trial: Any, run_dir: Path | None = None) -> None:
    """Give a claimed trial back unfinished (stopped or crashed): FAIL without a row, and
    its partial run directory removed (the trial runs again under a new number)."""

    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    _remove(run_dir)


def _remove(run_dir: Path | None) -> None:
    if run_dir is not None and run_dir.is_dir():
        shutil.rmtree(run_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- recovery


def recover(study: Any, rows: dict[int, dict[str, Any]], out_dir: Path | None = None) -> int:
    """Settle RUNNING trials whose owner died; returns how many.

    A trial owned by a process of this host that is gone is settled at once (from its row
    when it has one). A trial of any host whose heartbeat is older than the storage's grace
    period (its machine died, or lost the database for good) is told FAIL by Optuna.

    Args:
        study: The study.
        rows: Trial number -> row from ``results.jsonl``.
        out_dir: The sweep's output directory: partial run directories of trials told FAIL
            are removed from it.
    """

    host = socket.gethostname()
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    with warnings.catch_warnings():  # fail_stale_trials is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    settled = running - len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get(OWNER_ATTR) or {}
        if owner and (owner.get("host") != host or _pid_alive(int(owner.get("pid", -1)))):
            continue
        row = rows.get(t.number)
        if row is not None:
            optuna.trial.Trial(study, t._trial_id).set_user_attr(ROW_ATTR, row)
            tell_from_row(study, t.number, row)
        else:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            _remove(trial_dir(out_dir, t.number) if out_dir is not None else None)
        settled += 1
    return settled


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return False  # this process is starting the sweep: nothing of its own is running
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
