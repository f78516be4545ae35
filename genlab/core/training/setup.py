"""Everything a training run needs before its first step, validated before any file is written.

This module owns the setup phase of ``training.train.iter_train``: the ``Accelerator``
(device, mixed precision, processes), the model (``modeling.loading.load_model``), the data
(``data.packing.prepare_data``), LoRA wrapping (``modeling.lora``), the optimizer and
schedule, and every check that needs them. A failure raises ``ModelLoadError``, ``DataError`` or
``TrainSetupError`` (one line each) while nothing is on disk yet.

Mixed precision (``config.dtype``): ``auto`` is bf16 autocast on CUDA where supported, fp16 with
a grad scaler where not, and none (float32) on CPU/MPS; an explicit ``bfloat16`` autocasts on any
device, ``float16`` needs CUDA. Trained weights stay float32 (mixed-precision master weights); for
LoRA the frozen base is loaded in the autocast dtype to halve its memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType, set_seed
from peft import PeftModel

from genlab.core.configs import TrainConfig
from genlab.core.data.packing import prepare_data
from genlab.core.errors import GenlabError
from genlab.core.modeling import lora as lora_mod
from genlab.core.modeling.loading import load_model, resolve_device
from genlab.core.training.optimizers import build_optimizer
from genlab.core.training.schedules import build_scheduler, resolve_warmup_steps
from genlab.version import __version__

MIXED_TO_DTYPE = {"no": "float32", "bf16": "bfloat16", "fp16": "float16"}


class TrainSetupError(GenlabError, ValueError):
    """A training run cannot start; the one-line message names the flag and the fix."""


@dataclass
class TrainingSetup:
    """A model, data and optimizer ready to train, plus the facts stored in ``config.json``.

    Attributes:
        config: The resolved config (absolute local paths, explicit LoRA targets).
        accelerator: The ``accelerate.Accelerator`` driving device, precision and processes.
        model: The prepared model (DDP-wrapped in multi-process runs).
        unwrapped: The bare model: a ``PeftModel`` for LoRA, the HF model for full training.
        tokenizer: The model's tokenizer.
        data: Packed train/eval blocks (``genlab.core.data.packing.PreparedData``).
        optimizer: The prepared optimizer.
        scheduler: ``LambdaLR`` over ``genlab.core.training.schedules.lr_at`` (stepped by the loop).
        total_steps: Optimizer steps in the run.
        warmup_steps: Resolved warmup length.
        global_batch: Sequences per optimizer step over all processes.
        resolved: Facts for ``config.json``'s ``"resolved"`` entry.
    """

    config: TrainConfig
    accelerator: Any
    model: Any
    unwrapped: Any
    tokenizer: Any
    data: Any
    optimizer: Any
    scheduler: Any
    total_steps: int
    warmup_steps: int
    global_batch: int
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        """The device this process trains on."""
        return self.accelerator.device

    @property
    def trainable(self) -> list[torch.nn.Parameter]:
        """The trained parameters of the bare model."""
        return [p for p in self.unwrapped.parameters() if p.requires_grad]

    @property
    def generation_model(self) -> Any:
        """The model to generate samples with: LoRA layers active, no PEFT wrapper."""

        if isinstance(self.unwrapped, PeftModel):
            return self.unwrapped.get_base_model()
        return self.unwrapped


# ----------------------------------------------------------------------------- phases


def setup_training(config: TrainConfig) -> TrainingSetup:
    """Build everything the loop needs; nothing is written to disk.

    Raises:
        ModelLoadError: The model or tokenizer cannot be loaded.
        DataError: The data cannot be read or is too small.
        TrainSetupError: A setting conflicts with the model or the data.
    """


    config = resolve_paths(config)
    accelerator, mixed = make_accelerator(config)

    # --- model: frozen base in the autocast dtype for LoRA, float32 master weights for full
    load_dtype = MIXED_TO_DTYPE[mixed] if config.method == "lora" else "float32"
    loaded = load_model(config.model, device=str(accelerator.device), dtype=load_dtype)
    check_seq_len(config, loaded.model)

    # --- data and run length
    data = prepare_data(config, loaded.tokenizer)
    has_eval = data.eval is not None and len(data.eval) > 0
    if config.patience > 0 and not has_eval:
        raise TrainSetupError(f"--patience {config.patience}: early stopping needs eval data, "
                              "but there is none; pass --eval-data FILE or --eval-split > 0, "
                              "or --patience 0")
    global_batch = config.effective_batch * accelerator.num_processes
    total_steps = config.max_steps or math.ceil(config.epochs * len(data.train) / global_batch)
    warmup = resolve_warmup_steps(total_steps, config)
    if warmup >= total_steps:
        flag = f"--warmup-steps {config.warmup_steps}" if config.warmup_steps else (
            f"--warmup-ratio {config.warmup_ratio}")
        raise TrainSetupError(f"{flag}: warmup ({warmup} steps) is as long as the whole run "
                              f"({total_steps} steps); lower it or train longer "
                              "(--max-steps/--epochs)")

    # --- trainable weights (LoRA init draws from the seeded RNG)
    set_seed(config.seed)
    model = loaded.model
    if config.method == "lora":
        targets = resolve_targets(model, config.target_modules)
        config = replace(config, target_modules=targets)
        model = lora_mod.apply_lora(model, rank=config.rank, alpha=config.alpha,
                                    dropout=config.dropout, targets=targets, rslora=config.rslora)
    model.train()

    # --- optimizer and schedule (the scheduler wraps the bare optimizer; the loop steps it)

    optimizer = build_optimizer(model, config, config.scaled_lr)
    scheduler = build_scheduler(optimizer, total_steps, config)
    prepared_model, prepared_opt = accelerator.prepare(model, optimizer)

    setup = TrainingSetup(
        config=config, accelerator=accelerator, model=prepared_model, unwrapped=model,
        tokenizer=loaded.tokenizer, data=data, optimizer=prepared_opt, scheduler=scheduler,
        total_steps=total_steps, warmup_steps=warmup, global_batch=global_batch,
    )
    setup.resolved = resolved_facts(setup, mixed)
    return setup


def resolve_paths(config: TrainConfig) -> TrainConfig:
    """Make local model/data paths absolute so the run directory alone reproduces the run."""
    def absolute(value: str | None) -> str | None:
        if value and Path(value).expanduser().exists():
            return str(Path(value).expanduser().resolve())
        return value

    return replace(config, model=absolute(config.model), data=absolute(config.data),
                   eval_data=absolute(config.eval_data))


def mixed_precision_for(config: TrainConfig, device: torch.device) -> str:
    """accelerate's ``mixed_precision`` ("no", "bf16", "fp16") for ``config.dtype`` on ``device``.

    Raises:
        TrainSetupError: ``float16`` off CUDA, or an unknown dtype name.
    """
    name = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(config.dtype,
                                                                         config.dtype)
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "no"
    if name == "float32":
        return "no"
    if name == "bfloat16":
        return "bf16"
    if name == "float16":
        if device.type != "cuda":
            raise TrainSetupError(f"--dtype float16: fp16 mixed precision needs a CUDA GPU, but "
                                  f"this run is on {device.type}; use --dtype bfloat16 or float32")
        return "fp16"
    raise TrainSetupError(f"--dtype {config.dtype}: unknown dtype; choose one of auto, float32, "
                          "bfloat16, float16")


def make_accelerator(config: TrainConfig) -> tuple[Any, str]:
    """An ``Accelerator`` for ``config.device``/``config.dtype``; returns it and its precision.

    In a single process the accelerate singletons are reset first, so one Python session (a
    TUI, a notebook, the tests) can run trainings with different devices and precisions one
    after the other. Under ``accelerate launch`` the launcher's process group is kept.
    """

    partial = PartialState._shared_state
    if not partial or partial.get("distributed_type") == DistributedType.NO:
        AcceleratorState._reset_state(reset_partial_state=True)
    cpu = config.device == "cpu"
    if not cpu and config.device != "auto":
        resolve_device(config.device)  # ModelLoadError when the device is missing
    probe = torch.device("cpu") if cpu else PartialState(cpu=False).device
    mixed = mixed_precision_for(config, probe)
    return Accelerator(cpu=cpu, mixed_precision=mixed), mixed


def check_seq_len(config: TrainConfig, model: Any) -> None:
    """Raise when ``seq_len`` exceeds the model's position limit."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and config.seq_len > limit:
        raise TrainSetupError(f"--seq-len {config.seq_len}: the model handles at most {limit} "
                              f"positions; use --seq-len {limit} or less")


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


def resolved_facts(setup: TrainingSetup, mixed: str) -> dict[str, Any]:
    """What the run resolved beyond the config: stored under ``config.json``'s ``resolved``."""


    data = setup.data
    return {
        "total_steps": setup.total_steps,
        "warmup_steps": setup.warmup_steps,
        "lr": setup.config.scaled_lr,
        "effective_batch": setup.global_batch,
        "num_processes": setup.accelerator.num_processes,
        "device": setup.device.type,
        "mixed_precision": mixed,
        "dtype": MIXED_TO_DTYPE[mixed],
        "trainable_params": sum(p.numel() for p in setup.trainable),
        "total_params": sum(p.numel() for p in setup.unwrapped.parameters()),
        "train_blocks": len(data.train),
        "eval_blocks": len(data.eval) if data.eval is not None else 0,
        "train_tokens": data.train_tokens,
        "train_documents": data.train_documents,
        "eval_documents": data.eval_documents,
        "eval_bytes": data.eval_bytes,
        "loss": "token-weighted mean over the step's loss tokens",
        "genlab_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "peft_version": peft.__version__,
    }
