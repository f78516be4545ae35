"""Learning-rate schedules as pure functions, so the curve can be previewed without training.

This module owns the shape of the learning rate over a run. ``lr_at(step, total_steps, config)``
returns the multiplier of the peak lr (``config.scaled_lr``) for the 0-based optimizer step
``step``; the training loop steps a ``Schedule`` (a ``LambdaLR`` over exactly that function,
built by ``build_scheduler``) once per update, and the TUI calls ``lr_curve`` to draw it.

Shapes (``w`` = warmup steps, ``T`` = total steps, ``m`` = ``min_lr_ratio``, ``p`` = the
progress ``(step - w) / (T - w)`` through the decay):

* warmup (any schedule): ``step / w`` for ``step < w`` (the first step runs at lr 0, as in
  transformers' ``get_scheduler``);
* ``constant``: 1;
* ``linear``: ``m + (1 - m) * (1 - p)``;
* ``cosine``: ``m + (1 - m) * 0.5 * (1 + cos(pi * p))``;
* ``step``: ``gamma ** floor((step - w) / step_size)`` (``min_lr_ratio`` does not apply);
* ``wsd`` (warmup-stable-decay): 1 until the last ``D = round(decay_ratio * T)`` steps, then
  ``m + (1 - m) * f(q)`` with ``q`` the progress through those ``D`` steps and ``f`` =
  ``1 - q`` (linear), ``0.5 * (1 + cos(pi * q))`` (cosine) or ``1 - sqrt(q)`` (1-sqrt);
* ``cosine_restarts``: ``m + (1 - m) * 0.5 * (1 + cos(pi * ((num_cycles * p) % 1)))``: the
  cosine restarts at the peak ``num_cycles`` times;
* ``polynomial``: ``m + (1 - m) * (1 - p) ** power``;
* ``inverse_sqrt``: ``1 / sqrt((step + s - w) / s)`` with ``s`` = ``timescale`` (default the
  warmup length, or 10000 without warmup); no floor;
* ``plateau``: ``max(m, gamma ** cuts)``, where ``cuts`` counts the reductions so far: after
  more than ``plateau_patience`` evaluations in a row whose eval loss failed to beat the best by
  more than ``min_delta``, the lr is multiplied by ``gamma`` (``Schedule.observe``, called with
  every eval loss, the step-0 baseline included; torch's ``ReduceLROnPlateau`` in ``abs`` mode).

With ``m = 0`` these equal transformers' ``get_scheduler`` schedules ``linear``, ``cosine``,
``constant_with_warmup``, ``warmup_stable_decay``, ``cosine_with_restarts``, ``polynomial``,
``inverse_sqrt`` and ``reduce_lr_on_plateau`` step for step; ``step`` without warmup equals
``torch.optim.lr_scheduler.StepLR`` (tests/core/training/test_schedules.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torch.optim.lr_scheduler import LambdaLR

if TYPE_CHECKING:
    import torch

    from genlab.core.configs import TrainConfig

INVERSE_SQRT_DEFAULT_TIMESCALE = 10_000
"""transformers' ``inverse_sqrt`` timescale when there is no warmup."""


def resolve_warmup_steps(total_steps: int, config: TrainConfig) -> int:
    """Warmup length in steps: ``warmup_steps`` if set, else ``ceil(warmup_ratio * total)``."""
    if config.warmup_steps > 0:
        return config.warmup_steps
    return math.ceil(config.warmup_ratio * total_steps)


def wsd_decay_steps(total_steps: int, config: TrainConfig) -> int:
    """Length of the wsd schedule's final decay: ``round(decay_ratio * T)``, at least 1."""
    warmup = resolve_warmup_steps(total_steps, config)
    return max(1, min(total_steps - warmup, round(config.decay_ratio * total_steps)))


def _decay_shape(shape: str, progress: float) -> float:
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if shape == "1-sqrt":
        return 1.0 - math.sqrt(progress)
    return 1.0 - progress


def _decayed(step: int, warmup: int, total_steps: int, config: TrainConfig) -> float:
    """The 0..1 factor of the schedules that decay over the whole run after warmup."""
    progress = (step - warmup) / max(1, total_steps - warmup)
    name = config.schedule
    if name == "linear":
        return max(0.0, 1.0 - progress)
    if name == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    if name == "cosine_restarts":
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((config.num_cycles * progress) % 1))))
    if name == "polynomial":
        return max(0.0, 1.0 - progress) ** config.power
    if name == "wsd":
        decay = wsd_decay_steps(total_steps, config)
        start = total_steps - decay
        if step < start:
            return 1.0
        return max(0.0, _decay_shape(config.decay_shape, min(1.0, (step - start) / decay)))
    raise ValueError(f"unknown schedule {name!r}")  # pragma: no cover - validated by config


