"""From-scratch pretraining of a tiny Llama model (``genlab pretrain``): the shipped default model.

Owns the pieces that turn a plain-text corpus into a standard Hugging Face model directory:
``build_model`` (a ``LlamaForCausalLM`` sized by the CLI's knobs), ``save_model_dir`` (the
``config.json`` + ``model.safetensors`` + ``generation_config.json`` + tokenizer layout that
plain ``transformers`` loads without genlab) and ``iter_pretrain`` (tokenizer -> initial model
dir -> ``train.iter_train(method="full")`` -> whole-story bits per byte), which yields the
training events plus one ``PretrainFinished``. Tokenizer training lives in ``tokenizer_train``,
the bits-per-byte metric in ``bpb`` and the time-boxed (``time_limit_s``) schedule in
``pretrain_timebox``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genlab.core.events import RunFinished, StopToken
from genlab.core.pretrain.tokenizer import EOS_TOKEN

GENERATION_DEFAULTS = {"do_sample": True, "temperature": 0.8, "top_p": 0.95,
                       "max_new_tokens": 256}
"""Sampling defaults written to ``generation_config.json``; genlab's own faces pass explicit
settings, these are for plain ``model.generate`` users (greedy decoding of tiny models loops)."""


@dataclass(frozen=True)
class ModelShape:
    """Size knobs of a Llama model (each is a ``genlab pretrain`` flag of the same name).

    The defaults are the shipped TinyStories model: 1.44M parameters with a 2,048 vocabulary,
    sized for about two hours of a shared 2-core CPU (``benchmarks/size_trials.py``).
    """

    layers: int = 6
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    mlp: int = 384
    context: int = 256

    def __post_init__(self) -> None:
        from genlab.core.configs import ConfigError

        for name in ("layers", "hidden", "heads", "kv_heads", "mlp", "context"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, value, "an integer >= 1")
        if self.hidden % self.heads:
            raise ConfigError("hidden", self.hidden, f"a multiple of heads={self.heads}")
        if (self.hidden // self.heads) % 2:
            raise ConfigError("hidden", self.hidden, "such that hidden / heads is even (RoPE)")
        if self.heads % self.kv_heads:
            raise ConfigError("kv_heads", self.kv_heads, f"a divisor of heads={self.heads}")


def count_parameters(shape: ModelShape, vocab_size: int, *, tie_embeddings: bool = True) -> int:
    """Parameters of the Llama model ``build_model`` makes (no biases, RMSNorm weights only)."""
    d, head_dim = shape.hidden, shape.hidden // shape.heads
    attention = d * head_dim * (2 * shape.heads + 2 * shape.kv_heads)  # q, o + k, v
    per_layer = attention + 3 * d * shape.mlp + 2 * d  # gate/up/down + two norms
    head = 0 if tie_embeddings else vocab_size * d
    return vocab_size * d + shape.layers * per_layer + d + head


def build_model(
    tokenizer: Any,
    *,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    mlp: int,
    context: int,
    tie_embeddings: bool = True,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` for ``tokenizer``'s vocabulary.

    HF's Llama init (normal(0, initializer_range) for linears and embeddings, ones for the
    norms) is used; 0.02 keeps the initial logits near uniform (loss ~ ln vocab) at these widths.

    Args:
        tokenizer: A tokenizer with eos, bos and pad tokens (see ``train_tokenizer``).
        layers, hidden, heads, kv_heads, mlp, context: See ``ModelShape``.
        tie_embeddings: Share the input embedding and output projection (saves vocab x hidden).
        seed: Seeds the initial weights.
        initializer_range: Std of the normal init.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = ModelShape(layers, hidden, heads, kv_heads, mlp, context)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.context,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        initializer_range=initializer_range,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model


def save_model_dir(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Write ``model`` and ``tokenizer`` as a standard HF directory loadable without genlab.

    Writes ``config.json``, ``model.safetensors``, ``generation_config.json`` (eos/bos/pad ids
    plus ``GENERATION_DEFAULTS``) and the tokenizer files.
    """
    from transformers import GenerationConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **GENERATION_DEFAULTS,
    )
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    make_tokenizer_config_portable(out, int(model.config.max_position_embeddings))
    return out


