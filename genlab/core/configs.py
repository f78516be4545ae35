"""Typed, frozen, validated configuration objects shared by every face of genlab.

Each config validates itself once in ``__post_init__`` and raises ``ConfigError`` naming the
field, the bad value and the valid range. Faces translate the field name into their own
vocabulary (``top_p`` -> ``--top-p`` for the CLI, ``base.top_p`` for a spec file) with
``ConfigError.field``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is out of range or of the wrong kind.

    Attributes:
        field: Name of the offending field (snake_case, as in the dataclass).
        value: The rejected value.
        expected: Human description of the valid range, e.g. ``"in (0, 1]"``.
    """

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}={value!r}: must be {expected}")


def _require(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(name, value, expected)


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class SamplingParams:
    """Per-row sampling settings. Each "off" value leaves the logits untouched.

    Transforms apply in this order (see ``genlab.core.generation.sampling``): repetition penalty on the
    raw logits, then temperature, then top-k, then top-p, then min-p; the row then draws
    from the softmax of what is left (or takes the argmax when temperature is 0).
    """

    temperature: float = 1.0
    """Divides the logits. 0 means greedy (argmax); must be >= 0."""
    top_k: int = 0
    """Keep only the k most likely tokens. 0 = off; must be >= 0."""
    top_p: float = 1.0
    """Keep the smallest set of tokens whose probability sums to >= p. 1 = off; in (0, 1]."""
    min_p: float = 0.0
    """Drop tokens less likely than min_p x the top token's probability. 0 = off; in [0, 1]."""
    repetition_penalty: float = 1.0
    """CTRL-style penalty on tokens already in prompt or output. 1 = off; must be > 0."""
    max_new_tokens: int = 64
    """Most new tokens to generate; must be >= 1."""
    stop: tuple[str, ...] = ()
    """Strings that end the row when generated; the stop string itself is not returned."""
    ignore_eos: bool = False
    """Keep generating past the end-of-sequence token (useful for length studies)."""

    def __post_init__(self) -> None:
        _require(_finite(self.temperature) and self.temperature >= 0,
                 "temperature", self.temperature, ">= 0 (0 = greedy)")
        _require(isinstance(self.top_k, int) and not isinstance(self.top_k, bool)
                 and self.top_k >= 0, "top_k", self.top_k, "an integer >= 0 (0 = off)")
        _require(_finite(self.top_p) and 0 < self.top_p <= 1,
                 "top_p", self.top_p, "in (0, 1] (1 = off)")
        _require(_finite(self.min_p) and 0 <= self.min_p <= 1,
                 "min_p", self.min_p, "in [0, 1] (0 = off)")
        _require(_finite(self.repetition_penalty) and self.repetition_penalty > 0,
                 "repetition_penalty", self.repetition_penalty, "> 0 (1 = off)")
        _require(isinstance(self.max_new_tokens, int) and not isinstance(self.max_new_tokens, bool)
                 and self.max_new_tokens >= 1, "max_new_tokens", self.max_new_tokens,
                 "an integer >= 1")
        _require(all(isinstance(s, str) and s for s in self.stop),
                 "stop", self.stop, "non-empty strings")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        """True when the row takes the argmax instead of sampling."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by name, JSON-able (``stop`` as a list)."""
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "ignore_eos": self.ignore_eos,
        }


@dataclass(frozen=True)
class GenerationRequest:
    """One row of a batched generation: a prompt, its settings, its seed and its adapter.

    A row's output depends only on these fields, never on the other rows of the batch.
    """

    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0
    """Seeds the row's own ``torch.Generator``; must be >= 0."""
    adapter: str | None = None
    """Name of a loaded LoRA adapter for this row, or None for the base model."""

    def __post_init__(self) -> None:
        _require(isinstance(self.prompt, str), "prompt", self.prompt, "a string")
        _require(isinstance(self.seed, int) and 0 <= self.seed < 2**63,
                 "seed", self.seed, "an integer in [0, 2**63)")


