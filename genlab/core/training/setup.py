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

A GGUF base (``--model file.gguf``) is loaded dequantized, so LoRA and full training work as
on a Hugging Face checkpoint; the adapter's ``base_model_name_or_path`` names the GGUF file so
``genlab merge`` finds it. ``gradient_checkpointing`` recomputes activations in the backward
pass (non-reentrant, so a frozen LoRA base needs no input-grad hooks).
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

from genlab.core.configs import GenerationRequest, SamplingParams, TrainConfig
from genlab.core.data.packing import prepare_data
from genlab.core.generation.prompting import ContextLimitError, PromptError, encode_prompt
from genlab.core.modeling.fused_lora import install_fused_lora
from genlab.core.modeling.loading import LoadedModel, load_model, resolve_device
from genlab.core.training.errors import TrainSetupError
from genlab.core.training.lora_setup import (
    check_bitsandbytes,
    check_lora_knobs,
    resolve_targets,
    wrap_lora,
)
from genlab.core.training.optimizers import (
    OptimizerUnavailable,
    build_optimizer,
    uses_fused,
)
from genlab.core.training.schedules import build_scheduler, resolve_warmup_steps
from genlab.version import __version__

__all__ = ["TrainSetupError", "TrainingSetup", "resolve_targets", "setup_training"]
SYNC_EVERY_CUDA = 10
"""``sync_every`` 0 (auto) on CUDA: read step metrics back every 10 steps."""

MIXED_TO_DTYPE = {"no": "float32", "bf16": "bfloat16", "fp16": "float16"}


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
        scheduler: ``schedules.Schedule`` over ``schedules.lr_at`` (stepped by the loop).
        total_steps: Optimizer steps in the run.
        warmup_steps: Resolved warmup length.
        global_batch: Sequences per optimizer step over all processes.
        sync_every: Steps between reads of the step metrics from the device (resolved).
        initial_adapter: LoRA start weights of a PiSSA/OLoRA run (for the conversion when
            the adapter is saved), else None.
        resolved: Facts for ``config.json``'s ``"resolved"`` entry.
        model_text: What was loaded and its memory, for ``RunStarted``.
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
    sync_every: int = 1
    initial_adapter: dict[str, torch.Tensor] | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    model_text: str = ""

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
    device = accelerator.device
    check_lora_knobs(config, device)

    # --- model: frozen base in the autocast dtype for LoRA, float32 master weights for full
    load_dtype = MIXED_TO_DTYPE[mixed] if config.method == "lora" else "float32"
    loaded = load_model(config.model, device=str(device), dtype=load_dtype,
                        gguf_file=config.gguf_file, quantize=config.quantize,
                        threads=config.threads)
    check_seq_len(config, loaded.model)

    # --- data and run length
    data = prepare_data(config, loaded.tokenizer)
    check_sample_prompts(config, loaded, data.chat)
    global_batch = config.effective_batch * accelerator.num_processes
    total_steps = config.max_steps or math.ceil(config.epochs * len(data.train) / global_batch)
    warmup = resolve_warmup_steps(total_steps, config)
    check_run_shape(config, data, total_steps, warmup)

    # --- trainable weights (LoRA init draws from the seeded RNG)
    set_seed(config.seed)
    model, initial = loaded.model, None
    if config.method == "lora":
        wrapped = wrap_lora(model, config)
        model, config, initial = wrapped.model, wrapped.config, wrapped.initial
        if loaded.gguf is not None:  # PEFT would record the directory; merge needs the file
            model.peft_config["default"].base_model_name_or_path = loaded.gguf.path
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model.train()
    fused_layers = install_fused_lora(model) if config.fused_lora else 0

    # --- optimizer and schedule (the scheduler wraps the bare optimizer; the loop steps it)
    sync_every = resolve_sync_every(config, device, mixed)
    optimizer = make_optimizer(model, config, device, sync_every)
    scheduler = build_scheduler(optimizer, total_steps, config)
    prepared_model, prepared_opt = accelerator.prepare(model, optimizer)
    if config.compile:
        prepared_model = compile_model(prepared_model)

    setup = TrainingSetup(
        config=config, accelerator=accelerator, model=prepared_model, unwrapped=model,
        tokenizer=loaded.tokenizer, data=data, optimizer=prepared_opt, scheduler=scheduler,
        total_steps=total_steps, warmup_steps=warmup, global_batch=global_batch,
        sync_every=sync_every, initial_adapter=initial,
    )
    setup.resolved = resolved_facts(setup, mixed)
    setup.resolved.update(fused_lora_layers=fused_layers, sync_every=sync_every,
                          threads=loaded.threads,
                          optimizer_fused=bool(getattr(optimizer, "defaults", {}).get("fused")))
    setup.model_text = f"{loaded.describe()} · {loaded.memory_text()}"
    return setup


