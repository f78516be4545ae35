"""LoRA target discovery and PEFT wrapping.

This module owns which modules of a causal LM get LoRA adapters and how the PEFT model is
built. The default targets are detected from the model's own module names rather than a
per-architecture table: every ``nn.Linear`` or transformers ``Conv1D`` that sits inside a
numbered block (``model.layers.3.self_attn.q_proj``, ``transformer.h.0.mlp.c_fc``), i.e. every
attention and MLP projection, and not the output head or other top-level projections. That gives
``q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`` for Llama/Qwen/Mistral and
``c_attn, c_proj, c_fc`` for GPT-2, and works for architectures with other names.

A requested target name matches a module the way PEFT matches it: the module's full name
equals it or ends with ``"." + name`` (so ``q_proj`` and ``self_attn.q_proj`` both work).
"""

from __future__ import annotations

import warnings
from typing import Any

from peft import LoraConfig, get_peft_model
from torch import nn


def _projection_types() -> tuple[type, ...]:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - very old transformers
        return (nn.Linear,)
    return (nn.Linear, Conv1D)


def projection_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Full name -> module for every Linear/Conv1D module of ``model``, in registration order."""
    types = _projection_types()
    return {name: m for name, m in model.named_modules() if name and isinstance(m, types)}


def available_target_names(model: nn.Module) -> list[str]:
    """Short (last-component) names of every Linear/Conv1D module, first-seen order, unique."""
    seen: dict[str, None] = {}
    for name in projection_modules(model):
        seen.setdefault(name.rsplit(".", 1)[-1], None)
    return list(seen)


def default_target_modules(model: nn.Module) -> tuple[str, ...]:
    """Short names of the projections inside numbered blocks (attention and MLP layers).

    Falls back to every Linear/Conv1D except the output head when the model has no numbered
    blocks.
    """
    seen: dict[str, None] = {}
    for name in projection_modules(model):
        parts = name.split(".")
        if any(p.isdigit() for p in parts[:-1]):
            seen.setdefault(parts[-1], None)
    if not seen:
        head = _output_head_names(model)
        for name in projection_modules(model):
            if name not in head:
                seen.setdefault(name.rsplit(".", 1)[-1], None)
    return tuple(seen)


def _output_head_names(model: nn.Module) -> set[str]:
    head = getattr(model, "get_output_embeddings", lambda: None)()
    return {name for name, m in model.named_modules() if head is not None and m is head}


def unknown_targets(model: nn.Module, targets: tuple[str, ...] | list[str]) -> list[str]:
    """The requested target names that match no Linear/Conv1D module of ``model``."""
    names = list(projection_modules(model))
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]


def _targets_conv1d(model: nn.Module, targets: tuple[str, ...]) -> bool:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover
        return False
    return any(
        isinstance(m, Conv1D) and any(n == t or n.endswith("." + t) for t in targets)
        for n, m in projection_modules(model).items()
    )


def apply_lora(model: nn.Module, *, rank: int, alpha: float, dropout: float,
               targets: tuple[str, ...], rslora: bool) -> Any:
    """Wrap ``model`` in a ``peft.PeftModel`` with a fresh LoRA adapter named ``default``.

    Only the adapter's A/B matrices are trainable; the base stays frozen. The A init draws from
    torch's global RNG, so seed it first for reproducible runs.

    Args:
        model: A transformers causal LM.
        rank: LoRA rank r.
        alpha: LoRA alpha (scale alpha / r, or alpha / sqrt(r) with ``rslora``).
        dropout: Dropout on the adapter input.
        targets: Module names to adapt (already validated with ``unknown_targets``).
        rslora: Rank-stabilised scaling.
    """


    lora_config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        use_rslora=rslora,
        bias="none",
        task_type="CAUSAL_LM",
        # GPT-2 style Conv1D stores weights transposed; PEFT needs to be told.
        fan_in_fan_out=_targets_conv1d(model, targets),
    )
    with warnings.catch_warnings():  # deprecation chatter from transformers/PEFT internals
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora_config)