# ----------------------------------------------------------------------------- training

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine", "step")
LR_SCALINGS = ("none", "linear")
TRAIN_METHODS = ("lora", "full")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; stored resolved as the run's ``config.json``.

    Field names are the CLI flags with underscores (``warmup_ratio`` is ``--warmup-ratio``) and
    the keys of sweep specs. ``method="lora"`` trains a PEFT LoRA adapter on a frozen base;
    ``method="full"`` trains every weight (used by from-scratch pretraining).
    """

    # --- model and data
    model: str = ""
    """Base model: Hugging Face hub id or local directory."""
    data: str = ""
    """Training data: .txt/.jsonl/.json/.csv/.parquet file, a directory of them, or a hub name."""
    eval_data: str | None = None
    """Held-out data in the same formats; when None, ``eval_split`` of ``data`` is held out."""
    eval_split: float = 0.1
    """Fraction of documents held out for evaluation when ``eval_data`` is None; in [0, 0.5]."""
    text_field: str = "text"
    """Column holding the text in structured files."""
    prompt_field: str | None = None
    """With ``completion_field``: train on prompt + completion, loss on the completion only."""
    completion_field: str | None = None
    """See ``prompt_field``."""
    doc_separator: str | None = None
    """Separator between documents in .txt files; None = blank lines."""
    seq_len: int = 256
    """Tokens per packed training sequence; >= 8."""
    # --- LoRA
    method: str = "lora"
    """``lora`` (adapter on a frozen base) or ``full`` (all weights)."""
    rank: int = 8
    """LoRA rank r; >= 1."""
    alpha: float = 16.0
    """LoRA alpha; the update is scaled by alpha / r (alpha / sqrt(r) with ``rslora``)."""
    dropout: float = 0.05
    """Dropout on the LoRA input; in [0, 1)."""
    target_modules: tuple[str, ...] | None = None
    """Module names to adapt; None = every attention and MLP projection of the architecture."""
    rslora: bool = False
    """Rank-stabilised LoRA scaling (alpha / sqrt(r))."""
    # --- optimisation
    lr: float = 2e-4
    """Peak learning rate; > 0."""
    optimizer: str = "adamw"
    """``adamw``, ``adam`` or ``sgd`` (with ``momentum``)."""
    momentum: float = 0.0
    """SGD momentum; in [0, 1)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam/AdamW betas, each in [0, 1)."""
    weight_decay: float = 0.0
    """Decoupled (AdamW) or L2 (Adam, SGD) weight decay; >= 0. Not applied to biases/norms."""
    schedule: str = "cosine"
    """Learning-rate schedule after warmup: constant, linear, cosine or step."""
    step_size: int = 100
    """``step`` schedule: multiply the lr by ``gamma`` every ``step_size`` steps; >= 1."""
    gamma: float = 0.5
    """``step`` schedule decay factor; in (0, 1]."""
    warmup_steps: int = 0
    """Linear warmup steps from 0 to the peak lr; >= 0."""
    warmup_ratio: float = 0.0
    """Warmup as a fraction of the total steps (used when ``warmup_steps`` is 0); in [0, 1)."""
    min_lr_ratio: float = 0.0
    """Floor of linear/cosine decay as a fraction of the peak lr; in [0, 1]."""
    batch_size: int = 8
    """Sequences per micro-batch; >= 1."""
    grad_accum: int = 1
    """Micro-batches per optimizer step; >= 1. Effective batch = batch_size x grad_accum."""
    epochs: float = 1.0
    """Passes over the training data (ignored when ``max_steps`` is set); > 0."""
    max_steps: int | None = None
    """Optimizer steps to run; overrides ``epochs``; >= 1."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this; 0 = no clipping."""
    lr_scaling: str = "none"
    """``linear``: scale lr by effective batch / ``lr_reference_batch`` (linear scaling rule)."""
    lr_reference_batch: int = 8
    """Effective batch at which ``lr`` is the unscaled value, for ``lr_scaling=linear``."""
    seed: int = 0
    """Seeds data order, init and dropout."""
    # --- evaluation, early stopping, checkpoints
    eval_every: int = 50
    """Evaluate every N optimizer steps (and at the end); 0 = only at the end."""
    eval_max_batches: int = 0
    """Cap on eval batches per evaluation; 0 = the whole eval set."""
    patience: int = 0
    """Stop after this many evaluations without improvement by ``min_delta``; 0 = off."""
    min_delta: float = 0.0
    """Smallest eval-loss decrease that counts as an improvement; >= 0."""
    sample_prompts: tuple[str, ...] = ()
    """Prompts generated at each evaluation with the current weights."""
    sample_max_new_tokens: int = 48
    """New tokens per sample-prompt generation."""
    sample_temperature: float = 0.0
    """Temperature of sample-prompt generations (0 = greedy, comparable across evals)."""
    save_every: int = 0
    """Write a resumable checkpoint every N steps; 0 = at each evaluation."""
    # --- hardware
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda`` or ``mps``."""
    dtype: str = "auto"
    """Mixed precision: ``auto`` (bf16 autocast on CUDA where supported, fp16+scaler where not,
    fp32 on CPU), ``float32``, ``bfloat16`` or ``float16``."""
    name: str = ""
    """Run name used in the default run directory (runs/<timestamp>-<name>)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "sample_prompts", tuple(self.sample_prompts))
        if self.target_modules is not None:
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        _require(bool(self.model), "model", self.model, "a hub id or local model directory")
        _require(bool(self.data), "data", self.data, "a data file, directory or hub dataset name")
        _require(_finite(self.eval_split) and 0 <= self.eval_split <= 0.5,
                 "eval_split", self.eval_split, "in [0, 0.5]")
        _require((self.prompt_field is None) == (self.completion_field is None),
                 "completion_field", self.completion_field,
                 "given together with prompt_field (both or neither)")
        _require(_is_int(self.seq_len) and self.seq_len >= 8, "seq_len", self.seq_len,
                 "an integer >= 8")
        _require(self.method in TRAIN_METHODS, "method", self.method, f"one of {TRAIN_METHODS}")
        _require(_is_int(self.rank) and self.rank >= 1, "rank", self.rank, "an integer >= 1")
        _require(_finite(self.alpha) and self.alpha > 0, "alpha", self.alpha, "> 0")
        _require(_finite(self.dropout) and 0 <= self.dropout < 1, "dropout", self.dropout,
                 "in [0, 1)")
        _require(_finite(self.lr) and self.lr > 0, "lr", self.lr, "> 0 (e.g. 2e-4 for LoRA)")
        _require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer,
                 f"one of {', '.join(OPTIMIZERS)}")
        _require(_finite(self.momentum) and 0 <= self.momentum < 1, "momentum", self.momentum,
                 "in [0, 1)")
        _require(len(self.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in self.betas),
                 "betas", self.betas, "two numbers in [0, 1), e.g. 0.9,0.999")
        _require(_finite(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
                 self.weight_decay, ">= 0")
        _require(self.schedule in SCHEDULES, "schedule", self.schedule,
                 f"one of {', '.join(SCHEDULES)}")
        _require(_is_int(self.step_size) and self.step_size >= 1, "step_size", self.step_size,
                 "an integer >= 1")
        _require(_finite(self.gamma) and 0 < self.gamma <= 1, "gamma", self.gamma, "in (0, 1]")
        _require(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps",
                 self.warmup_steps, "an integer >= 0")
        _require(_finite(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, "warmup_ratio",
                 self.warmup_ratio, "in [0, 1)")
        _require(_finite(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1, "min_lr_ratio",
                 self.min_lr_ratio, "in [0, 1]")
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size",
                 self.batch_size, "an integer >= 1")
        _require(_is_int(self.grad_accum) and self.grad_accum >= 1, "grad_accum",
                 self.grad_accum, "an integer >= 1")
        _require(_finite(self.epochs) and self.epochs > 0, "epochs", self.epochs, "> 0")
        _require(self.max_steps is None or (_is_int(self.max_steps) and self.max_steps >= 1),
                 "max_steps", self.max_steps, "an integer >= 1")
        _require(_finite(self.max_grad_norm) and self.max_grad_norm >= 0, "max_grad_norm",
                 self.max_grad_norm, ">= 0 (0 = no clipping)")
        _require(self.lr_scaling in LR_SCALINGS, "lr_scaling", self.lr_scaling,
                 f"one of {', '.join(LR_SCALINGS)}")
        _require(_is_int(self.lr_reference_batch) and self.lr_reference_batch >= 1,
                 "lr_reference_batch", self.lr_reference_batch, "an integer >= 1")
        _require(_is_int(self.seed) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _require(_is_int(self.eval_every) and self.eval_every >= 0, "eval_every",
                 self.eval_every, "an integer >= 0 (0 = only at the end)")
        _require(_is_int(self.eval_max_batches) and self.eval_max_batches >= 0,
                 "eval_max_batches", self.eval_max_batches, "an integer >= 0 (0 = all)")
        _require(_is_int(self.patience) and self.patience >= 0, "patience", self.patience,
                 "an integer >= 0 (0 = off)")
        _require(_finite(self.min_delta) and self.min_delta >= 0, "min_delta", self.min_delta,
                 ">= 0")
        _require(_is_int(self.sample_max_new_tokens) and self.sample_max_new_tokens >= 1,
                 "sample_max_new_tokens", self.sample_max_new_tokens, "an integer >= 1")
        _require(_finite(self.sample_temperature) and self.sample_temperature >= 0,
                 "sample_temperature", self.sample_temperature, ">= 0")
        _require(_is_int(self.save_every) and self.save_every >= 0, "save_every",
                 self.save_every, "an integer >= 0")

    @property
    def effective_batch(self) -> int:
        """Sequences per optimizer step."""
        return self.batch_size * self.grad_accum

    @property
    def scaled_lr(self) -> float:
        """Peak lr after ``lr_scaling`` (the value the schedule actually uses)."""
        if self.lr_scaling == "linear":
            return self.lr * self.effective_batch / self.lr_reference_batch
        return self.lr

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (tuples as lists)."""
        from dataclasses import asdict

        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from ``to_dict`` output; unknown keys raise ConfigError."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(key, data[key], f"a known field ({', '.join(sorted(known))})")
        return cls(**data)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
