"""LoRA variants at setup time: the checks that need the model or the platform, and wrapping.

Owns turning the LoRA knobs of a ``TrainConfig`` (targets, DoRA, ``init``, per-module
patterns, QLoRA ``quantize``, LoRA+) into a PEFT model, and every check that cannot be made
from the config alone: which initialisations the platform supports (LoftQ needs a
bitsandbytes 4-bit base, so CUDA), which combinations PEFT cannot save in the standard format
(PiSSA/OLoRA with DoRA), whether the pattern keys name adapted modules. A failure is one
``TrainSetupError`` line naming the flag and the fix, raised before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from genlab.core.configs import TrainConfig
from genlab.core.modeling import lora as lora_mod
from genlab.core.training.errors import TrainSetupError

CUDA_EXTRA = "pip install 'genlab[cuda]'"


@dataclass
class WrappedModel:
    """The model to train, the config with its targets resolved, and the LoRA start weights
    that ``lora.save_adapter`` needs to convert a PiSSA/OLoRA adapter (else None)."""

    model: Any
    config: TrainConfig
    initial: dict[str, torch.Tensor] | None = None


def check_lora_knobs(config: TrainConfig, device: torch.device) -> None:
    """Checks of the LoRA knobs against the method and the device, before the model loads."""
    if config.method != "lora":
        given = [flag for flag, on in (
            ("--dora", config.dora), (f"--init {config.init}", config.init != "default"),
            ("--rank-pattern", config.rank_pattern is not None),
            ("--alpha-pattern", config.alpha_pattern is not None),
            (f"--quantize {config.quantize}", config.quantize != "none"),
            (f"--loraplus-ratio {config.loraplus_ratio:g}", config.loraplus_ratio != 1.0)) if on]
        if given:
            raise TrainSetupError(f"{given[0]}: a LoRA setting, but --method {config.method} "
                                  "trains every weight; drop it or use --method lora")
        return
    if config.init in lora_mod.CONVERTED_INITS and config.dora:
        raise TrainSetupError(f"--init {config.init} with --dora: PEFT cannot convert a DoRA "
                              f"{config.init} adapter into a plain one for the original base; "
                              "drop --dora or use --init default")
    if config.init == "loftq" and config.quantize != "4bit":
        raise TrainSetupError("--init loftq: LoftQ fits the LoRA weights to a 4-bit base, so it "
                              "needs --quantize 4bit (bitsandbytes on a CUDA GPU); on this "
                              "machine use --init pissa or default")
    if config.quantize != "none":
        check_bitsandbytes(f"--quantize {config.quantize}", device)


def check_bitsandbytes(flag: str, device: torch.device) -> None:
    """bitsandbytes features need CUDA and the package."""
    if device.type != "cuda":
        raise TrainSetupError(f"{flag}: bitsandbytes quantisation needs a CUDA GPU, but this "
                              f"run is on {device.type}; drop the flag (or run on a GPU with "
                              f"{CUDA_EXTRA})")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TrainSetupError(f"{flag}: needs bitsandbytes; {CUDA_EXTRA}") from None


def resolve_targets(model: Any, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """The LoRA target names: ``requested`` (validated) or the detected default.

    Raises:
        TrainSetupError: A requested name matches no Linear/Conv1D module; lists the names.
    """
    if requested is None:
        targets = lora_mod.default_target_modules(model)
        if not targets:
            raise TrainSetupError("--target-modules: the model has no Linear/Conv1D layers to "
                                  "adapt; use --method full")
        return targets
    unknown = lora_mod.unknown_targets(model, requested)
    if unknown:
        available = ", ".join(lora_mod.available_target_names(model))
        raise TrainSetupError(f"--target-modules: no module named {', '.join(unknown)} in this "
                              f"model; available: {available}")
    return tuple(requested)


def _check_patterns(model: Any, config: TrainConfig, targets: tuple[str, ...]) -> None:
    for flag, pattern in (("--rank-pattern", config.rank_by_module()),
                          ("--alpha-pattern", config.alpha_by_module())):
        unmatched = lora_mod.unmatched_pattern_keys(model, targets, list(pattern))
        if unmatched:
            raise TrainSetupError(f"{flag}: {', '.join(unmatched)} names none of the adapted "
                                  f"modules ({', '.join(targets)}); use one of those names")


def wrap_lora(model: Any, config: TrainConfig) -> WrappedModel:
    """Add the LoRA adapter the config describes (seed the RNG first: inits draw from it)."""
    targets = resolve_targets(model, config.target_modules)
    config = replace(config, target_modules=targets)
    _check_patterns(model, config, targets)
    if config.quantize != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    peft_model = lora_mod.apply_lora(
        model, rank=config.rank, alpha=config.alpha, dropout=config.dropout, targets=targets,
        rslora=config.rslora, dora=config.dora, init=config.init,
        rank_pattern=config.rank_by_module(), alpha_pattern=config.alpha_by_module())
    if config.init == "loftq":
        lora_mod.apply_loftq(peft_model, config.model)
    initial = (lora_mod.lora_state(peft_model) if config.init in lora_mod.CONVERTED_INITS
               else None)
    return WrappedModel(peft_model, config, initial)
