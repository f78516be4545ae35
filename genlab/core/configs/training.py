"""The training run's config: every knob of ``genlab train``, its range, help and TUI hint.

``TrainConfig`` is stored resolved as each run's ``config.json``. Each field is a knob (see
``configs.knobs``): the CLI flags of ``genlab train`` (and the training flags of ``genlab
pretrain``), the TUI Train form and the keys of sweep specs are generated from these fields,
so adding a training knob is one edit here plus its tests.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from genlab.core.configs.knobs import ConfigError, knob, validate_knobs

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine", "step")
LR_SCALINGS = ("none", "linear")
TRAIN_METHODS = ("lora", "full")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE_EXPECTED = "auto, cpu, cuda, cuda:N or mps"
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16")


def valid_device(name: Any) -> bool:
    """True for a device genlab runs on: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    return isinstance(name, str) and DEVICE_PATTERN.match(name) is not None

DATA = "Model and data"
LORA = "LoRA"
OPTIM = "Optimizer"
SCHEDULE = "Schedule"
BATCH = "Batches"
EVAL = "Evaluation"
RUN = "Hardware and run"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; stored resolved as the run's ``config.json``.

    Field names are the CLI flags with underscores (``warmup_ratio`` is ``--warmup-ratio``) and
    the keys of sweep specs. ``method="lora"`` trains a PEFT LoRA adapter on a frozen base;
    ``method="full"`` trains every weight (used by from-scratch pretraining).
    """

    # --- model and data
    model: str = knob("", panel=DATA, metavar="ID|DIR", tui=True,
                      intuition="base model: hub id or local directory (default: the model "
                                "the Sample screen loaded)")
    """Base model: Hugging Face hub id or local directory."""
    data: str = knob("", panel=DATA, metavar="PATH", tui=True,
                     intuition="training data: .txt/.jsonl/.json/.csv/.parquet file, or a "
                               "directory of them")
    """Training data: .txt, .jsonl, .json, .csv or .parquet file, a directory of them, or a hub
    dataset name."""
    eval_data: str | None = knob(None, panel=DATA, metavar="PATH", tui=True, label="eval data",
                                 intuition="held-out data in the same formats; empty = hold "
                                           "out the eval split of the training data")
    """Held-out data in the same formats; when not given, ``eval_split`` of ``data`` is held
    out."""
    eval_split: float = knob(0.1, low=0, high=0.5, panel=DATA, metavar="F", tui=True,
                             intuition="fraction of documents held out for evaluation when no "
                                       "eval data is given")
    """Fraction of documents held out for evaluation when ``eval_data`` is not given."""
    text_field: str = knob("text", panel=DATA, metavar="NAME")
    """Column holding the text in .jsonl/.json/.csv/.parquet data."""
    prompt_field: str | None = knob(None, panel=DATA, metavar="NAME")
    """With ``completion_field``: train on prompt + completion, loss on the completion only."""
    completion_field: str | None = knob(None, panel=DATA, metavar="NAME")
    """See ``prompt_field``."""
    doc_separator: str | None = knob(None, panel=DATA, metavar="STR", tui=True, label="doc sep",
                                     intuition="text between documents in .txt data, e.g. "
                                               "<|endoftext|> for TinyStories; empty = blank "
                                               "lines")
    """Separator between documents in .txt files (\\n means a newline); not given = blank
    lines."""
    seq_len: int = knob(256, low=8, panel=DATA, metavar="N", tui=True,
                        intuition="tokens per packed training sequence; longer = more context "
                                  "per step, more memory")
    """Tokens per packed training sequence."""
    # --- LoRA
    method: str = knob("lora", choices=TRAIN_METHODS, panel=LORA, metavar="lora|full")
    """lora: train an adapter on the frozen base; full: train every weight (as for
    pretraining)."""
    rank: int = knob(8, low=1, panel=LORA, metavar="R", tui=True,
                     intuition="size of the low-rank update; higher = more capacity and more "
                               "parameters")
    """LoRA rank r."""
    alpha: float = knob(16.0, low=0, low_open=True, panel=LORA, metavar="A", tui=True,
                        intuition="the update is scaled by alpha / rank (like a learning-rate "
                                  "multiplier)")
    """LoRA alpha; the update is scaled by alpha/r (alpha/sqrt(r) with ``rslora``)."""
    dropout: float = knob(0.05, low=0, high=1, high_open=True, panel=LORA, metavar="P",
                          tui=True, intuition="dropout on the LoRA input; regularises small "
                                              "datasets")
    """Dropout on the LoRA input."""
    target_modules: tuple[str, ...] | None = knob(None, panel=LORA, metavar="M[,M...]")
    """Comma list of module names to adapt, e.g. q_proj,v_proj; not given = every attention
    and MLP projection of the architecture."""
    rslora: bool = knob(False, panel=LORA)
    """Rank-stabilised LoRA scaling alpha/sqrt(r)."""
    # --- optimisation
    lr: float = knob(2e-4, low=0, low_open=True, note="e.g. 2e-4 for LoRA", panel=OPTIM,
                     metavar="LR", tui=True,
                     intuition="peak learning rate: too low crawls, too high diverges "
                               "(LoRA: ~1e-4 to 1e-3)")
    """Peak learning rate (1e-5 is typical for full fine-tuning)."""
    optimizer: str = knob("adamw", choices=OPTIMIZERS, panel=OPTIM, metavar="NAME", tui=True,
                          intuition="adamw (decoupled weight decay), adam, or sgd (with "
                                    "momentum)")
    """adamw, adam or sgd (with ``momentum``)."""
    momentum: float = knob(0.0, low=0, high=1, high_open=True, panel=OPTIM, metavar="M",
                           tui=True, intuition="SGD momentum: averages past gradients; used "
                                               "by sgd only")
    """SGD momentum."""
    betas: tuple[float, float] = knob((0.9, 0.999), panel=OPTIM, metavar="B1,B2")
    """Adam/AdamW betas B1,B2, each in [0, 1)."""
    weight_decay: float = knob(0.0, low=0, panel=OPTIM, metavar="WD", tui=True,
                               label="weight decay",
                               intuition="pulls weights toward 0 each step; a mild "
                                         "regulariser")
    """Decoupled (adamw) or L2 (adam, sgd) weight decay; not applied to biases, norms and
    embeddings."""
    max_grad_norm: float = knob(1.0, low=0, note="0 = no clipping", panel=OPTIM, metavar="N",
                                tui=True, label="clip norm",
                                intuition="clip the gradient norm to this; tames spikes; "
                                          "0 = no clipping")
    """Clip the global gradient norm to this."""
    lr_scaling: str = knob("none", choices=LR_SCALINGS, panel=OPTIM, metavar="none|linear")
    """none, or linear: scale ``lr`` by effective batch / ``lr_reference_batch`` (the linear
    scaling rule)."""
    lr_reference_batch: int = knob(8, low=1, panel=OPTIM, metavar="B")
    """Effective batch at which ``lr`` is the unscaled value, for ``lr_scaling`` linear."""
    schedule: str = knob("cosine", choices=SCHEDULES, panel=SCHEDULE, metavar="NAME",
                         tui=True, section=OPTIM,
                         intuition="lr after warmup: constant, linear or cosine decay, or "
                                   "step (multiply by gamma every step size)")
    """Learning-rate schedule after warmup: constant, linear, cosine or step."""
    step_size: int = knob(100, low=1, panel=SCHEDULE, metavar="N")
    """step schedule: multiply the lr by ``gamma`` every N steps."""
    gamma: float = knob(0.5, low=0, low_open=True, high=1, panel=SCHEDULE, metavar="G")
    """step schedule decay factor."""
    warmup_steps: int = knob(0, low=0, panel=SCHEDULE, metavar="N", tui=True, section=OPTIM,
                             label="warmup",
                             intuition="steps of linear warmup from 0 to the peak lr; steadies "
                                       "the first updates")
    """Linear warmup from 0 to the peak lr, shorter than the run."""
    warmup_ratio: float = knob(0.0, low=0, high=1, high_open=True, panel=SCHEDULE, metavar="F")
    """Warmup as a fraction of the run, used when ``warmup_steps`` is 0."""
    min_lr_ratio: float = knob(0.0, low=0, high=1, panel=SCHEDULE, metavar="F")
    """Floor of linear/cosine decay as a fraction of the peak lr."""
    batch_size: int = knob(8, low=1, panel=BATCH, metavar="B", tui=True,
                           intuition="sequences per micro-batch; bigger = smoother gradients, "
                                     "more memory")
    """Sequences per micro-batch."""
    grad_accum: int = knob(1, low=1, panel=BATCH, metavar="N", tui=True,
                           intuition="micro-batches per optimizer step; effective batch = "
                                     "batch size x grad accum")
    """Micro-batches per optimizer step (effective batch = ``batch_size`` x N)."""
    epochs: float = knob(1.0, low=0, low_open=True, panel=BATCH, metavar="E", tui=True,
                         intuition="passes over the training data (ignored when max steps is "
                                   "set)")
    """Passes over the training data, ignored with ``max_steps``."""
    max_steps: int | None = knob(None, low=1, panel=BATCH, metavar="N", tui=True,
                                 intuition="optimizer steps to run; overrides epochs; empty = "
                                           "use epochs")
    """Optimizer steps to run; overrides ``epochs``."""
    seed: int = knob(0, low=0, panel=BATCH, metavar="S")
    """Seeds data order, init and dropout."""
    # --- evaluation, early stopping, checkpoints
    eval_every: int = knob(50, low=0, note="0 = only at the end", panel=EVAL, metavar="N",
                           tui=True, intuition="evaluate (and sample) every N steps; 0 = only "
                                               "at the end")
    """Evaluate every N optimizer steps and at the end."""
    eval_max_batches: int = knob(0, low=0, note="0 = all", panel=EVAL, metavar="N")
    """Cap on eval batches per evaluation."""
    patience: int = knob(0, low=0, note="0 = off", panel=EVAL, metavar="N", tui=True,
                         intuition="stop after this many evaluations without improvement; "
                                   "0 = off")
    """Stop after N evaluations without improvement by ``min_delta``."""
    min_delta: float = knob(0.0, low=0, panel=EVAL, metavar="D")
    """Smallest eval-loss decrease that counts as an improvement."""
    sample_prompts: tuple[str, ...] = knob((), panel=EVAL, cli=False, tui=True,
                                           label="prompts",
                                           intuition="prompts generated at each eval, "
                                                     "separated by |; watch them change as it "
                                                     "learns")
    """Prompts generated at each evaluation with the current weights."""
    sample_max_new_tokens: int = knob(48, low=1, panel=EVAL, metavar="N")
    """New tokens per sample-prompt generation."""
    sample_temperature: float = knob(0.0, low=0, note="0 = greedy", panel=EVAL, metavar="T")
    """Temperature of sample-prompt generations (greedy is comparable across evals)."""
    save_every: int = knob(0, low=0, note="0 = at each evaluation", panel=EVAL, metavar="N")
    """Write a resumable checkpoint every N steps."""
    # --- hardware
    device: str = knob("auto", panel=RUN, metavar="DEVICE")
    """auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    dtype: str = knob("auto", panel=RUN, metavar="DTYPE")
    """Mixed precision: auto (bf16 autocast on capable CUDA, fp16 with loss scaling on older
    CUDA, float32 on CPU), float32, bfloat16 or float16."""
    name: str = knob("", panel=RUN, metavar="NAME", tui=True, section=EVAL, label="run name",
                     intuition="names the run directory runs/<timestamp>-<name>")
    """Run name used in the default run directory runs/<timestamp>-<name>."""

    def __post_init__(self) -> None:
        for name in ("betas", "sample_prompts", "target_modules"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if not self.model:
            raise ConfigError("model", self.model, "a hub id or local model directory")
        if not self.data:
            raise ConfigError("data", self.data, "a data file, directory or hub dataset name")
        validate_knobs(self)
        if (self.prompt_field is None) != (self.completion_field is None):
            given, other = (("prompt_field", "completion_field") if self.completion_field is None
                            else ("completion_field", "prompt_field"))
            raise ConfigError(given, getattr(self, given),
                              f"given together with {other} (both or neither)", related=(other,))
        if not valid_device(self.device):
            raise ConfigError("device", self.device, DEVICE_EXPECTED)
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError("dtype", self.dtype, "auto, float32, bfloat16 or float16")
        if len(self.betas) != 2 or not all(_unit(b) for b in self.betas):
            raise ConfigError("betas", self.betas, "two numbers in [0, 1), e.g. 0.9,0.999")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.target_modules is not None and not (
                self.target_modules and all(isinstance(m, str) and m
                                            for m in self.target_modules)):
            raise ConfigError("target_modules", self.target_modules,
                              "module names, e.g. q_proj,v_proj")
        if not all(isinstance(p, str) for p in self.sample_prompts):
            raise ConfigError("sample_prompts", self.sample_prompts, "strings")

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
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from ``to_dict`` output; unknown keys raise ConfigError."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(key, data[key], f"a known field ({', '.join(sorted(known))})")
        return cls(**data)


def _unit(x: Any) -> bool:
    """A number in [0, 1)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1
