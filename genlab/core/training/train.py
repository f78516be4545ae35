"""The one training loop (LoRA or full weights), as an iterator of events.

API (the CLI, TUI and sweeps use exactly this)::

    iter_train(config, *, out_dir=None, stop_token=None, resume_from=None)
        -> Iterator[RunStarted | TrainStep | EvalResult | CheckpointSaved | RunFinished]
    train(config, **kw) -> RunFinished          # drains iter_train
    TrainSetupError(ValueError)                 # one-line setup problems

``iter_train`` is a generator: nothing happens until the first ``next()``, which loads the model
and data and validates everything (``ModelLoadError``, ``DataError``, ``TrainSetupError``) before
the run directory exists; only then is the directory created and ``RunStarted`` yielded. Then
come ``TrainStep`` per optimizer step, ``EvalResult`` every ``eval_every`` steps and at the end,
``CheckpointSaved`` every ``save_every`` steps (or at each evaluation point), and ``RunFinished``
last. The run directory format is documented in ``genlab.core.training.run_dir``.

Statuses (``summary.json`` and ``RunFinished.status``):

* ``completed``: every step ran (then a final evaluation when the last step had none);
* ``stopped``: the ``StopToken`` was set; a checkpoint was saved at the step boundary and
  ``resume_from=run_dir`` continues exactly there;
* ``early-stopped``: ``patience`` evaluations in a row failed to beat the best eval loss by more
  than ``min_delta``;
* ``diverged``: the loss or the gradient norm became NaN/inf; that step was not applied and the
  message suggests a lower lr;
* ``failed``: an exception escaped; it is recorded in ``summary.json`` and re-raised. Closing the
  iterator early (or Ctrl-C without a stop token) records ``stopped`` with a note that the run
  resumes from its latest checkpoint.

Final weights (``adapter/`` for LoRA, ``model/`` with the tokenizer for full training): the best
weights by eval loss when early stopping is on (``patience > 0``) and an evaluation ran, else the
last applied step's weights (so a diverged run keeps its last good weights).

Loss: each step's loss is the sum of next-token nats over every loss token of the step's
micro-batches (on every process) divided by their count, i.e. token-weighted, not a mean of
per-micro-batch means; gradients use the same weighting. Gradient accumulation runs the
micro-batches under ``accelerator.no_sync`` and syncs on the last.

Data order: the packed blocks form one stream of seeded shuffles (``seed + epoch``) laid end to
end; a step takes the next ``batch_size x grad_accum x processes`` blocks, so the position in the
data is one integer and resuming mid-epoch continues the same order.

Multi-GPU (``accelerate launch -m genlab train ...``): every process trains; only the main one
writes files, and only it yields events except ``RunFinished``, which every process yields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genlab.core.configs import TrainConfig
from genlab.core.errors import GenlabError
from genlab.core.events import RunFinished, StopToken
from genlab.core.io import claim_out_dir
from genlab.core.training import run_dir as runs
from genlab.core.training.loop import TrainEvent, TrainLoop
from genlab.core.training.setup import TrainSetupError, setup_training

__all__ = ["TrainEvent", "TrainSetupError", "iter_train", "read_resumable_config", "train"]


def train(config: TrainConfig | None = None, **kwargs: Any) -> RunFinished:
    """Run ``iter_train`` to the end and return its ``RunFinished``."""
    finished = None
    for event in iter_train(config, **kwargs):
        finished = event
    assert isinstance(finished, RunFinished)
    return finished


def iter_train(
    config: TrainConfig | None,
    *,
    out_dir: str | Path | None = None,
    stop_token: StopToken | None = None,
    resume_from: str | Path | None = None,
    force: bool = False,
    owned: bool = False,
) -> Iterator[TrainEvent]:
    """Train ``config`` and yield its events (see the module docstring).

    Args:
        config: What to train. With ``resume_from`` it may be None (the stored config is used);
            a given config must then match the stored one.
        out_dir: Run directory to create; default ``runs/<timestamp>-<name>``.
        stop_token: When set, the run checkpoints at the next step boundary and stops.
        resume_from: A run directory to continue from its latest checkpoint.
        force: ``out_dir`` may hold something else (files genlab did not write, another run):
            its contents are replaced. Without it such an ``out_dir`` is an ``OutDirError``.
        owned: The caller made ``out_dir`` (marked, e.g. a sweep trial holding its initial
            model): use it as it is.

    Raises:
        ModelLoadError, DataError, TrainSetupError, OutDirError: From the first ``next()``,
            before the run directory is created.
    """
    # --- setup: everything that can fail, before anything is written
    replace = False
    if resume_from is not None:
        config = _stored_config(resume_from, config, out_dir)
    elif config is None:
        raise TrainSetupError("iter_train: pass a TrainConfig (or resume_from=RUN_DIR)")
    elif out_dir is not None and not owned:
        replace = _claim_out(out_dir, force)
    setup = setup_training(config)
    loop = TrainLoop(setup, stop_token or StopToken())
    loop.open(out_dir, resume_from, replace=replace)
    main = setup.accelerator.is_main_process
    try:
        for event in loop.run():
            if main or isinstance(event, RunFinished):
                yield event
    except BaseException as err:
        loop.record_interruption(err)
        raise
    finally:
        loop.close()


def _claim_out(out_dir: str | Path, force: bool) -> bool:
    """Check ``--out`` of a new run; True when its contents are to be replaced (``force``)."""
    state = claim_out_dir(out_dir, runs.RUN_KIND, force=force, is_legacy=runs.is_legacy_run_dir)
    if state == "same" and not force:
        raise TrainSetupError(f"--out {out_dir}: already a genlab run directory; continue it with "
                              f"--resume {out_dir}, choose another --out, or pass --force to "
                              "replace it")
    return state in ("same", "replace")


def read_resumable_config(run_dir: str | Path) -> TrainConfig:
    """The stored config of a run that can be resumed.

    Raises:
        TrainSetupError: ``run_dir`` is not a genlab run directory, its config cannot be read,
            or the run already ended (one line saying what to do instead).
    """
    if not runs.is_run_dir(run_dir):
        raise TrainSetupError(f"--resume {run_dir}: not a genlab run directory (no genlab "
                              "config.json there); pass the directory genlab train printed as "
                              "its run dir")
    summary = runs.read_summary(run_dir)
    if summary and summary.get("status") in ("completed", "early-stopped", "diverged"):
        raise TrainSetupError(f"--resume {run_dir}: the run already ended "
                              f"({summary['status']}); start a new run instead")
    try:
        return runs.read_config(run_dir)
    except (OSError, ValueError, TypeError, GenlabError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TrainSetupError(f"--resume {run_dir}: cannot read its config.json ({first})"
                              ) from None


def _stored_config(run_dir: str | Path, given: TrainConfig | None,
                   out_dir: str | Path | None) -> TrainConfig:
    if out_dir is not None and Path(out_dir).resolve() != Path(run_dir).resolve():
        raise TrainSetupError(f"--resume {run_dir}: a resumed run continues in its own directory; "
                              "drop --out")
    stored = read_resumable_config(run_dir)
    if given is not None:
        mine, theirs = stored.to_dict(), given.to_dict()
        ignore = {"model", "data", "eval_data", "target_modules"}  # resolved when stored
        differ = [k for k in mine if k not in ignore and mine[k] != theirs[k]]
        if differ:
            raise TrainSetupError(f"--resume {run_dir}: the settings differ from the stored run "
                                  f"({', '.join(differ)}); resume with the stored config")
    return stored
