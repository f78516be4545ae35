"""Learning-rate schedules as pure functions, so the curve can be previewed without training.

This module owns the shape of the learning rate over a run. ``lr_at(step, total_steps, config)``
returns the multiplier of the peak lr (``config.scaled_lr``) for the 0-based optimizer step
``step``; the training loop wraps exactly that function in ``torch.optim.lr_scheduler.LambdaLR``
(``build_scheduler``) and the TUI calls ``lr_curve`` to draw it.

Shapes (``w`` = warmup steps, ``T`` = total steps, ``m`` = ``min_lr_ratio``):

* warmup (any schedule): ``step / w`` for ``step < w`` (the first step runs at lr 0, as in
  transformers' ``get_scheduler``);
* ``constant``: 1;
* ``linear``: ``m + (1 - m) * (T - step) / (T - w)``;
* ``cosine``: ``m + (1 - m) * 0.5 * (1 + cos(pi * (step - w) / (T - w)))``;
* ``step``: ``gamma ** floor((step - w) / step_size)`` (``min_lr_ratio`` does not apply).

With ``m = 0`` these equal transformers' ``linear``, ``cosine`` and ``constant_with_warmup``
schedules step for step, and ``step`` without warmup equals ``torch.optim.lr_scheduler.StepLR``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch.optim.lr_scheduler import LambdaLR

if TYPE_CHECKING:
    import torch

    from genlab.core.configs import TrainConfig


def resolve_warmup_steps(total_steps: int, config: TrainConfig) -> int:
    """Warmup length in steps: ``warmup_steps`` if set, else ``ceil(warmup_ratio * total)``."""
    if config.warmup_steps > 0:
        return config.warmup_steps
    return math.ceil(config.warmup_ratio * total_steps)


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    """Multiplier of the peak learning rate for the 0-based optimizer step ``step``.

    Args:
        step: 0-based optimizer step (the value ``LambdaLR`` passes as its epoch).
        total_steps: Optimizer steps in the whole run.
        config: Supplies ``schedule``, warmup, ``min_lr_ratio``, ``step_size`` and ``gamma``.

    Returns:
        A float in [0, 1]; multiply by ``config.scaled_lr`` for the learning rate.
    """
    warmup = resolve_warmup_steps(total_steps, config)
    if step < warmup:
        return step / max(1, warmup)
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "step":
        return config.gamma ** ((step - warmup) // config.step_size)
    floor = config.min_lr_ratio
    decay_steps = max(1, total_steps - warmup)
    if config.schedule == "linear":
        factor = max(0.0, (total_steps - step) / decay_steps)
    elif config.schedule == "cosine":
        progress = (step - warmup) / decay_steps
        factor = max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    else:  # pragma: no cover - TrainConfig validates the name
        raise ValueError(f"unknown schedule {config.schedule!r}")
    return floor + (1.0 - floor) * factor


def lr_curve(total_steps: int, config: TrainConfig) -> list[float]:
    """Learning rate (absolute, from ``config.scaled_lr``) of each of the run's steps, in order."""
    peak = config.scaled_lr
    return [peak * lr_at(step, total_steps, config) for step in range(total_steps)]


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over ``optimizer`` whose multiplier is ``lr_at``; step it once per update."""

    return LambdaLR(optimizer, lambda step: lr_at(step, total_steps, config))
