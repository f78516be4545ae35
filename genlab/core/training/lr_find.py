"""The learning-rate range test (Smith 2015; fastai's ``lr_find``) as an iterator of events.

API (``genlab lr-find``, the TUI's Find-lr key and ``genlab.lr_find`` use exactly this)::

    iter_lr_find(train_config, find_config=LrFindConfig(), *, out_dir=None, stop_token=None)
        -> Iterator[LrFindStarted | LrFindStep | LrFindFinished]
    suggest(lrs, smoothed) -> Suggestion          # the pure arithmetic, for tests and notebooks

The test trains a fresh copy of the start weights (the model is loaded and wrapped exactly as
``genlab train`` would, with the same optimizer, LoRA variant and batches; nothing is written
back to the model or its directory) for ``num_steps`` steps while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``: step ``i`` runs at
``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``. While it runs, each step's loss is
smoothed by a debiased moving average (``smoothing``, fastai's rule); the sweep stops early once
that smoothed loss passes ``diverge`` times its minimum, or any loss is non-finite. The
schedule,
warmup, evaluation and early stopping of the ``TrainConfig`` do not apply; LoRA+ keeps its
ratio (the B group runs at ``ratio x`` the swept lr).

Suggestions (fastai's rules, over the curve without its first 10% and last 5 points), made on
a *zero-phase* smoothing of the losses: the same moving average run forward and then backward
(as ``scipy.signal.filtfilt`` does). A moving average run forward only lags: with fastai's 0.98
over 100 steps spanning eight decades its minimum sits several times right of the raw one
(measured on the LoRA demo: steepest 7e-3 causal, 9e-4 zero-phase, against the
learning-rate lesson's best of 1e-3). The plot shows the raw and the zero-phase curve.

* ``steepest_lr``: where the smoothed loss falls fastest per unit of ``log(lr)``; this is the
  ``suggested_lr``;
* ``min_div10_lr``: the lr of the smoothed loss's minimum, divided by 10.

Files in ``out_dir`` (default ``runs/lr-find-<timestamp>-<name>``, marked ``lr-find`` by
``genlab.core.io.write_marker``; an existing non-empty directory is refused unless ``force``,
which replaces its contents once the setup has succeeded): ``lr_find.jsonl`` (one ``{"type":
"step", "step", "lr", "loss", "smoothed_loss"}`` line per step, appended and flushed as it
goes, then one ``{"type": "result", ...}`` line, which also records the CPU ``threads``) and
``lr_find.png`` (the curve, written atomically at the end).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from genlab.core.configs import LrFindConfig, TrainConfig
from genlab.core.events import LrFindFinished, LrFindStarted, LrFindStep, StopToken
from genlab.core.io import (
    append_jsonl,
    claim_out_dir,
    clear_dir,
    fresh_dir,
    write_bytes_atomic,
    write_marker,
)
from genlab.core.training.errors import TrainSetupError
from genlab.core.training.lr_find_plot import render_lr_find
from genlab.core.training.setup import setup_training
from genlab.core.training.step import BlockOrder, StepRunner

LR_FIND_KIND = "lr-find"
"""The marker kind of an lr-find output directory."""
RECORDS_FILE = "lr_find.jsonl"
PLOT_FILE = "lr_find.png"
SKIP_END = 5
"""Points left off the end of the curve before suggesting (fastai's)."""

LrFindEvent = LrFindStarted | LrFindStep | LrFindFinished


@dataclass(frozen=True)
class Suggestion:
    """The suggested learning rates of a curve (None where the curve is too short)."""

    steepest_lr: float | None
    min_loss_lr: float | None
    min_div10_lr: float | None


def sweep_lr(step: int, config: LrFindConfig) -> float:
    """The learning rate of 0-based step ``step``: exponential from start_lr to end_lr."""
    fraction = step / max(1, config.num_steps - 1)
    return config.start_lr * (config.end_lr / config.start_lr) ** fraction


def moving_average(values: Sequence[float], beta: float) -> list[float]:
    """Debiased exponential moving average (fastai's ``smooth_loss``)."""
    average, out = 0.0, []
    for i, value in enumerate(values):
        average = beta * average + (1 - beta) * value
        out.append(average / (1 - beta ** (i + 1)))
    return out


def zero_phase(values: Sequence[float], beta: float) -> list[float]:
    """``moving_average`` forward, then backward over the result: smooth without lag."""
    return moving_average(moving_average(values, beta)[::-1], beta)[::-1]


def suggest(lrs: Sequence[float], losses: Sequence[float], num_steps: int,
            beta: float) -> tuple[Suggestion, list[float]]:
    """fastai's suggestions on the zero-phase smoothed ``losses``; returns them and the curve.

    The first 10% of ``num_steps`` and the last 5 points are left out (when enough remain).
    ``steepest_lr`` is the lr at the most negative ``d loss / d log(lr)``; ``min_div10_lr`` the
    lr of the minimum over 10.
    """
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    curve = zero_phase([losses[i] for i in finite], beta)
    lrs = [lrs[i] for i in finite]
    lo, hi = num_steps // 10, len(lrs) - SKIP_END
    if hi - lo < 3:
        lo, hi = 0, len(lrs)
    xs, ys = lrs[lo:hi], curve[lo:hi]
    if len(xs) < 2:
        return Suggestion(None, None, None), curve
    slopes = [(ys[i + 1] - ys[i]) / (math.log(xs[i + 1]) - math.log(xs[i]))
              for i in range(len(xs) - 1)]
    steepest = xs[min(range(len(slopes)), key=slopes.__getitem__)]
    at_min = xs[min(range(len(ys)), key=ys.__getitem__)]
    return Suggestion(steepest, at_min, at_min / 10), curve


def lr_find_config(config: TrainConfig, find: LrFindConfig) -> TrainConfig:
    """The training config the sweep sets up: the run's model, data, LoRA, optimizer and
    batches; every document trains (no eval split), no schedule, lr 1 (the sweep sets it)."""
    return replace(config, lr=1.0, lr_scaling="none", schedule="constant", warmup_steps=0,
                   warmup_ratio=0.0, max_steps=find.num_steps, eval_every=0, patience=0,
                   eval_data=None, eval_split=0.0, sample_prompts=(), save_every=0,
                   sync_every=1)


def check_out_dir(out_dir: str | Path, *, force: bool = False) -> bool:
    """Check an lr-find ``--out`` before anything is written; True when its contents are to be
    replaced (``force``). Absent or empty is used; an earlier lr-find result (marked, or one
    from before markers: an ``lr_find.jsonl`` there) or anything else needs ``force``.

    Raises:
        OutDirError: A file, or a directory genlab did not write, without ``force``.
        TrainSetupError: An earlier lr-find result, without ``force``.
    """
    state = claim_out_dir(out_dir, LR_FIND_KIND, force=force,
                          is_legacy=lambda path: (path / RECORDS_FILE).is_file())
    if state == "same" and not force:
        raise TrainSetupError(f"--out {out_dir}: already holds an lr-find result; choose a new "
                              "or empty directory, or pass --force to replace it (nothing was "
                              "changed)")
    return state in ("same", "replace")


def iter_lr_find(config: TrainConfig, find: LrFindConfig | None = None, *,
                 out_dir: str | Path | None = None, stop_token: StopToken | None = None,
                 force: bool = False) -> Iterator[LrFindEvent]:
    """Run the lr range test of ``config`` and yield its events (see the module docstring).

    ``force``: replace an ``out_dir`` that holds something else (``--force``).

    Raises:
        ModelLoadError, DataError, TrainSetupError, OutDirError: From the first ``next()``,
            before the output directory is created or changed.
    """
    find = find or LrFindConfig()
    stop = stop_token or StopToken()
    if out_dir is None:
        out = fresh_dir("runs", config.name or Path(config.model.rstrip("/\\")).name or "run",
                        "lr-find-")
        replace_out = False
    else:
        out, replace_out = Path(out_dir), check_out_dir(out_dir, force=force)
    began = time.perf_counter()
    setup = setup_training(lr_find_config(config, find))
    if replace_out:
        clear_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, LR_FIND_KIND)
    records = out / RECORDS_FILE
    yield LrFindStarted(out_dir=str(out), num_steps=find.num_steps, start_lr=find.start_lr,
                        end_lr=find.end_lr, device=setup.device.type,
                        trainable_params=sum(p.numel() for p in setup.trainable))
    lrs: list[float] = []
    losses: list[float] = []
    reason = "end"
    for event in _sweep(setup, find, stop):
        if isinstance(event, str):
            reason = event
            break
        append_jsonl(records, {"type": "step", **asdict(event)})
        lrs.append(event.lr)
        losses.append(event.loss)
        yield event
    yield _finish(out, find, lrs, losses, reason, time.perf_counter() - began,
                  setup.resolved.get("threads"))


