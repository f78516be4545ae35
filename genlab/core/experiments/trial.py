"""One training run of a sweep (a trial, or the retrain of the best config) and its row.

Owns turning a point of the search space into a normal genlab run directory: the TrainConfig
(``SweepSpec.train_config``), a fresh from-scratch model when the spec has a ``model_shape``
(``genlab.core.pretrain.pipeline.build_model`` on the tokenizer of the spec's model, saved under the
run's ``init-model/``), ``iter_train`` with pruning (each ``EvalResult`` is reported to the
Optuna trial; when its pruner says so, the run's stop token ends it and the trial is
``pruned``), and the ``results.jsonl`` row that sums it up.

Every trial trains with the same number of torch threads (``trial_threads``: 1 unless asked
otherwise), in this process or in a worker: float reductions depend on the thread count, so a
trial's losses would otherwise change with ``--workers`` and with the machine's core count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genlab.core.configs import ModelShape, TrainConfig
from genlab.core.events import EvalResult, RunFinished, RunStarted, StopToken, TrainStep
from genlab.core.experiments.events import TrialProgress
from genlab.core.io import OutDirError, read_marker, write_marker
from genlab.core.modeling.loading import load_tokenizer
from genlab.core.pretrain.model import build_model, save_model_dir
from genlab.core.specs.sweep import SweepSpec
from genlab.core.training.run_dir import RUN_KIND, is_legacy_run_dir
from genlab.core.training.train import iter_train

TRIALS_DIR = "trials"
INIT_MODEL_DIR = "init-model"
SETUP_ERRORS = ("ConfigError", "DataError", "ModelLoadError", "TrainSetupError", "OutDirError")
TRIAL_THREADS = 1
"""Torch threads of a trial unless asked otherwise: tiny models run fastest on one, and the
workers of a sweep then use one core each."""


def trial_threads(requested: int | None = None) -> int:
    """The torch thread count every trial of a sweep runs with (``requested`` or 1),
    whichever process runs it and however many workers share the machine."""
    return int(requested) if requested else TRIAL_THREADS


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch threads, then restore the caller's count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class RunOutcome:
    """How one training run of a sweep ended.

    Attributes:
        status: ``completed``, ``early-stopped``, ``pruned``, ``diverged``, ``failed`` or
            ``stopped`` (the sweep's stop token: the run is not recorded).
        finished: The run's ``RunFinished`` (None when setup failed).
        final_eval_loss: Loss of the last evaluation.
        total_steps: Steps planned.
        message: One line for humans.
        threads: Torch threads it trained with (``trial_threads``).
    """

    status: str
    finished: RunFinished | None = None
    final_eval_loss: float | None = None
    total_steps: int = 0
    message: str = ""
    threads: int = TRIAL_THREADS


def trial_dir(out_dir: str | Path, number: int) -> Path:
    """``<out>/trials/<number, 4 digits>``."""
    return Path(out_dir) / TRIALS_DIR / f"{number:04d}"


def iter_train_point(spec: SweepSpec, params: dict[str, Any], run_dir: Path, model: str, *,
                     stop: StopToken, number: int, worker: int = 0, trial: Any = None,
                     overrides: dict[str, Any] | None = None) -> Iterator[Any]:
    """Train one point into ``run_dir``; yields ``TrialProgress``, returns a ``RunOutcome``.

    Args:
        spec: The sweep.
        params: The point of the search space.
        run_dir: The run directory to create (an unfinished leftover is replaced).
        model: The resolved base model (its tokenizer for from-scratch shapes).
        stop: The sweep's stop token: the run stops at its next step and is not recorded.
        number: Trial number (for events); -1 for the retrain.
        worker: Local worker index (for events).
        trial: The Optuna trial to report evaluations to (None: no pruning).
        overrides: TrainConfig fields replacing the point's (``retrain_overrides``).
    """

    outcome = RunOutcome("failed", threads=trial_threads(spec.base.get("threads")))
    with torch_threads(outcome.threads):
        yield from _iter_run(spec, params, run_dir, model, stop, number, worker, trial,
                             overrides, outcome)
    return outcome


def _iter_run(spec: SweepSpec, params: dict[str, Any], run_dir: Path, model: str,
              stop: StopToken, number: int, worker: int, trial: Any,
              overrides: dict[str, Any] | None, outcome: RunOutcome) -> Iterator[Any]:
    """The body of ``iter_train_point``: fills ``outcome`` in place."""
    token = StopToken()
    pruned = False
    try:
        _fresh_run_dir(run_dir)
        config = point_config(spec, params, run_dir, model, overrides)
        # the trial's thread count, not the loader's default (physical cores)
        config = dataclasses.replace(config, threads=outcome.threads)
        for event in iter_train(config, out_dir=run_dir, stop_token=token, owned=True):
            if stop.stopped:
                token.stop()
            if isinstance(event, RunStarted):
                outcome.total_steps = event.total_steps
            elif isinstance(event, TrainStep):
                yield TrialProgress(number, event.step, outcome.total_steps, event.loss,
                                    None, worker, lr=event.lr, grad_norm=event.grad_norm)
            elif isinstance(event, EvalResult):
                outcome.final_eval_loss = event.loss
                yield TrialProgress(number, event.step, outcome.total_steps, None, event.loss,
                                    worker, event.samples)
                if trial is not None and _should_prune(trial, event):
                    pruned = True
                    token.stop()
            elif isinstance(event, RunFinished):
                outcome.finished = event
    except Exception as err:
        if type(err).__name__ not in SETUP_ERRORS and not isinstance(err, (ValueError,
                                                                           RuntimeError)):
            raise
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        outcome.message = f"{type(err).__name__}: {first}"[:300]
        return
    _classify(outcome, pruned, stop)


def point_config(spec: SweepSpec, params: dict[str, Any], run_dir: Path, model: str,
                 overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The TrainConfig that trains ``params`` into ``run_dir`` (a from-scratch point first
    saves its freshly initialised model under ``run_dir/init-model``)."""
    config = spec.train_config(params, model, run_dir.name, overrides)
    _, shape = spec.trial_fields(params)
    if shape is not None:
        init = build_init_model(model, shape, run_dir / INIT_MODEL_DIR, config.seed)
        config = spec.train_config(params, str(init), run_dir.name, overrides)
    return config


def _fresh_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` empty and marked; a leftover of a killed attempt is removed (trials
    are re-run, not resumed), but never a directory genlab did not write."""
    if run_dir.exists():
        if read_marker(run_dir) != RUN_KIND and not is_legacy_run_dir(run_dir):
            raise OutDirError(f"{run_dir}: exists and is not a genlab run directory; move it "
                              "away so the trial can run there")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    write_marker(run_dir, RUN_KIND)


def _should_prune(trial: Any, event: EvalResult) -> bool:

    if not math.isfinite(event.loss):
        return False  # divergence is the training loop's call
    trial.report(event.loss, event.step)
    return bool(trial.should_prune())


def _classify(outcome: RunOutcome, pruned: bool, stop: StopToken) -> RunOutcome:
    finished = outcome.finished
    if finished is None:
        outcome.message = outcome.message or "the run ended without a result"
        return outcome
    outcome.message = finished.message
    if finished.status == "stopped":
        if pruned:
            outcome.status = "pruned"
            outcome.message = (f"pruned at step {finished.steps}: eval loss "
                               f"{outcome.final_eval_loss:.4f} was worse than the median of "
                               "earlier trials at that step")
        else:
            outcome.status = "stopped"
    else:
        outcome.status = finished.status
    return outcome


def build_init_model(model: str, shape: dict[str, int], out_dir: Path, seed: int) -> Path:
    """Save a freshly initialised Llama of ``shape`` with ``model``'s tokenizer in ``out_dir``."""

    tokenizer = load_tokenizer(model)
    knobs = asdict(ModelShape(**shape))
    built = build_model(tokenizer, seed=seed, **knobs)
    return save_model_dir(built, tokenizer, out_dir)


def objective_value(spec: SweepSpec, outcome: RunOutcome) -> float | None:
    """The objective of a completed or early-stopped run (None otherwise or when missing)."""
    finished = outcome.finished
    if finished is None or outcome.status not in ("completed", "early-stopped"):
        return None
    if spec.objective == "best_eval_loss":
        return finished.best_eval_loss
    if spec.objective == "final_eval_loss":
        return outcome.final_eval_loss
    return finished.final_train_loss


def build_row(spec: SweepSpec, number: int, params: dict[str, Any], run_dir: Path,
              out_dir: Path, outcome: RunOutcome, worker: int) -> dict[str, Any]:
    """The ``results.jsonl`` row of a finished trial."""
    value = objective_value(spec, outcome)
    status, message = outcome.status, outcome.message
    if status in ("completed", "early-stopped") and value is None:
        status = "failed"
        message = f"no {spec.objective}: the run had no evaluation; " + message
    f = outcome.finished
    try:
        rel = str(run_dir.relative_to(out_dir))
    except ValueError:
        rel = str(run_dir)
    return {
        "trial": number, "status": status, "objective": value, "params": params,
        "fields": spec.search.expand(params), "run_dir": rel,
        "steps": f.steps if f else 0, "total_steps": outcome.total_steps,
        "tokens": f.tokens if f else 0, "wall_time_s": f.wall_time_s if f else 0.0,
        "best_eval_loss": f.best_eval_loss if f else None,
        "best_step": f.best_step if f else None,
        "final_eval_loss": outcome.final_eval_loss,
        "final_train_loss": f.final_train_loss if f else None,
        "message": message, "worker": worker, "threads": outcome.threads,
        "host": socket.gethostname(), "pid": os.getpid(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
