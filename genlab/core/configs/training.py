"""The training run's config: every knob of ``genlab train``, its range, help and TUI hint.

``TrainConfig`` is stored resolved as each run's ``config.json``. Each field is a knob (see
``configs.knobs``): the CLI flags of ``genlab train`` (and the training flags of ``genlab
pretrain``), the TUI Train form and the keys of sweep specs are generated from these fields,
so adding a training knob is one edit here plus its tests.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from genlab.core.configs.knobs import ConfigError, knob, validate_knobs
from genlab.core.configs.runtime import TRAIN_QUANTIZE

OPTIMIZERS = ("adamw", "adam", "sgd", "adafactor", "rmsprop", "adagrad", "lion", "adamw8bit")
SCHEDULES = ("constant", "linear", "cosine", "step", "wsd", "cosine_restarts", "polynomial",
             "inverse_sqrt", "plateau")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")
LR_SCALINGS = ("none", "linear")
TRAIN_METHODS = ("lora", "full")
DATA_FORMATS = ("auto", "text", "prompt-completion", "messages")
LORA_INITS = ("default", "gaussian", "pissa", "olora", "loftq")
QUANTIZE = TRAIN_QUANTIZE
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
    model: str = knob("", panel=DATA, metavar="ID|DIR|GGUF", tui=True,
                      intuition="base model: hub id, local directory or .gguf file (default: "
                                "the model the Sample screen loaded)")
    """Base model: Hugging Face hub id, local directory, or a .gguf file (or a directory
    holding one)."""
    gguf_file: str | None = knob(None, panel=DATA, metavar="NAME")
    """The .gguf file to load when ``model`` is a directory (or hub repo) holding several."""
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
    text_field: str = knob("text", panel=DATA, metavar="NAME", tui=True, label="text field",
                           intuition="the column holding the text in .jsonl/.json/.csv/"
                                     ".parquet data")
    """Column holding the text in .jsonl/.json/.csv/.parquet data."""
    prompt_field: str | None = knob(None, panel=DATA, metavar="NAME", tui=True,
                                    label="prompt field",
                                    intuition="with completion field: the column of prompts; "
                                              "the loss counts the completion only (e.g. "
                                              "prompt for demo/facts)")
    """With ``completion_field``: train on prompt + completion, loss on the completion only."""
    completion_field: str | None = knob(None, panel=DATA, metavar="NAME", tui=True,
                                        label="completion",
                                        intuition="with prompt field: the column of answers "
                                                  "the model learns (e.g. completion for "
                                                  "demo/facts)")
    """See ``prompt_field``."""
    data_format: str = knob(
        "auto", choices=DATA_FORMATS, panel=DATA, metavar="FORMAT", tui=True,
        label="data format",
        intuition="auto: conversations when rows have a messages list, prompt/completion "
                  "with a prompt field, else text; messages = loss on assistant turns only")
    """What a row is. auto: a conversation when rows have a ``messages_field`` list,
    prompt/completion with ``prompt_field``, else text; text; prompt-completion; messages
    (OpenAI-style conversations rendered through the model's chat template, loss on the
    assistant turns only)."""
    messages_field: str = knob("messages", panel=DATA, metavar="NAME")
    """Column holding each row's conversation (a list of {role, content}) in
    .jsonl/.json/.parquet data."""
    chat: bool = knob(False, panel=DATA, tui=True, label="chat template",
                      intuition="prompt/completion rows as a user turn and an assistant "
                                "reply, through the model's chat template")
    """Render prompt/completion rows through the model's chat template (the prompt as a user
    turn, the completion as the assistant's reply; loss on the reply). Conversations always
    are."""
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
    dora: bool = knob(False, panel=LORA, tui=True,
                      intuition="DoRA: learn each weight's magnitude apart from its direction; "
                                "often better at low rank, ~2x slower steps")
    """DoRA (weight-decomposed LoRA): a learned magnitude per output row on top of the LoRA
    direction update (PEFT's use_dora)."""
    init: str = knob("default", choices=LORA_INITS, panel=LORA, metavar="NAME", tui=True,
                     label="lora init",
                     intuition="how A and B start: default (B = 0), gaussian, pissa/olora "
                               "(from the weights' SVD/QR), loftq (needs --quantize 4bit)")
    """LoRA initialisation (PEFT's init_lora_weights): default (Kaiming A, zero B), gaussian,
    pissa (principal singular vectors), olora (QR), loftq (with ``quantize`` 4bit only). pissa
    and olora start from the weights' own directions; the saved adapter is converted to a plain
    LoRA of rank 2r that applies to the original base model."""
    rank_pattern: tuple[str, ...] | None = knob(None, panel=LORA, metavar="M=R[,M=R...]")
    """Per-module ranks overriding ``rank``, e.g. q_proj=16,v_proj=4 (a name matches a module
    whose full name ends with it; PEFT's rank_pattern)."""
    alpha_pattern: tuple[str, ...] | None = knob(None, panel=LORA, metavar="M=A[,M=A...]")
    """Per-module alphas overriding ``alpha``, e.g. q_proj=32 (PEFT's alpha_pattern)."""
    loraplus_ratio: float = knob(1.0, low=0, low_open=True, note="1 = off; LoRA+ suggests 16",
                                 panel=LORA, metavar="R", tui=True, label="lora+ ratio",
                                 intuition="LoRA+: B learns this many times faster than A; "
                                           "1 = plain LoRA, 16 is the paper's choice")
    """LoRA+: learning rate of the B matrices (and DoRA magnitudes) as a multiple of ``lr``,
    as PEFT's create_loraplus_optimizer groups them."""
    quantize: str = knob("none", choices=QUANTIZE, panel=LORA, metavar="none|4bit|8bit")
    """QLoRA: load the frozen base in 4-bit NF4 (double-quantised, bf16 compute) or 8-bit
    through bitsandbytes. CUDA only; install with pip install 'genlab[cuda]'."""
    # --- optimisation
    lr: float = knob(2e-4, low=0, low_open=True, note="e.g. 2e-4 for LoRA", panel=OPTIM,
                     metavar="LR", tui=True,
                     intuition="peak learning rate: too low crawls, too high diverges "
                               "(LoRA: ~1e-4 to 1e-3)")
    """Peak learning rate (1e-5 is typical for full fine-tuning)."""
    optimizer: str = knob("adamw", choices=OPTIMIZERS, panel=OPTIM, metavar="NAME", tui=True,
                          intuition="adamw (decoupled weight decay), adam, sgd (with "
                                    "momentum), adafactor, rmsprop, adagrad, lion, adamw8bit")
    """adamw, adam, sgd (with ``momentum``), adafactor (factored second moments, torch's),
    rmsprop (with ``momentum``), adagrad, lion (sign updates, lion-pytorch; use a 3-10x lower
    lr than AdamW) or adamw8bit (bitsandbytes, CUDA only)."""
    momentum: float = knob(0.0, low=0, high=1, high_open=True, panel=OPTIM, metavar="M",
                           tui=True, intuition="SGD/RMSprop momentum: averages past "
                                               "gradients; used by sgd and rmsprop only")
    """SGD and RMSprop momentum."""
    betas: tuple[float, float] = knob((0.9, 0.999), panel=OPTIM, metavar="B1,B2")
    """Adam/AdamW/Lion betas B1,B2, each in [0, 1) (Lion's paper uses 0.9,0.99)."""
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
                         intuition="lr after warmup: constant, linear or cosine decay, step, "
                                   "wsd (stable then decay), cosine restarts, polynomial, "
                                   "inverse sqrt, or plateau (cut when eval stalls)")
    """Learning-rate schedule after warmup: constant, linear, cosine, step, wsd
    (warmup-stable-decay), cosine_restarts, polynomial, inverse_sqrt or plateau (multiply by
    ``gamma`` when the eval loss stops improving; needs evaluations)."""
    step_size: int = knob(100, low=1, panel=SCHEDULE, metavar="N")
    """step schedule: multiply the lr by ``gamma`` every N steps."""
    gamma: float = knob(0.5, low=0, low_open=True, high=1, panel=SCHEDULE, metavar="G")
    """step and plateau schedules: the factor the lr is multiplied by."""
    decay_ratio: float = knob(0.1, low=0, low_open=True, high=1, panel=SCHEDULE, metavar="F")
    """wsd schedule: share of the run (at its end) spent decaying from the peak lr."""
    decay_shape: str = knob("linear", choices=DECAY_SHAPES, panel=SCHEDULE,
                            metavar="linear|cosine|1-sqrt")
    """wsd schedule: shape of the final decay."""
    num_cycles: int = knob(2, low=1, panel=SCHEDULE, metavar="N")
    """cosine_restarts schedule: cosine cycles, each restarting at the peak lr."""
    power: float = knob(1.0, low=0, low_open=True, panel=SCHEDULE, metavar="P")
    """polynomial schedule: exponent of the decay (1 = linear)."""
    timescale: int | None = knob(None, low=1, panel=SCHEDULE, metavar="N")
    """inverse_sqrt schedule: lr = peak / sqrt((step + N - warmup) / N); not given = the
    warmup length (10000 without warmup), as in transformers."""
    plateau_patience: int = knob(2, low=0, panel=SCHEDULE, metavar="N")
    """plateau schedule: evaluations without an eval-loss improvement (by more than
    ``min_delta``) before the lr is multiplied by ``gamma``."""
    warmup_steps: int = knob(0, low=0, panel=SCHEDULE, metavar="N", tui=True, section=OPTIM,
                             label="warmup",
                             intuition="steps of linear warmup from 0 to the peak lr; steadies "
                                       "the first updates")
    """Linear warmup from 0 to the peak lr, shorter than the run."""
    warmup_ratio: float = knob(0.0, low=0, high=1, high_open=True, panel=SCHEDULE, metavar="F")
    """Warmup as a fraction of the run, used when ``warmup_steps`` is 0."""
    min_lr_ratio: float = knob(0.0, low=0, high=1, panel=SCHEDULE, metavar="F")
    """Floor of the decaying schedules (linear, cosine, wsd, cosine_restarts, polynomial,
    plateau) as a fraction of the peak lr."""
    batch_size: int = knob(8, low=1, panel=BATCH, metavar="B", tui=True,
                           intuition="sequences per micro-batch; bigger = smoother gradients, "
                                     "more memory")
    """Sequences per micro-batch."""
    gradient_checkpointing: bool = knob(False, panel=BATCH)
    """Recompute activations in the backward pass instead of storing them: much less memory
    for long sequences and big models, about a third more compute per step."""
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
    """Evaluate every N optimizer steps and at the end (and before the first step, with
    ``eval_at_start``)."""
    eval_at_start: bool = knob(True, panel=EVAL)
    """With ``eval_every`` > 0: evaluate (and sample) before the first step too, so every curve
    starts from the base model's loss."""
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
                                           intuition="prompts generated at each eval, one per "
                                                     "line (\\n inside one is a newline); "
                                                     "watch them change as it learns")
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
    threads: int | None = knob(None, low=1, panel=RUN, metavar="N")
    """CPU threads torch uses for the step's matrix work (intra-op, and inter-op once per
    process). Not set: the machine's physical cores. Where other jobs share the cores (a busy
    2-core VM), 1 is often several times faster: every step waits for its slowest thread."""
    fused_lora: bool = knob(True, panel=RUN)
    """Train plain LoRA layers with genlab's fused forward/backward (the same dropout masks
    and results as PEFT's layers, fewer passes over the activations); off = PEFT's own
    layers."""
    compile: bool = knob(False, panel=RUN)
    """torch.compile the model for training (inductor; dropout keeps eager's random numbers).
    The first step compiles and takes much longer; needs a C++ compiler on CPU."""
    sync_every: int = knob(0, low=0, note="0 = auto: 1 on CPU, 10 on CUDA", panel=RUN,
                           metavar="N")
    """Read step metrics back from the device every N steps (adam/adamw: a non-finite step
    is skipped on the device and reported at the next read); fewer host syncs keep a GPU
    busy. Other optimizers read every step."""
    name: str = knob("", panel=RUN, metavar="NAME", tui=True, section=EVAL, label="run name",
                     intuition="names the run directory runs/<timestamp>-<name>")
    """Run name used in the default run directory runs/<timestamp>-<name>."""

    def __post_init__(self) -> None:
        for name in ("betas", "sample_prompts", "target_modules", "rank_pattern",
                     "alpha_pattern"):
            value = getattr(self, name)
            if isinstance(value, dict):  # a spec may give a pattern as a mapping
                value = tuple(f"{k}={v}" for k, v in value.items())
            if isinstance(value, list):
                value = tuple(value)
            object.__setattr__(self, name, value)
        if not self.model:
            raise ConfigError("model", self.model, "a hub id or local model directory")
        if not self.data:
            raise ConfigError("data", self.data, "a data file, directory or hub dataset name")
        if self.quantize == "int8":  # the inference choice: say what training takes instead
            raise ConfigError("quantize", self.quantize, "none, 4bit or 8bit for training "
                              "(int8 quantizes for inference only: genlab sample, tui and "
                              "compare; QLoRA trains on a 4bit or 8bit base on CUDA)")
        validate_knobs(self)
        if (self.prompt_field is None) != (self.completion_field is None):
            given, other = (("prompt_field", "completion_field") if self.completion_field is None
                            else ("completion_field", "prompt_field"))
            raise ConfigError(given, getattr(self, given),
                              f"given together with {other} (both or neither)", related=(other,))
        self._check_data_format()
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
        self.rank_by_module()
        self.alpha_by_module()

    def rank_by_module(self) -> dict[str, int]:
        """``rank_pattern`` as {module name: rank} (raises ``ConfigError`` when malformed)."""
        return {k: int(v) for k, v in _pattern("rank_pattern", self.rank_pattern, True).items()}

    def alpha_by_module(self) -> dict[str, float]:
        """``alpha_pattern`` as {module name: alpha} (raises ``ConfigError`` when malformed)."""
        return _pattern("alpha_pattern", self.alpha_pattern, False)

    def _check_data_format(self) -> None:
        pair = self.prompt_field is not None
        if self.data_format == "prompt-completion" and not pair:
            raise ConfigError("data_format", self.data_format,
                              "used with --prompt-field and --completion-field")
        if self.data_format in ("text", "messages") and pair:
            raise ConfigError("data_format", self.data_format,
                              "auto or prompt-completion with --prompt-field")
        if self.chat and self.data_format == "text":
            raise ConfigError("chat", self.chat, "off for text data (--chat renders "
                                                 "prompt/completion rows)")

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


def _pattern(name: str, items: tuple[str, ...] | None, integer: bool) -> dict[str, float]:
    """Parse ``("q_proj=16", ...)`` into {"q_proj": 16.0}; each value > 0 (an integer rank)."""
    example = "q_proj=16,v_proj=4" if integer else "q_proj=32,v_proj=8"
    out: dict[str, float] = {}
    for item in items or ():
        key, sep, raw = str(item).partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        ok = (sep and key.strip() and math.isfinite(value) and value > 0
              and (not integer or value.is_integer()))
        if not ok:
            what = "an integer rank >= 1" if integer else "an alpha > 0"
            raise ConfigError(name, items, f"MODULE=VALUE pairs with {what}, e.g. {example}")
        out[key.strip()] = value
    if items is not None and not out:
        raise ConfigError(name, items, f"MODULE=VALUE pairs, e.g. {example}")
    return out


def _unit(x: Any) -> bool:
    """A number in [0, 1)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1