def lr_at(step: int, total_steps: int, config: TrainConfig, cuts: int = 0) -> float:
    """Multiplier of the peak learning rate for the 0-based optimizer step ``step``.

    Args:
        step: 0-based optimizer step (the value ``LambdaLR`` passes as its epoch).
        total_steps: Optimizer steps in the whole run.
        config: Supplies ``schedule`` and its knobs, warmup and ``min_lr_ratio``.
        cuts: ``plateau`` schedule only: reductions made so far.

    Returns:
        A float in [0, 1]; multiply by ``config.scaled_lr`` for the learning rate.
    """
    warmup = resolve_warmup_steps(total_steps, config)
    if step < warmup:
        return step / max(1, warmup)
    name, floor = config.schedule, config.min_lr_ratio
    if name == "constant":
        return 1.0
    if name == "step":
        return config.gamma ** ((step - warmup) // config.step_size)
    if name == "plateau":
        return max(floor, config.gamma ** cuts)
    if name == "inverse_sqrt":
        scale = config.timescale or warmup or INVERSE_SQRT_DEFAULT_TIMESCALE
        return 1.0 / math.sqrt((step + scale - warmup) / scale)
    return floor + (1.0 - floor) * _decayed(step, warmup, total_steps, config)


def lr_curve(total_steps: int, config: TrainConfig) -> list[float]:
    """Learning rate (absolute, from ``config.scaled_lr``) of each of the run's steps, in order.

    For ``plateau`` the curve is the one without reductions (they depend on the eval losses).
    """
    peak = config.scaled_lr
    return [peak * lr_at(step, total_steps, config) for step in range(total_steps)]


class Schedule(LambdaLR):
    """``LambdaLR`` over ``lr_at``, plus the plateau schedule's eval-loss bookkeeping.

    Every optimizer parameter group keeps its own base lr (LoRA+ gives the B matrices a larger
    one); the multiplier is shared. The plateau state (best loss, bad evaluations, cuts) lives
    in plain attributes, so it is part of ``state_dict()`` and a resumed run continues it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int,
                 config: TrainConfig) -> None:
        self.total_steps = total_steps
        self.schedule_config = config
        self.plateau_best: float | None = None
        self.plateau_bad = 0
        self.plateau_cuts = 0
        # A plain function (not a bound method), so LambdaLR's state_dict leaves it out.
        super().__init__(optimizer, lambda step: self._multiplier(step))

    def _multiplier(self, step: int) -> float:
        return lr_at(step, self.total_steps, self.schedule_config, self.plateau_cuts)

    def state_dict(self) -> dict[str, Any]:
        """The state without the config (it is rebuilt from the run's config.json)."""
        state = super().state_dict()
        state.pop("schedule_config", None)
        return state

    def observe(self, eval_loss: float) -> bool:
        """Record an evaluation; returns True when it cut the lr (``plateau`` only)."""
        config = self.schedule_config
        if config.schedule != "plateau" or not math.isfinite(eval_loss):
            return False
        best = self.plateau_best
        if best is None or eval_loss < best - config.min_delta:
            self.plateau_best, self.plateau_bad = eval_loss, 0
            return False
        self.plateau_bad += 1
        if self.plateau_bad <= config.plateau_patience:
            return False
        self.plateau_bad = 0
        before = lr_at(self.total_steps, self.total_steps, config, self.plateau_cuts)
        self.plateau_cuts += 1
        after = lr_at(self.total_steps, self.total_steps, config, self.plateau_cuts)
        if after >= before:  # already at the floor
            self.plateau_cuts -= 1
            return False
        self._apply()
        return True

    def _apply(self) -> None:
        """Set every group's lr for the current step (after a plateau cut)."""
        factor = self._multiplier(self.last_epoch)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    config: TrainConfig) -> Schedule:
    """A ``Schedule`` over ``optimizer`` whose multiplier is ``lr_at``; step it once per update."""
    return Schedule(optimizer, total_steps, config)