def make_tokenizer_config_portable(model_dir: str | Path, context: int) -> None:
    """Name ``PreTrainedTokenizerFast`` (loads in transformers 4 and 5; 5 writes its own
    ``TokenizersBackend``) and the model's context as ``model_max_length``."""
    path = Path(model_dir) / "tokenizer_config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    data["model_max_length"] = context
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_stories(path: str | Path, limit: int | None = None, *,
                 separator: str | None = EOS_TOKEN) -> list[str]:
    """Stories of a text file split on ``separator`` (None = blank lines), stripped, non-empty.

    The default reads TinyStories files (a line holding only ``<|endoftext|>`` after each story).
    """
    text = Path(path).read_text(encoding="utf-8").replace("\r\n", "\n")
    pieces = text.split(separator) if separator else re.split(r"\n[ \t]*\n", text)
    stories = [s.strip() for s in pieces]
    stories = [s for s in stories if s]
    return stories if limit is None else stories[:limit]


def join_stories(stories: list[str], separator: str | None = EOS_TOKEN) -> str:
    """The text ``read_stories`` splits back into ``stories`` (separator on its own line)."""
    if not separator:
        return "\n\n".join(stories) + "\n"
    return "".join(f"{s}\n{separator}\n" for s in stories)


# ----------------------------------------------------------------------------- the pipeline

TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2.5e-3, "betas": (0.9, 0.95), "weight_decay": 0.1, "schedule": "cosine",
    "warmup_steps": 100, "min_lr_ratio": 0.1, "batch_size": 32, "grad_accum": 1,
    "epochs": 5.0, "max_grad_norm": 1.0, "eval_every": 100, "eval_max_batches": 0,
    "save_every": 100, "device": "auto", "dtype": "auto", "name": "pretrain",
}
"""Training settings of ``iter_pretrain`` unless ``PretrainConfig.training`` overrides them:
AdamW with beta2 0.95 and decoupled decay 0.1, a short warmup and cosine decay to 10 %
(a recipe that works for 1-10M-parameter Llamas)."""

PRETRAIN_FILE = "pretrain.json"
CONFIG_FILE = "pretrain_config.json"
INIT_DIR = "init"
RUN_DIR = "run"
STABLE_DIR = "run-stable"
EVAL_FILE = "eval_stories.txt"


@dataclass(frozen=True)
class PretrainConfig:
    """A ``genlab pretrain`` run: corpus, tokenizer size, model shape, final evaluation.

    Optimisation settings are ``TrainConfig`` fields given in ``training`` (defaults:
    ``TRAIN_DEFAULTS``); ``model``, ``data``, ``eval_data``, ``method``, ``doc_separator`` and
    ``seq_len`` are set by the pipeline. The resolved config is stored in the output directory
    as ``pretrain_config.json`` (``to_dict``/``from_dict``), so a run resumes from it alone.
    """

    data: str
    """Training corpus: a .txt file (or a directory of them) of ``doc_separator``-separated
    documents (TinyStories: ``<|endoftext|>``)."""
    eval_data: str | None = None
    """Held-out corpus in the same format; its first ``eval_stories`` documents are the eval set
    during training and the whole-story bits-per-byte set at the end."""
    vocab_size: int = 2048
    """BPE vocabulary size, 3 special tokens and 256 byte tokens included."""
    shape: ModelShape = field(default_factory=ModelShape)
    """Model size knobs; ``context`` is also the training sequence length."""
    tie_embeddings: bool = True
    """Share the input embedding and the output projection."""
    eval_stories: int = 300
    """Held-out documents scored whole at the end (and evaluated packed during training)."""
    time_limit_s: float | None = None
    """Time-box the training to this many seconds with a warmup-stable-decay schedule (see
    ``iter_pretrain``); None = one run of ``training``'s schedule and length."""
    decay_fraction: float = 0.2
    """Time-boxed runs: share of ``time_limit_s`` spent decaying the lr to 0; in (0, 1)."""
    training: dict[str, Any] = field(default_factory=dict)
    """``TrainConfig`` fields overriding ``TRAIN_DEFAULTS`` (lr, batch_size, max_steps, ...)."""
    doc_separator: str | None = EOS_TOKEN
    """Separator between documents in the .txt files of ``data`` and ``eval_data``; None =
    blank lines."""

    def __post_init__(self) -> None:
        from genlab.core.configs import ConfigError

        if not isinstance(self.vocab_size, int) or self.vocab_size < 259:
            raise ConfigError("vocab_size", self.vocab_size, "an integer >= 259")
        if not isinstance(self.eval_stories, int) or self.eval_stories < 1:
            raise ConfigError("eval_stories", self.eval_stories, "an integer >= 1")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ConfigError("time_limit_s", self.time_limit_s, "> 0 seconds (or None)")
        if not 0 < self.decay_fraction < 1:
            raise ConfigError("decay_fraction", self.decay_fraction, "in (0, 1)")
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

    def train_config(self, model_dir: str | Path, eval_file: str | Path | None) -> Any:
        """The ``TrainConfig`` that trains ``model_dir`` on ``data`` with every weight."""
        from genlab.core.configs import ConfigError, TrainConfig

        fixed = {"model", "data", "eval_data", "method", "doc_separator", "seq_len"}
        clash = fixed & set(self.training)
        if clash:
            raise ConfigError(sorted(clash)[0], self.training[sorted(clash)[0]],
                              "set by genlab pretrain itself (use --context for seq_len)")
        settings = {**TRAIN_DEFAULTS, **self.training}
        if eval_file is None:
            settings.setdefault("eval_split", 0.0)
        return TrainConfig(model=str(model_dir), data=str(self.data),
                           eval_data=str(eval_file) if eval_file else None, method="full",
                           doc_separator=self.doc_separator, seq_len=self.shape.context,
                           **settings)