def enable_gradient_checkpointing(model: Any) -> None:
    """Recompute activations in the backward pass (the base model's own implementation).

    Raises:
        TrainSetupError: The architecture does not support it.
    """
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise TrainSetupError(f"--gradient-checkpointing: {type(base).__name__} does not "
                              "support gradient checkpointing; drop the flag")
    kwargs = {"use_reentrant": False}
    enable = getattr(base, "activation_checkpointing_enable", None)  # transformers >= 5.2
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    base.config.use_cache = False  # a cache is useless (and warned about) while training


def check_sample_prompts(config: TrainConfig, loaded: LoadedModel, chat: bool) -> None:
    """Sample prompts must fit the context (and the chat template, for conversation data).

    Raises:
        TrainSetupError: Naming the prompt and ``--sample-max-new-tokens``.
    """
    params = SamplingParams(max_new_tokens=config.sample_max_new_tokens)
    for number, prompt in enumerate(config.sample_prompts, start=1):
        try:
            encode_prompt(loaded, GenerationRequest(prompt, params, chat=chat))
        except ContextLimitError as err:
            raise TrainSetupError(
                f"--sample-prompt {number}: its {err.prompt_tokens} tokens + "
                f"--sample-max-new-tokens {err.max_new_tokens} exceed the model's context of "
                f"{err.limit}; lower --sample-max-new-tokens or shorten the prompt") from None
        except PromptError as err:
            raise TrainSetupError(f"--sample-prompt {number}: {err}") from None


def check_run_shape(config: TrainConfig, data: Any, total_steps: int, warmup: int) -> None:
    """Settings that need the data or the run length: eval for early stopping and plateau,
    warmup shorter than the run."""
    has_eval = data.eval is not None and len(data.eval) > 0
    if config.patience > 0 and not has_eval:
        raise TrainSetupError(f"--patience {config.patience}: early stopping needs eval data, "
                              "but there is none; pass --eval-data FILE or --eval-split > 0, "
                              "or --patience 0")
    if config.schedule == "plateau" and (not has_eval or config.eval_every == 0):
        need = ("--eval-every N > 0" if has_eval else
                "eval data (--eval-data FILE or --eval-split > 0) and --eval-every N > 0")
        raise TrainSetupError("--schedule plateau: the lr is cut when the eval loss stops "
                              f"improving, so it needs {need}")
    if warmup >= total_steps:
        flag = f"--warmup-steps {config.warmup_steps}" if config.warmup_steps else (
            f"--warmup-ratio {config.warmup_ratio}")
        raise TrainSetupError(f"{flag}: warmup ({warmup} steps) is as long as the whole run "
                              f"({total_steps} steps); lower it or train longer "
                              "(--max-steps/--epochs)")


def resolve_sync_every(config: TrainConfig, device: torch.device, mixed: str) -> int:
    """Steps between metric reads: the knob, or 10 on CUDA and 1 elsewhere; 1 unless Adam/W
    (only their fused kernels can skip a non-finite step on the device) and 1 under fp16
    (the grad scaler reads its overflow flag every step anyway)."""
    if config.optimizer not in ("adam", "adamw") or mixed == "fp16":
        return 1
    if config.sync_every:
        return config.sync_every
    return SYNC_EVERY_CUDA if device.type == "cuda" else 1


def make_optimizer(model: Any, config: TrainConfig, device: torch.device,
                   sync_every: int) -> Any:
    """``build_optimizer`` with its platform errors as ``TrainSetupError``."""
    if config.optimizer == "adamw8bit":
        check_bitsandbytes("--optimizer adamw8bit", device)
    try:
        return build_optimizer(model, config, config.scaled_lr, device=device,
                               fused=uses_fused(config, device, sync_every))
    except OptimizerUnavailable as err:
        raise TrainSetupError(str(err)) from None


def compile_model(model: Any) -> Any:
    """``torch.compile`` for training; dropout keeps eager's random numbers (same results)."""
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    return torch.compile(model)


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
        "chat_template": data.chat,
        "gradient_checkpointing": setup.config.gradient_checkpointing,
        "eval_bytes": data.eval_bytes,
        "loss": "token-weighted mean over the step's loss tokens",
        "genlab_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "peft_version": peft.__version__,
    }
