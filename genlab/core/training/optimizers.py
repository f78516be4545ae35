"""Optimizers, weight-decay groups and the per-step update/param ratio.

This module owns how trainable parameters become a torch optimizer:

* ``adamw`` is ``torch.optim.AdamW`` (decoupled decay); ``adam`` is ``torch.optim.Adam`` and
  ``sgd`` is ``torch.optim.SGD`` (momentum, no Nesterov), both with L2 decay.
* Weight decay applies only to matrices. Biases and norm weights (every parameter with fewer
  than 2 dimensions) and embedding tables (the ``weight`` of every ``nn.Embedding``, so a tied
  output head too) are in a no-decay group: shrinking them toward zero hurts without
  regularising anything useful. LoRA ``A``/``B`` matrices are decayed.

``UpdateTracker`` measures ``||W_after - W_before|| / ||W_before||`` over the trained weights
with one preallocated copy and foreach kernels, cheap enough to run every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from genlab.core.configs import TrainConfig


def split_decay_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split the trainable parameters into (decay, no_decay) lists, in registration order.

    Args:
        model: Any module; frozen parameters (``requires_grad=False``) are skipped.

    Returns:
        Matrices to decay, and biases, norm weights and embedding tables not to decay.
    """
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():  # deduplicated, so tied weights appear once
        if not param.requires_grad:
            continue
        if param.ndim < 2 or id(param) in embedding_ids:
            no_decay.append(param)
        else:
            decay.append(param)
    return decay, no_decay


def build_optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` over the trainable parameters of ``model``.

    Args:
        model: The model to train (only parameters with ``requires_grad`` are optimised).
        config: Supplies optimizer, betas, momentum and weight_decay.
        lr: Peak learning rate (the scheduler multiplies it).
    """
    decay, no_decay = split_decay_groups(model)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=config.betas)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=config.betas)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=False)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")  # pragma: no cover


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that receive gradients, deduplicated, in registration order."""
    return [p for p in model.parameters() if p.requires_grad]


class UpdateTracker:
    """Measures ||delta W|| / ||W|| of one optimizer step over a fixed list of parameters.

    Call ``before_step()`` right before ``optimizer.step()`` and ``ratio()`` right after.
    """

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        self._before = [p.detach().clone() for p in params]

    def before_step(self) -> None:
        """Remember the current weights."""
        torch._foreach_copy_(self._before, [p.detach() for p in self.params])

    @torch.no_grad()
    def ratio(self) -> float:
        """||W_now - W_before|| / ||W_before|| (0 when the weights were all zero)."""
        current = [p.detach() for p in self.params]
        weight_norm = _global_norm(self._before)
        torch._foreach_sub_(self._before, current)  # before := before - now = -delta
        delta_norm = _global_norm(self._before)
        torch._foreach_copy_(self._before, current)
        return delta_norm / weight_norm if weight_norm > 0 else 0.0


def _global_norm(tensors: list[torch.Tensor]) -> float:
    norms = torch._foreach_norm([t.float() for t in tensors] if _any_low(tensors) else tensors)
    return float(torch.linalg.vector_norm(torch.stack([n.float() for n in norms])))


def _any_low(tensors: list[torch.Tensor]) -> bool:
    return any(t.dtype in (torch.float16, torch.bfloat16) for t in tensors)
