"""Events experiments yield (frozen, JSON-able, picklable across worker processes).

``iter_sweep`` yields ``SweepStarted``, then per trial ``TrialStarted``, ``TrialProgress`` per
training step or evaluation, and ``TrialFinished``; then (with ``retrain_best``)
``RetrainStarted``/``TrialProgress``/``RetrainFinished``; and ``SweepFinished`` last. With
several workers, events of different trials interleave (``worker`` says whose).

``iter_compare`` yields ``CompareStarted``, the generator's ``RowFinished`` per generation,
``CellFinished`` per cell and ``CompareFinished``. The estimates (``experiments.estimate``)
yield ``PointMeasured`` per probe and ``EstimateFinished``. This module imports nothing heavy,
so faces can match on these types before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TrialStatus = str
"""``completed``, ``early-stopped``, ``pruned``, ``diverged`` or ``failed``."""


@dataclass(frozen=True)
class SweepStarted:
    """The study is open.

    Attributes:
        out_dir: The sweep's output directory.
        storage: Optuna storage URL.
        study: Optuna study name.
        method: ``grid``, ``random`` or ``bayes``.
        budget: Trials the sweep runs in all.
        done: Trials already finished (earlier runs or other workers).
        workers: Local worker processes.
        model: The model trials train.
    """

    out_dir: str
    storage: str
    study: str
    method: str
    budget: int
    done: int
    workers: int
    model: str = ""


@dataclass(frozen=True)
class TrialStarted:
    """A worker claimed a trial and is training it.

    Attributes:
        number: Optuna trial number (also its run directory ``trials/<number>``).
        params: The point of the search space.
        run_dir: The trial's run directory.
        worker: Index of the local worker running it.
        total_steps: Optimizer steps planned (0 until known).
    """

    number: int
    params: dict[str, Any]
    run_dir: str
    worker: int = 0
    total_steps: int = 0


@dataclass(frozen=True)
class TrialProgress:
    """A trial took a step or evaluated (``number`` -1 is the retrain of the best config).

    Attributes:
        number: Trial number.
        step: Optimizer steps done.
        total_steps: Steps planned.
        loss: Latest training loss.
        eval_loss: The evaluation just done (None for a training step).
        worker: Local worker index.
        samples: The evaluation's generations of the sample prompts (``{"prompt",
            "text"}``; empty for a training step or without sample prompts).
        lr: The step's learning rate (None for an evaluation).
        grad_norm: The step's gradient norm before clipping (None for an evaluation).
    """

    number: int
    step: int
    total_steps: int
    loss: float | None = None
    eval_loss: float | None = None
    worker: int = 0
    samples: tuple[dict[str, str], ...] = ()
    lr: float | None = None
    grad_norm: float | None = None


@dataclass(frozen=True)
class TrialFinished:
    """A trial ended and its row is in ``results.jsonl``.

    Attributes:
        number: Trial number.
        status: See ``TrialStatus``.
        objective: The objective's value (None unless completed/early-stopped).
        row: The ``results.jsonl`` row.
        worker: Local worker index.
    """

    number: int
    status: TrialStatus
    objective: float | None
    row: dict[str, Any] = field(default_factory=dict)
    worker: int = 0


@dataclass(frozen=True)
class RetrainStarted:
    """The best configuration is being trained in full (``retrain_best``)."""

    trial: int
    params: dict[str, Any]
    run_dir: str


@dataclass(frozen=True)
class RetrainFinished:
    """The retrain ended; ``best.json`` describes it.

    Attributes:
        trial: The trial whose config was retrained.
        status: The run's status.
        run_dir: Its run directory.
        output_dir: Where its weights are (``adapter/`` or ``model/``).
        best_eval_loss: Its best eval loss.
    """

    trial: int
    status: str
    run_dir: str
    output_dir: str
    best_eval_loss: float | None = None


@dataclass(frozen=True)
class WaitingForTrials:
    """This process has no trial left to claim; other processes are still running these."""

    numbers: tuple[int, ...]


@dataclass(frozen=True)
class WorkerFailed:
    """A worker process ended with an error (the sweep continues with the others)."""

    worker: int
    message: str


@dataclass(frozen=True)
class SweepFinished:
    """The sweep is over.

    Attributes:
        out_dir: Output directory.
        trials: Rows in ``results.jsonl``.
        counts: Rows per status.
        best: The best row (None when no trial completed).
        stopped: True when the stop token ended it early (rerun to finish).
        report_path: ``report.md`` ("" when no report was written).
        elapsed_s: Wall time of this run.
    """

    out_dir: str
    trials: int
    counts: dict[str, int]
    best: dict[str, Any] | None
    stopped: bool
    report_path: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class CompareStarted:
    """The model is loaded and the output directory is open.

    Attributes:
        out_dir: The output directory.
        model: What was loaded (``LoadedModel.describe()``).
        cells: Cells in the spec.
        done: Cells already finished by an earlier run (skipped).
        rows: Generations this run will do.
    """

    out_dir: str
    model: str
    cells: int
    done: int
    rows: int


@dataclass(frozen=True)
class CellFinished:
    """A cell's generations are done and its row is in ``results.jsonl``.

    Attributes:
        index: The cell's index.
        label: Its header (``T=0.7 k=40``).
        row: The row as written.
    """

    index: int
    label: str
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareFinished:
    """The run is over.

    Attributes:
        out_dir: The output directory.
        cells_run: Cells finished by this run.
        cells_skipped: Cells already done before it.
        cancelled: True when the stop token ended it early (rerun to finish).
        report_path: ``report.md`` (empty when cancelled).
        elapsed_s: Wall time of this run.
    """

    out_dir: str
    cells_run: int
    cells_skipped: int
    cancelled: bool
    report_path: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class PointTiming:
    """What one probe measured.

    Attributes:
        label: The cost fields that set this point apart (``batch_size=16``), or ``base``.
        setup_s: Seconds from the start to the first step (model, data, optimizer).
        step_s: Seconds per optimizer step.
        eval_s: Seconds per evaluation (measured, or from the eval set's size).
        total_steps: Steps a trial of this point runs.
        evals: Evaluations it runs.
        tokens_per_step: Training tokens per optimizer step.
    """

    label: str
    setup_s: float
    step_s: float
    eval_s: float
    total_steps: int
    evals: int
    tokens_per_step: int

    @property
    def run_s(self) -> float:
        """Seconds one trial of this point takes."""
        return self.setup_s + self.total_steps * self.step_s + self.evals * self.eval_s


@dataclass(frozen=True)
class PointMeasured:
    """A probe finished (``done`` of ``of``)."""

    done: int
    of: int
    timing: PointTiming


@dataclass(frozen=True)
class EstimateFinished:
    """The estimate.

    Attributes:
        seconds: Estimated wall time of the whole experiment.
        runs: Training runs (trials, plus the retrain) or generations counted.
        timings: The probes' measurements (sweeps).
        step_s: Seconds per step: a typical optimizer step, or a decode step of one batch.
        note: What the estimate leaves out, in a few words ("" when nothing).
    """

    seconds: float
    runs: int
    timings: tuple[PointTiming, ...] = ()
    step_s: float = 0.0
    note: str = ""
