"""A fused training forward/backward for plain PEFT LoRA linear layers.

PEFT's ``lora.Linear`` computes ``base(x) + lora_B(lora_A(dropout(x))) * scaling`` as separate
autograd ops: the LoRA output is written, scaled and added to the base output in three passes
over the ``[tokens, out]`` activations, each with its own backward pass, and dropout keeps a
float noise tensor per layer. ``LoraLinearFunction`` does the same arithmetic in fewer passes:

* forward: ``out = x W^T (+ b)`` then ``out += scaling * (x_d A^T) B^T`` in one ``addmm_``;
* backward: ``g_h = g (scaling B)`` (scaling folded into the tiny ``[out, r]`` matrix), the
  LoRA input gradient added into the base one by one more ``addmm_`` when there is no dropout,
  and no input gradient at all where the input needs none (the first layer of a frozen base);
* dropout draws exactly the mask ``nn.Dropout`` would (``torch.native_dropout``: the same
  random numbers on CPU and CUDA as ``F.dropout``) and keeps it as booleans, a quarter of the
  memory. With ``dropout = 0`` there is no dropout work at all (the fast path).

The results equal PEFT's up to float rounding (per-step losses within 1e-5 in float32: see
tests/core/modeling/test_fused_lora.py and tests/core/training/test_fast_step.py).
``install_fused_lora`` replaces the ``forward`` of every eligible layer instance for training
only: in eval mode, with several or mixed adapters, DoRA or another variant, a merged or
disabled adapter, a non-``nn.Linear`` base (Conv1D, bitsandbytes) or extra forward arguments,
the layer runs PEFT's own forward.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

_ORIGINAL = "_genlab_peft_forward"


class LoraLinearFunction(torch.autograd.Function):
    """``x W^T + b + scaling * dropout(x) A^T B^T`` with a hand-written backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float,
                dropout: float) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])                                  # [tokens, in]
        mask = None
        if dropout > 0:
            xd, mask = torch.native_dropout(x2, dropout, True)         # mask: bool [tokens, in]
        else:
            xd = x2
        h = xd @ lora_a.t()                                            # [tokens, r]
        out = x2 @ weight.t() if bias is None else torch.addmm(bias, x2, weight.t())
        out.addmm_(h, lora_b.t(), alpha=scaling)                       # [tokens, out]
        ctx.save_for_backward(xd, mask, weight, lora_a, lora_b, h)
        ctx.scaling, ctx.dropout, ctx.shape = scaling, dropout, shape
        return out.view(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        xd, mask, weight, lora_a, lora_b, h = ctx.saved_tensors
        g = grad_out.reshape(-1, grad_out.shape[-1])                   # [tokens, out]
        g_h = g @ (lora_b * ctx.scaling)                               # [tokens, r]
        grad_a = g_h.t() @ xd if ctx.needs_input_grad[3] else None     # [r, in]
        grad_b = (g.t() @ h).mul_(ctx.scaling) if ctx.needs_input_grad[4] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = g @ weight                                        # [tokens, in]
            if mask is None:
                grad_x.addmm_(g_h, lora_a)
            else:
                grad_x.add_((g_h @ lora_a) * mask * (1.0 / (1.0 - ctx.dropout)))
            grad_x = grad_x.view(ctx.shape)
        return grad_x, None, None, grad_a, grad_b, None, None


def _fusable(layer: nn.Module, x: torch.Tensor, args: tuple, kwargs: dict) -> str | None:
    """The adapter name to fuse, or None when PEFT's own forward must run."""
    if (not layer.training or args or kwargs or layer.merged or layer.disable_adapters
            or len(layer.active_adapters) != 1):
        return None
    name = layer.active_adapters[0]
    base = layer.get_base_layer()
    if (name not in layer.lora_A or name in getattr(layer, "lora_variant", {})
            or type(base) is not nn.Linear or layer.fan_in_fan_out):
        return None
    if not torch.is_autocast_enabled(x.device.type) and not (
            layer.lora_A[name].weight.dtype == base.weight.dtype == x.dtype):
        return None  # mixed dtypes without autocast: PEFT casts them its own way
    return name


def _fused_forward(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    name = _fusable(self, x, args, kwargs)
    if name is None:
        return getattr(self, _ORIGINAL)(x, *args, **kwargs)
    base = self.get_base_layer()
    drop = self.lora_dropout[name]
    p = drop.p if isinstance(drop, nn.Dropout) else 0.0
    tensors = [x, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight]
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return LoraLinearFunction.apply(*tensors[:3], *tensors[3:], float(self.scaling[name]), p)
    # Autocast, as torch.amp.custom_fwd does it: cast every input to the autocast dtype
    # (differentiably, so fp32 LoRA weights get fp32 gradients) and run without autocast.
    dtype = torch.get_autocast_dtype(device)
    cast = [t.to(dtype) if t is not None else None for t in tensors]
    with torch.autocast(device, enabled=False):
        return LoraLinearFunction.apply(*cast, float(self.scaling[name]), p)


def install_fused_lora(model: nn.Module) -> int:
    """Route the training forward of every PEFT ``lora.Linear`` in ``model`` through the fused
    function (per instance; PEFT's class is untouched). Returns how many layers were patched."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    count = 0
    for module in model.modules():
        if type(module) is LoraLinear and not hasattr(module, _ORIGINAL):
            setattr(module, _ORIGINAL, module.forward)
            module.forward = types.MethodType(_fused_forward, module)
            count += 1
    return count


def remove_fused_lora(model: nn.Module) -> None:
    """Undo ``install_fused_lora``."""
    for module in model.modules():
        if hasattr(module, _ORIGINAL):
            del module.forward
            delattr(module, _ORIGINAL)