def _sweep(setup, find: LrFindConfig, stop: StopToken) -> Iterator[LrFindStep | str]:
    """The steps of the sweep; a string (the stop reason) ends it early."""
    runner = StepRunner(setup)
    order = BlockOrder(len(setup.data.train), setup.config.seed)
    bases = [group["lr"] for group in setup.optimizer.param_groups]  # 1, LoRA+ ratio
    average, best = 0.0, math.inf
    for i in range(find.num_steps):
        if stop.stopped:
            yield "stopped"
            return
        lr = sweep_lr(i, find)
        for group, base in zip(setup.optimizer.param_groups, bases, strict=True):
            group["lr"] = base * lr
        indices = order.take(i * setup.global_batch, setup.global_batch)
        _, loss_tokens = runner.counts(indices)
        loss = float(runner.forward_backward(indices, loss_tokens)) / loss_tokens
        runner.clip()
        setup.optimizer.step()
        setup.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(loss):
            yield LrFindStep(step=i + 1, lr=lr, loss=loss, smoothed_loss=math.inf)
            yield "exploded"
            return
        average = find.smoothing * average + (1 - find.smoothing) * loss
        smooth = average / (1 - find.smoothing ** (i + 1))
        yield LrFindStep(step=i + 1, lr=lr, loss=loss, smoothed_loss=smooth)
        best = min(best, smooth)
        if i > 0 and smooth > find.diverge * best:
            yield "exploded"
            return


