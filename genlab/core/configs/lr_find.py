"""The learning-rate range test's own knobs (``genlab lr-find``); the run itself is a
``TrainConfig`` (model, data, LoRA, optimizer, batch)."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.core.configs.knobs import ConfigError, knob, validate_knobs

LR_FIND = "LR range test"


@dataclass(frozen=True)
class LrFindConfig:
    """How the lr range test sweeps: from ``start_lr`` to ``end_lr`` over ``num_steps``."""

    start_lr: float = knob(1e-7, low=0, low_open=True, panel=LR_FIND, metavar="LR")
    """Learning rate of the first step."""
    end_lr: float = knob(10.0, low=0, low_open=True, panel=LR_FIND, metavar="LR")
    """Learning rate of the last step; the steps in between grow it exponentially."""
    num_steps: int = knob(100, low=5, panel=LR_FIND, metavar="N", flag="--steps")
    """Optimizer steps of the sweep (each on the next batch of the training data)."""
    smoothing: float = knob(0.9, low=0, high=1, high_open=True, panel=LR_FIND, metavar="B")
    """Beta of the loss curve's moving average: run forward while sweeping (the stop rule),
    forward and backward for the suggestions (no lag)."""
    diverge: float = knob(4.0, low=1, low_open=True, panel=LR_FIND, metavar="X")
    """Stop once the smoothed loss exceeds X times its minimum (the loss has exploded)."""

    def __post_init__(self) -> None:
        validate_knobs(self)
        if self.end_lr <= self.start_lr:
            raise ConfigError("end_lr", self.end_lr, f"above --start-lr {self.start_lr:g}")
