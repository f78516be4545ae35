"""LoRA target discovery and PEFT wrapping.

This module owns which modules of a causal LM get LoRA adapters and how the PEFT model is
built. The default targets are detected from the model's own module names rather than a
per-architecture table: every ``nn.Linear`` or transformers ``Conv1D`` that sits inside a
numbered block (``model.layers.3.self_attn.q_proj``, ``transformer.h.0.mlp.c_fc``), i.e. every
attention and MLP projection, and not the output head or other top-level projections. That gives
``q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`` for Llama/Qwen/Mistral and
``c_attn, c_proj, c_fc`` for GPT-2, and works for architectures with other names.

A requested target name matches a module the way PEFT matches it: the module's full name
equals it or ends with ``"." + name`` (so ``q_proj`` and ``self_attn.q_proj`` both work); so do
the keys of ``rank_pattern`` / ``alpha_pattern``.

Variants (all PEFT's own, so the adapter loads with ``PeftModel.from_pretrained``): DoRA
(``use_dora``), the initialisations of ``LORA_INITS`` (``init_lora_weights``), per-module ranks
and alphas. PiSSA and OLoRA initialise A and B from the base weights and subtract that start
from the base; ``save_adapter`` then converts the trained adapter into a plain LoRA of rank 2r
that applies to the original, unchanged base model (PEFT's
``path_initial_model_for_weight_conversion``). LoftQ needs a bitsandbytes 4-bit base: the LoRA
weights are set from the quantisation error (``replace_lora_weights_loftq``).
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from torch import nn

PEFT_INIT = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora",
             "loftq": True}
"""genlab's ``init`` names -> PEFT ``init_lora_weights`` (loftq starts from the default and is
then replaced by ``apply_loftq``)."""
CONVERTED_INITS = ("pissa", "olora")
"""Initialisations that change the base weights; their adapters are converted when saved."""


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


def pattern_matches(key: str, module_name: str) -> bool:
    """True when a ``rank_pattern``/``alpha_pattern`` key selects ``module_name`` (as PEFT)."""
    return re.match(rf"(.*\.)?({key})$", module_name) is not None


def unmatched_pattern_keys(model: nn.Module, targets: tuple[str, ...],
                           keys: list[str]) -> list[str]:
    """The pattern keys that select none of the modules LoRA adapts."""
    adapted = [n for n in projection_modules(model)
               if any(n == t or n.endswith("." + t) for t in targets)]
    return [k for k in keys if not any(pattern_matches(k, n) for n in adapted)]


def apply_lora(model: nn.Module, *, rank: int, alpha: float, dropout: float,
               targets: tuple[str, ...], rslora: bool, dora: bool = False,
               init: str = "default", rank_pattern: dict[str, int] | None = None,
               alpha_pattern: dict[str, float] | None = None) -> Any:
    """Wrap ``model`` in a ``peft.PeftModel`` with a fresh LoRA adapter named ``default``.

    Only the adapter's A/B matrices (and DoRA magnitudes) are trainable; the base stays
    frozen. The default A init draws from torch's global RNG, so seed it first for reproducible
    runs.

    Args:
        model: A transformers causal LM.
        rank: LoRA rank r.
        alpha: LoRA alpha (scale alpha / r, or alpha / sqrt(r) with ``rslora``).
        dropout: Dropout on the adapter input.
        targets: Module names to adapt (already validated with ``unknown_targets``).
        rslora: Rank-stabilised scaling.
        dora: Weight-decomposed LoRA.
        init: One of ``PEFT_INIT``'s names.
        rank_pattern: Per-module ranks (keys as PEFT matches them).
        alpha_pattern: Per-module alphas.
    """
    lora_config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        use_rslora=rslora,
        use_dora=dora,
        init_lora_weights=PEFT_INIT[init],
        rank_pattern=dict(rank_pattern or {}),
        alpha_pattern=dict(alpha_pattern or {}),
        bias="none",
        task_type="CAUSAL_LM",
        # GPT-2 style Conv1D stores weights transposed; PEFT needs to be told.
        fan_in_fan_out=_targets_conv1d(model, targets),
    )
    with warnings.catch_warnings():  # deprecation chatter from transformers/PEFT internals
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)  # PiSSA/OLoRA's note on saving
        return get_peft_model(model, lora_config)


def apply_loftq(peft_model: Any, model_dir: str) -> None:
    """Set the LoRA weights of a bitsandbytes 4-bit ``peft_model`` by LoftQ (PEFT).

    ``model_dir`` is the base model: a local directory with a ``model.safetensors`` or a hub id
    (PEFT reads the unquantised weights from it).
    """
    from peft import replace_lora_weights_loftq

    local = Path(model_dir) / "model.safetensors"
    replace_lora_weights_loftq(peft_model, model_path=str(local) if local.is_file() else None)


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable LoRA tensors (to remember the start of a PiSSA/OLoRA run)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
            if p.requires_grad}


@torch.no_grad()
def _load_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for name, tensor in state.items():
        params[name].copy_(tensor)


def save_adapter(peft_model: Any, out_dir: str | Path,
                 initial: dict[str, torch.Tensor] | None = None) -> None:
    """``save_pretrained`` the adapter; with ``initial`` (PiSSA/OLoRA), convert it first.

    The conversion writes the start adapter next to ``out_dir`` (removed afterwards) and lets
    PEFT turn ``BA - B0A0`` into a rank-2r adapter of the original base weights.
    """
    out_dir = Path(out_dir)
    # LoRA never resizes the vocabulary; "auto" would look for a config.json at the base path
    # (a GGUF file has none) and warn on stderr.
    if initial is None:
        peft_model.save_pretrained(str(out_dir), save_embedding_layers=False)
        return
    start_dir = out_dir.with_name("genlab_lora_start")  # PEFT names an adapter after it: no dots
    shutil.rmtree(start_dir, ignore_errors=True)
    config = peft_model.peft_config["default"]
    trained = lora_state(peft_model)
    chosen_init = config.init_lora_weights
    try:
        _load_state(peft_model, initial)
        config.init_lora_weights = True  # saved as a plain start adapter, as PEFT asks
        peft_model.save_pretrained(str(start_dir), save_embedding_layers=False)
        config.init_lora_weights = chosen_init
        _load_state(peft_model, trained)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            peft_model.save_pretrained(str(out_dir), save_embedding_layers=False,
                                       path_initial_model_for_weight_conversion=str(start_dir))
    finally:
        config.init_lora_weights = chosen_init
        _load_state(peft_model, trained)
        shutil.rmtree(start_dir, ignore_errors=True)