def _finish(out: Path, find: LrFindConfig, lrs: list[float], losses: list[float],
            reason: str, seconds: float, threads: int | None = None) -> LrFindFinished:
    """Suggest, write the result line and the plot, and say what was found."""
    result, smoothed = suggest(lrs, losses, find.num_steps, find.smoothing)
    records, plot = out / RECORDS_FILE, out / PLOT_FILE
    append_jsonl(records, {"type": "result", "steps": len(lrs), "stop_reason": reason,
                           "suggested_lr": result.steepest_lr, **asdict(result),
                           "zero_phase_loss": smoothed, "threads": threads})
    finite = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    write_bytes_atomic(plot, render_lr_find([p[0] for p in finite], [p[1] for p in finite],
                                            smoothed, result.steepest_lr, result.min_div10_lr))
    return LrFindFinished(
        out_dir=str(out), steps=len(lrs), suggested_lr=result.steepest_lr,
        steepest_lr=result.steepest_lr, min_loss_lr=result.min_loss_lr,
        min_div10_lr=result.min_div10_lr, stop_reason=reason, plot_path=str(plot),
        records_path=str(records), wall_time_s=seconds)


def lr_find(config: TrainConfig, find: LrFindConfig | None = None,
            **kwargs: object) -> LrFindFinished:
    """Run ``iter_lr_find`` to the end and return its ``LrFindFinished``."""
    finished = None
    for event in iter_lr_find(config, find, **kwargs):  # type: ignore[arg-type]
        finished = event
    assert isinstance(finished, LrFindFinished)
    return finished