@dataclass(frozen=True)
class PretrainFinished:
    """``iter_pretrain`` is done; mirrors ``pretrain.json`` in the output directory.

    Attributes:
        model_dir: The trained model (standard HF directory).
        status: The training run's status (``completed``, ``stopped``, ...).
        params: Parameters of the model.
        vocab_size: Tokenizer vocabulary size.
        bits_per_byte: Whole-story bits per byte on the first ``eval_stories`` held-out stories
            (None without eval data).
        eval_stories: Stories scored.
        eval_bytes: Their UTF-8 bytes.
        eval_nats: Their summed negative log-likelihood.
        train_tokens: Tokens the model was trained on (epochs included).
        wall_time_s: Training wall time.
    """

    model_dir: str
    status: str
    params: int
    vocab_size: int
    bits_per_byte: float | None
    eval_stories: int
    eval_bytes: int
    eval_nats: float | None
    train_tokens: int
    wall_time_s: float


def iter_pretrain(
    config: PretrainConfig,
    out_dir: str | Path,
    *,
    stop_token: StopToken | None = None,
    resume: bool = False,
) -> Iterator[Any]:
    """Pretrain a tokenizer and a Llama from scratch; yield train events, then PretrainFinished.

    Layout of ``out_dir``: ``init/`` (tokenizer + initial weights, a valid HF model dir),
    ``eval_stories.txt`` (the eval set), ``run/`` (the ``iter_train`` run directory, final
    weights in ``run/model/``) and ``pretrain.json`` (the ``PretrainFinished`` record plus the
    shape and settings, for the model card).

    Without ``time_limit_s`` this is one ``iter_train`` run with ``training``'s schedule. With
    it, the run is time-boxed as warmup-stable-decay (``run-stable/`` then ``run/``; see
    ``pretrain_timebox``), because CPU throughput on shared machines is too unpredictable to
    size a cosine schedule in steps.

    Args:
        config: What to train.
        out_dir: Output directory (created).
        stop_token: Ends training at the next step boundary (checkpointed); the final
            evaluation still runs on the weights reached.
        resume: Continue ``out_dir/run`` from its latest checkpoint instead of starting over
            (time-boxed: continue ``run-stable/``, or ``run/`` once the decay has started,
            with ``time_limit_s`` counted from now).
    """
    from genlab.core.pretrain.timebox import drain, iter_time_boxed
    from genlab.core.training.train import iter_train

    out = Path(out_dir)
    stop = stop_token or StopToken()
    if config.time_limit_s is not None:
        finished = yield from iter_time_boxed(config, out, stop, resume=resume)
    elif resume:
        eval_file = out / EVAL_FILE if (out / EVAL_FILE).is_file() else None
        events = iter_train(config.train_config(out / INIT_DIR, eval_file), stop_token=stop,
                            resume_from=out / RUN_DIR)
        finished = yield from drain(events)
    else:
        eval_file = prepare_pretrain_dir(config, out)
        events = iter_train(config.train_config(out / INIT_DIR, eval_file),
                            out_dir=out / RUN_DIR, stop_token=stop)
        finished = yield from drain(events)
    if finished is None or not finished.output_dir:
        return
    yield finish_pretrain(config, out, finished)


