"""Optimizers, weight-decay groups and the per-step update/param ratio.

This module owns how trainable parameters become a torch optimizer:

* ``adamw`` is ``torch.optim.AdamW`` (decoupled decay); ``adam`` is ``torch.optim.Adam`` and
  ``sgd`` is ``torch.optim.SGD`` (momentum, no Nesterov), both with L2 decay. ``adafactor``,
  ``rmsprop`` (with ``momentum``) and ``adagrad`` are torch's own; ``lion`` is lion-pytorch's
  ``Lion`` (decoupled decay, ``betas``); ``adamw8bit`` is bitsandbytes' ``AdamW8bit`` (CUDA).
* Adam and AdamW run fused (one kernel for every tensor) on CUDA, and wherever the loop reads
  metrics back only every few steps (``sync_every`` > 1): the fused kernels take a device-side
  ``found_inf`` flag, which is how a non-finite step is skipped without a host sync.
* LoRA+ (``loraplus_ratio`` != 1): the LoRA ``B`` matrices and every 1-d trainable tensor
  (DoRA magnitudes) get ``lr x ratio``, exactly the groups of PEFT's
  ``create_loraplus_optimizer``; the decay split below applies inside each group.
* Weight decay applies only to matrices. Biases and norm weights (every parameter with fewer
  than 2 dimensions) and embedding tables (the ``weight`` of every ``nn.Embedding``, so a tied
  output head too) are in a no-decay group: shrinking them toward zero hurts without
  regularising anything useful. LoRA ``A``/``B`` matrices are decayed.

``UpdateTracker`` measures ``||W_after - W_before|| / ||W_before||`` over the trained weights
with one preallocated copy and foreach kernels, cheap enough to run every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


class OptimizerUnavailable(RuntimeError):
    """The optimizer needs a package or a device this run does not have (one-line message)."""


def is_loraplus_b(name: str, param: nn.Parameter) -> bool:
    """True for the tensors LoRA+ trains faster: LoRA ``B`` matrices and 1-d tensors (PEFT)."""
    return "lora_B" in name or param.ndim == 1


def param_groups(model: nn.Module, config: TrainConfig, lr: float) -> list[dict[str, Any]]:
    """Optimizer groups: (decay, no decay) x (A at ``lr``, LoRA+ B at ``lr x ratio``).

    The first group holds the parameters trained at ``lr`` itself, so its lr is the run's.
    """
    decay, no_decay = split_decay_groups(model)
    ratio = config.loraplus_ratio if config.method == "lora" else 1.0
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    fast = {id(p) for n, p in named if ratio != 1.0 and is_loraplus_b(n, p)}
    groups = []
    for scale, in_group in ((1.0, lambda p: id(p) not in fast), (ratio, lambda p: id(p) in fast)):
        for params, weight_decay in ((decay, config.weight_decay), (no_decay, 0.0)):
            chosen = [p for p in params if in_group(p)]
            if chosen:
                groups.append({"params": chosen, "weight_decay": weight_decay, "lr": lr * scale})
    return groups


def uses_fused(config: TrainConfig, device: torch.device, sync_every: int) -> bool:
    """Adam/AdamW run fused on CUDA and whenever step metrics are read back lazily."""
    return config.optimizer in ("adam", "adamw") and (device.type == "cuda" or sync_every > 1)


def build_optimizer(model: nn.Module, config: TrainConfig, lr: float, *,
                    device: torch.device | None = None, fused: bool = False
                    ) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` over the trainable parameters of ``model``.

    Args:
        model: The model to train (only parameters with ``requires_grad`` are optimised).
        config: Supplies optimizer, betas, momentum, weight_decay and loraplus_ratio.
        lr: Peak learning rate (the scheduler multiplies it).
        device: Where the parameters live (``adamw8bit`` needs CUDA).
        fused: Use the fused Adam/AdamW kernels (see ``uses_fused``).

    Raises:
        OptimizerUnavailable: lion without lion-pytorch, adamw8bit off CUDA or without
            bitsandbytes.
    """
    groups = param_groups(model, config, lr)
    name, betas = config.optimizer, config.betas
    if name in ("adamw", "adam"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(groups, lr=lr, betas=betas, **({"fused": True} if fused else {}))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=False)
    if name == "adafactor":
        if not hasattr(torch.optim, "Adafactor"):
            raise OptimizerUnavailable("--optimizer adafactor: needs torch >= 2.5 "
                                       f"(this is {torch.__version__})")
        return torch.optim.Adafactor(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=config.momentum)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if name == "lion":
        return _lion(groups, lr, betas)
    if name == "adamw8bit":
        return _adamw8bit(groups, lr, betas, device)
    raise ValueError(f"unknown optimizer {name!r}")  # pragma: no cover - validated by config


def _lion(groups: list[dict[str, Any]], lr: float, betas: tuple[float, float]) -> Any:
    try:
        from lion_pytorch import Lion
    except ImportError:
        raise OptimizerUnavailable("--optimizer lion: needs the lion-pytorch package; "
                                   "pip install lion-pytorch") from None
    return Lion(groups, lr=lr, betas=betas, decoupled_weight_decay=False)


def _adamw8bit(groups: list[dict[str, Any]], lr: float, betas: tuple[float, float],
               device: torch.device | None) -> Any:
    if device is None or device.type != "cuda":
        where = device.type if device is not None else "this device"
        raise OptimizerUnavailable(f"--optimizer adamw8bit: bitsandbytes' 8-bit AdamW needs a "
                                   f"CUDA GPU, but this run is on {where}; use --optimizer adamw")
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise OptimizerUnavailable("--optimizer adamw8bit: needs bitsandbytes; pip install "
                                   "'genlab[cuda]'") from None
    return bnb.optim.AdamW8bit(groups, lr=lr, betas=betas)


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

    def ratio(self) -> float:
        """||W_now - W_before|| / ||W_before|| (0 when the weights were all zero)."""
        return float(self.ratio_tensor())

    @torch.no_grad()
    def ratio_tensor(self) -> torch.Tensor:
        """``ratio()`` as a 0-d tensor on the weights' device (no host sync)."""
        current = [p.detach() for p in self.params]
        weight_norm = _global_norm(self._before)
        torch._foreach_sub_(self._before, current)  # before := before - now = -delta
        delta_norm = _global_norm(self._before)
        torch._foreach_copy_(self._before, current)
        return torch.where(weight_norm > 0, delta_norm / weight_norm.clamp_min(1e-30),
                           torch.zeros_like(weight_norm))


def _global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    norms = torch._foreach_norm([t.float() for t in tensors] if _any_low(tensors) else tensors)
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


def _any_low(tensors: list[torch.Tensor]) -> bool:
    return any(t.dtype in (torch.float16, torch.bfloat16) for t in tensors)
