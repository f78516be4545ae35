"""The config of ``genlab pretrain``: the model shape, the tokenizer size and the time box.

``ModelShape`` and ``PretrainConfig`` declare their knobs like every config (``configs.knobs``):
``genlab pretrain``'s flags, sweep specs' ``model.*`` shape keys and their checks come from
these fields. The optimisation settings are ``TrainConfig`` fields, given in
``PretrainConfig.training`` over ``PRETRAIN_TRAINING``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genlab.core.configs.knobs import ConfigError, knob, validate_knobs
from genlab.core.configs.training import TrainConfig

EOS_TOKEN = "<|endoftext|>"
"""End of text in genlab's byte-level BPE tokenizers, and TinyStories' document separator."""
BOS_TOKEN = "<|bos|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (EOS_TOKEN, BOS_TOKEN, PAD_TOKEN)
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)
"""256 byte tokens plus the special tokens."""

DATA = "Corpus and evaluation"
SHAPE = "Tokenizer and model shape"
TIME = "Time box"

PRETRAIN_TRAINING: dict[str, Any] = {
    "lr": 2.5e-3, "betas": (0.9, 0.95), "weight_decay": 0.1, "schedule": "cosine",
    "warmup_steps": 100, "min_lr_ratio": 0.1, "batch_size": 32, "grad_accum": 1,
    "epochs": 5.0, "max_grad_norm": 1.0, "eval_every": 100, "eval_max_batches": 0,
    "save_every": 100, "device": "auto", "dtype": "auto", "name": "pretrain",
}
"""Training settings of ``iter_pretrain`` unless ``PretrainConfig.training`` overrides them:
AdamW with beta2 0.95 and decoupled decay 0.1, a short warmup and cosine decay to 10 %
(a recipe that works for 1-10M-parameter Llamas)."""
PRETRAIN_FIXED = ("model", "data", "eval_data", "method", "doc_separator", "seq_len")
"""``TrainConfig`` fields the pretraining pipeline sets itself."""


@dataclass(frozen=True)
class ModelShape:
    """Size knobs of a Llama model (each is a ``genlab pretrain`` flag of the same name).

    The defaults are the shipped TinyStories model: 1.44M parameters with a 2,048 vocabulary,
    sized for about two hours of a shared 2-core CPU (``benchmarks/size_trials.py``).
    """

    layers: int = knob(6, low=1, panel=SHAPE, metavar="N")
    """Transformer blocks."""
    hidden: int = knob(128, low=1, panel=SHAPE, metavar="D")
    """Hidden size; a multiple of ``heads`` with an even head size."""
    heads: int = knob(4, low=1, panel=SHAPE, metavar="H")
    """Attention heads."""
    kv_heads: int = knob(2, low=1, panel=SHAPE, metavar="K")
    """Key/value heads (grouped-query attention); a divisor of ``heads``."""
    mlp: int = knob(384, low=1, panel=SHAPE, metavar="M")
    """MLP (SwiGLU) inner size."""
    context: int = knob(256, low=8, panel=SHAPE, metavar="T")
    """Context length in tokens, also the training sequence length."""

    def __post_init__(self) -> None:
        validate_knobs(self)
        if self.hidden % self.heads:
            raise ConfigError("hidden", self.hidden, f"a multiple of heads={self.heads}")
        if (self.hidden // self.heads) % 2:
            raise ConfigError("hidden", self.hidden, "such that hidden / heads is even (RoPE)")
        if self.heads % self.kv_heads:
            raise ConfigError("kv_heads", self.kv_heads, f"a divisor of heads={self.heads}")


@dataclass(frozen=True)
class PretrainConfig:
    """A ``genlab pretrain`` run: corpus, tokenizer size, model shape, final evaluation.

    Optimisation settings are ``TrainConfig`` fields given in ``training`` (defaults:
    ``PRETRAIN_TRAINING``); the ``PRETRAIN_FIXED`` fields are set by the pipeline. The resolved
    config is stored in the output directory as ``pretrain_config.json``
    (``to_dict``/``from_dict``), so a run resumes from it alone.
    """

    data: str = knob("", panel=DATA, metavar="FILE|DIR")
    """Training corpus: a .txt file or a directory of them, documents separated by
    ``doc_separator``."""
    eval_data: str | None = knob(None, panel=DATA, metavar="FILE")
    """Held-out .txt file in the same format: its first ``eval_stories`` documents are
    evaluated during training and scored whole (bits per byte) at the end. Not given: the
    ``eval_split`` of ``data`` is held out instead."""
    eval_split: float = knob(0.1, low=0, high=0.5, panel=DATA, metavar="F")
    """Without ``eval_data``: the fraction of ``data``'s documents held out from training (at
    most ``eval_stories``, at least 1, picked by a shuffle seeded with ``seed``), evaluated
    during training and scored whole at the end. 0 = no evaluation."""
    vocab_size: int = knob(2048, low=MIN_VOCAB, note="256 byte tokens + 3 special tokens",
                           panel=SHAPE, metavar="V")
    """Byte-level BPE vocabulary size, byte and special tokens included."""
    shape: ModelShape = field(default_factory=ModelShape)
    """Model size knobs; ``context`` is also the training sequence length."""
    tie_embeddings: bool = knob(True, panel=SHAPE)
    """Share the input embedding and the output projection."""
    eval_stories: int = knob(300, low=1, panel=DATA, metavar="N")
    """Held-out documents scored whole at the end (and evaluated packed during training): the
    first N of ``eval_data``, or at most N held out of ``data`` by ``eval_split``."""
    time_limit_s: float | None = knob(None, low=0, low_open=True, panel=TIME, cli=False)
    """Time-box the training to this many seconds with a warmup-stable-decay schedule; not given
    = one run of ``training``'s schedule and length."""
    decay_fraction: float = knob(0.2, low=0, low_open=True, high=1, high_open=True, panel=TIME,
                                 metavar="F")
    """With a time limit: share of the time spent decaying the lr to 0."""
    training: dict[str, Any] = field(default_factory=dict)
    """``TrainConfig`` fields overriding ``PRETRAIN_TRAINING`` (lr, batch_size, max_steps...)."""
    doc_separator: str | None = knob(EOS_TOKEN, panel=DATA, cli=False)
    """Separator between documents in the .txt files of ``data`` and ``eval_data``; None =
    blank lines."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("data", self.data, "a .txt corpus file or a directory of them")
        validate_knobs(self)
        if self.doc_separator is not None and not self.doc_separator.strip():
            raise ConfigError("doc_separator", self.doc_separator,
                              "a visible string (or None for blank lines)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (``shape`` nested, tuples as lists)."""
        data = asdict(self)
        data["training"] = {k: list(v) if isinstance(v, tuple) else v
                            for k, v in self.training.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        """Rebuild from ``to_dict`` output (as stored in ``pretrain_config.json``)."""
        data = dict(data)
        data["shape"] = ModelShape(**data.get("shape", {}))
        return cls(**data)

    def training_settings(self) -> dict[str, Any]:
        """The resolved ``TrainConfig`` fields of the run (defaults plus ``training``)."""
        return {**PRETRAIN_TRAINING, **self.training}

    def train_config(self, model_dir: str | Path, eval_file: str | Path | None,
                     held_out_split: float = 0.0) -> TrainConfig:
        """The ``TrainConfig`` that trains ``model_dir`` on ``data`` with every weight.

        ``eval_file``: the held-out stories of ``eval_data``; without it, ``held_out_split``
        is the ``TrainConfig.eval_split`` that holds out exactly the documents
        ``pretrain.setup.held_out_documents`` picked (0 = no evaluation).
        """
        clash = sorted(set(PRETRAIN_FIXED) & set(self.training))
        if clash:
            raise ConfigError(clash[0], self.training[clash[0]],
                              "set by genlab pretrain itself (use --context for seq_len)")
        settings = self.training_settings()
        if eval_file is None:
            settings["eval_split"] = held_out_split
        return TrainConfig(model=str(model_dir), data=str(self.data),
                           eval_data=str(eval_file) if eval_file else None, method="full",
                           doc_separator=self.doc_separator, seq_len=self.shape.context,
                           **settings)