def prepare_pretrain_dir(config: PretrainConfig, out: Path) -> Path | None:
    """Train the tokenizer, save the initial model dir, the config and the eval stories.

    Returns the eval file (None without ``eval_data``). The corpus is read before ``out`` is
    created, so unreadable data leaves nothing behind.
    """
    from genlab.core.data.sources import load_documents

    docs = [d.text for d in load_documents(config.data, doc_separator=config.doc_separator)]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG_FILE, config.to_dict())
    from genlab.core.pretrain.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(docs, config.vocab_size)
    s = config.shape
    model = build_model(tokenizer, layers=s.layers, hidden=s.hidden, heads=s.heads,
                        kv_heads=s.kv_heads, mlp=s.mlp, context=s.context,
                        tie_embeddings=config.tie_embeddings,
                        seed=int(config.training.get("seed", 0)))
    save_model_dir(model, tokenizer, out / INIT_DIR)
    if not config.eval_data:
        return None
    stories = read_stories(config.eval_data, config.eval_stories,
                           separator=config.doc_separator)
    eval_file = out / EVAL_FILE
    eval_file.write_text(join_stories(stories, config.doc_separator), encoding="utf-8")
    return eval_file


def read_pretrain_config(out_dir: str | Path) -> PretrainConfig:
    """The ``PretrainConfig`` stored in a ``genlab pretrain`` output directory."""
    return PretrainConfig.from_dict(json.loads((Path(out_dir) / CONFIG_FILE).read_text("utf-8")))


def finish_pretrain(config: PretrainConfig, out: Path, finished: RunFinished) -> PretrainFinished:
    """Score the trained model whole-story and write ``pretrain.json``.

    Tokens and wall time count every run of the pipeline (time-boxed: both phases).
    """
    from genlab.core.pretrain.bpb import bits_per_byte
    from genlab.core.modeling.loading import load_model
    from genlab.core.pretrain.timebox import earlier_phase_totals

    loaded = load_model(finished.output_dir, device="cpu", dtype="float32")
    bpb = None
    stories: list[str] = []
    if config.eval_data:
        stories = read_stories(config.eval_data, config.eval_stories,
                               separator=config.doc_separator)
        bpb = bits_per_byte(loaded.model, loaded.tokenizer, stories, batch_size=16,
                            context=config.shape.context)
    result = PretrainFinished(
        model_dir=finished.output_dir, status=finished.status,
        params=loaded.num_parameters, vocab_size=len(loaded.tokenizer),
        bits_per_byte=bpb.bpb if bpb else None, eval_stories=len(stories),
        eval_bytes=bpb.bytes if bpb else 0, eval_nats=bpb.nats if bpb else None,
        **earlier_phase_totals(out, finished) if config.time_limit_s else {
            "train_tokens": finished.tokens, "wall_time_s": finished.wall_time_s},
    )
    record = {**asdict(result), "shape": asdict(config.shape),
              "tie_embeddings": config.tie_embeddings, "data": str(config.data),
              "eval_data": str(config.eval_data) if config.eval_data else None,
              "training": {**TRAIN_DEFAULTS, **config.training},
              "time_limit_s": config.time_limit_s, "decay_fraction": config.decay_fraction,
              "schedule": ("warmup-stable-decay (time-boxed: run-stable/ then run/)"
                           if config.time_limit_s else
                           {**TRAIN_DEFAULTS, **config.training}["schedule"]),
              "bpb_definition": "whole story from its start: -sum log2 p(story tokens + EOS | "
                                "BOS) / UTF-8 bytes of the story (genlab.core.pretrain.bpb)"}
    write_json(out / PRETRAIN_FILE, record)
    return result


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON (helper for run summaries)."""
    path.write_text(json.dumps(data, indent=2, default=list) + "\n", encoding="utf-8")
