"""``genlab pretrain``: train a byte-level BPE tokenizer and a small Llama from scratch.

Owns the command's flags and its flow. The flags become a ``PretrainConfig`` (tokenizer size,
model shape, time box) whose ``training`` dict holds the optimiser knobs; every check runs before
anything is written, so bad input is one ``genlab: error:`` line, exit code 2 and no output
directory. ``core.pretrain.pipeline.iter_pretrain`` does the work; its training events are drawn
by ``pretrain_progress`` (``genlab train``'s renderer taught the open-ended stable phase of a
time-boxed run), and the final ``PretrainFinished`` becomes a summary (bits per byte and the
model directory) on stdout. Exit codes are ``genlab train``'s:

    0 completed (or ended by --time-limit) · 1 failed · 2 bad input · 3 diverged · 130 stopped

Import-time cost is typer and the standard library only (the core, and torch, are imported
inside ``pretrain``), so ``genlab pretrain --help`` is instant.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import typer

from genlab.cli.errors import USAGE_EXIT, UsageError, fail

EPILOG = (
    "Output: OUT/init/ (tokenizer + initial weights), OUT/run/model/ (the trained model, a "
    "standard Hugging Face directory), OUT/pretrain.json (bits per byte and settings), "
    "OUT/pretrain_config.json (what --resume reads); time-boxed runs also keep OUT/run-stable/. "
    "Exit codes: 0 completed or ended by --time-limit; 1 failed; 2 bad input (nothing "
    "written); 3 diverged (try a lower --lr); 130 stopped by Ctrl-C after a checkpoint "
    "(continue with: genlab pretrain --resume OUT)."
)

DATA = "Corpus and evaluation"
SHAPE = "Tokenizer and model shape"
TIME = "Time box"
OPTIM = "Training"
RUN = "Run"

SHAPE_FIELDS = ("layers", "hidden", "heads", "kv_heads", "mlp", "context")
INT_FIELDS = frozenset({*SHAPE_FIELDS, "vocab_size", "eval_stories", "batch_size",
                        "warmup_steps", "max_steps", "eval_every", "save_every", "seed"})
FLOAT_FIELDS = frozenset({"decay_fraction", "lr", "epochs", "weight_decay"})
TRAINING_FIELDS = ("lr", "batch_size", "warmup_steps", "max_steps", "epochs", "weight_decay",
                   "schedule", "eval_every", "save_every", "seed", "device")
RESUME_OVERRIDES = frozenset({"time_limit", "decay_fraction"})
FLAGS = {"seq_len": "--context", "time_limit_s": "--time-limit", "sample_prompts":
         "--sample-prompt", "doc_separator": "--doc-separator", "vocab_size": "--vocab-size",
         "kv_heads": "--kv-heads"}
DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?"
                      r"(?:(?P<s>\d+(?:\.\d+)?)s?)?$")
BLANK_SEPARATOR = "blank"


def _opt(flag: str, panel: str, help: str, metavar: str = "", **kwargs: Any) -> Any:
    """An option whose default is None (= not given), so --resume can spot conflicts."""
    return typer.Option(None, flag, metavar=metavar or None, show_default=False,
                        rich_help_panel=panel, help=help, **kwargs)


def pretrain(
    data: str | None = _opt("--data", DATA, "Training corpus: a .txt file or a directory of "
                            "them, documents separated by --doc-separator. Required (unless "
                            "--resume).", "FILE|DIR"),
    eval_data: str | None = _opt("--eval-data", DATA, "Held-out .txt file in the same format: "
                                 "its first --eval-stories documents are evaluated during "
                                 "training and scored whole (bits per byte) at the end. "
                                 "Default: none.", "FILE"),
    doc_separator: str | None = _opt("--doc-separator", DATA, "Document separator in the .txt "
                                     "files (\\n means a newline), or 'blank' for blank lines. "
                                     "Default: <|endoftext|> (TinyStories: a line holding "
                                     "only it after each story).", "STR"),
    eval_stories: str | None = _opt("--eval-stories", DATA, "Held-out documents used; integer "
                                    ">= 1. Default: 300.", "N"),
    vocab_size: str | None = _opt("--vocab-size", SHAPE, "Byte-level BPE vocabulary, 256 byte "
                                  "tokens and 3 special tokens included; integer >= 259. "
                                  "Default: 2048.", "V"),
    layers: str | None = _opt("--layers", SHAPE, "Transformer blocks. Default: 6.", "N"),
    hidden: str | None = _opt("--hidden", SHAPE, "Hidden size; a multiple of --heads with an "
                              "even head size. Default: 128.", "D"),
    heads: str | None = _opt("--heads", SHAPE, "Attention heads. Default: 4.", "H"),
    kv_heads: str | None = _opt("--kv-heads", SHAPE, "Key/value heads (grouped-query "
                                "attention); a divisor of --heads. Default: 2.", "K"),
    mlp: str | None = _opt("--mlp", SHAPE, "MLP (SwiGLU) inner size. Default: 384.", "M"),
    context: str | None = _opt("--context", SHAPE, "Context length in tokens, also the "
                               "training sequence length; >= 8. Default: 256.", "T"),
    tie_embeddings: bool | None = typer.Option(
        None, "--tie-embeddings/--no-tie-embeddings", metavar="", show_default=False,
        rich_help_panel=SHAPE,
        help="Share the input embedding and the output projection. Default: tied."),
    time_limit: str | None = _opt("--time-limit", TIME, "Train for this long (e.g. 90m, 2h, "
                                  "1h30m, 45s or seconds) as warmup-stable-decay: constant lr, "
                                  "then a linear decay to 0 sized to end on time. Default: "
                                  "off (one cosine run of --max-steps/--epochs).", "DURATION"),
    decay_fraction: str | None = _opt("--decay-fraction", TIME, "With --time-limit: share of "
                                      "the time spent decaying the lr; in (0, 1). "
                                      "Default: 0.2.", "F"),
    lr: str | None = _opt("--lr", OPTIM, "Peak learning rate (AdamW, betas 0.9,0.95); > 0. "
                          "Default: 0.0025.", "LR"),
    batch_size: str | None = _opt("--batch-size", OPTIM, "Sequences of --context tokens per "
                                  "step; integer >= 1. Default: 32.", "B"),
    warmup_steps: str | None = _opt("--warmup-steps", OPTIM, "Linear warmup steps; integer "
                                    ">= 0. Default: 100.", "N"),
    max_steps: str | None = _opt("--max-steps", OPTIM, "Optimizer steps, overrides --epochs "
                                 "(not with --time-limit). Default: from --epochs.", "N"),
    epochs: str | None = _opt("--epochs", OPTIM, "Passes over the corpus (not with "
                              "--time-limit); > 0. Default: 5.0.", "E"),
    weight_decay: str | None = _opt("--weight-decay", OPTIM, "Decoupled weight decay (not on "
                                    "norms); >= 0. Default: 0.1.", "WD"),
    schedule: str | None = _opt("--schedule", OPTIM, "constant, linear, cosine or step (not "
                                "with --time-limit). Default: cosine to 10% of --lr.", "NAME"),
    eval_every: str | None = _opt("--eval-every", OPTIM, "Evaluate every N steps; 0 = at the "
                                  "end only. Default: 100.", "N"),
    save_every: str | None = _opt("--save-every", OPTIM, "Checkpoint every N steps; 0 = at "
                                  "each evaluation. Default: 100.", "N"),
    seed: str | None = _opt("--seed", OPTIM, "Seeds the initial weights and the data order. "
                            "Default: 0.", "S"),
    sample_prompt: list[str] | None = _opt("--sample-prompt", OPTIM, "A prompt continued at "
                                           "each evaluation (repeatable).", "TEXT"),
    device: str | None = _opt("--device", RUN, "auto (cuda, then mps, then cpu), cpu, cuda, "
                              "cuda:N or mps. Default: auto.", "DEVICE"),
    out: str | None = _opt("--out", RUN, "Output directory to create. Default: "
                           "runs/<timestamp>-pretrain.", "DIR"),
    resume: str | None = _opt("--resume", RUN, "Continue the pretraining in DIR from its last "
                              "checkpoint with its stored settings (--time-limit then counts "
                              "from now).", "DIR"),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", show_default=False,
                               rich_help_panel=RUN,
                               help="No progress; print only the model directory at the end."),
) -> None:
    """Pretrain a tokenizer and a small Llama from scratch; report bits per byte.

    Trains a byte-level BPE tokenizer on --data, builds a LlamaForCausalLM of the given shape,
    trains every weight, and scores the first --eval-stories held-out documents whole (bits
    per byte, comparable across tokenizers). The result is a standard Hugging Face model
    directory that plain transformers loads. Ctrl-C once stops after the current step (the
    final score still runs); twice aborts.

    Examples:

        genlab pretrain --data train.txt --eval-data valid.txt --layers 2 --hidden 64
        --max-steps 300

        genlab pretrain --data tinystories/train.txt --eval-data tinystories/valid.txt
        --time-limit 90m --out runs/tinystories

        genlab pretrain --resume runs/tinystories --time-limit 30m
    """
    given = {key: value for key, value in locals().items() if value not in (None, [])}
    is_quiet = bool(given.pop("quiet", False))
    out_dir, resume_dir = given.pop("out", None), given.pop("resume", None)
    try:
        fields = parse_flags(given)
        if resume_dir is not None:
            config, out_path = resumed_config(resume_dir, out_dir, fields)
        else:
            config = build_config(fields, typed=given)
            out_path = check_new_out(out_dir)
    except UsageError as err:
        fail(str(err))
    code = _run(config, out_path, resume=resume_dir is not None, quiet=is_quiet)
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------ flags -> PretrainConfig


def parse_duration(raw: str) -> float:
    """Seconds of ``90m``, ``2h``, ``1h30m``, ``45s`` or a plain number of seconds."""
    match = DURATION.match(raw.strip().lower())
    if not raw.strip() or match is None:
        raise UsageError(f"--time-limit {raw}: must be a duration like 90m, 2h, 1h30m, 45s "
                         "or a number of seconds")
    seconds = sum(float(match.group(unit) or 0) * scale
                  for unit, scale in (("h", 3600), ("m", 60), ("s", 1)))
    if not seconds > 0:
        raise UsageError(f"--time-limit {raw}: must be longer than 0 seconds")
    return seconds


def parse_flags(given: dict[str, Any]) -> dict[str, Any]:
    """Turn the given flags' strings into typed values; raises ``UsageError``."""
    fields: dict[str, Any] = {}
    for key, raw in given.items():
        flag = flag_of(key)
        if key in INT_FIELDS:
            try:
                fields[key] = int(raw)
            except ValueError:
                raise UsageError(f"{flag} {raw}: must be an integer") from None
        elif key in FLOAT_FIELDS:
            try:
                fields[key] = float(raw)
            except ValueError:
                raise UsageError(f"{flag} {raw}: must be a number") from None
        elif key == "time_limit":
            fields[key] = parse_duration(raw)
        elif key == "doc_separator":
            if not _unescape(raw).strip():
                raise UsageError(f"--doc-separator {raw!r}: must be a visible string, or "
                                 f"'{BLANK_SEPARATOR}' for blank lines")
            fields[key] = None if raw == BLANK_SEPARATOR else _unescape(raw)
        elif key == "sample_prompt":
            fields["sample_prompts"] = tuple(_unescape(p) for p in raw)
        else:
            fields[key] = raw
    return fields


def build_config(fields: dict[str, Any], typed: dict[str, Any] | None = None) -> Any:
    """A validated ``PretrainConfig`` from parsed flags; every error is a ``UsageError``.

    ``typed`` holds the flags as given, so messages quote the user's spelling (``--lr 0``).
    """
    from genlab.core.configs import ConfigError, ModelShape, PretrainConfig
    from genlab.core.configs.pretrain import EOS_TOKEN, MIN_VOCAB

    fields = dict(fields)
    data = fields.pop("data", None)
    if data is None:
        raise UsageError("--data is required: pass a .txt corpus file or a directory of them")
    _check_paths(data, fields.get("eval_data"))
    if fields.get("vocab_size", MIN_VOCAB) < MIN_VOCAB:
        raise UsageError(f"--vocab-size {fields['vocab_size']}: must be >= {MIN_VOCAB} (256 "
                         f"byte tokens + {MIN_VOCAB - 256} special tokens)")
    if "time_limit" in fields:
        for key in ("max_steps", "epochs", "schedule"):
            if key in fields:
                raise UsageError(f"{flag_of(key)} {fields[key]}: cannot be combined with "
                                 "--time-limit, which sizes the run and its schedule itself")
    if fields.get("max_steps") is not None and fields.get("warmup_steps", 100) >= \
            fields["max_steps"]:
        raise UsageError(f"--warmup-steps {fields.get('warmup_steps', 100)}: must be shorter "
                         f"than --max-steps {fields['max_steps']}")
    training = {k: fields.pop(k) for k in (*TRAINING_FIELDS, "sample_prompts") if k in fields}
    try:
        shape = ModelShape(**{k: fields.pop(k) for k in SHAPE_FIELDS if k in fields})
        eval_data = fields.pop("eval_data", None)
        config = PretrainConfig(
            data=_absolute(data), eval_data=_absolute(eval_data) if eval_data else None,
            shape=shape,
            doc_separator=fields.pop("doc_separator", EOS_TOKEN),
            time_limit_s=fields.pop("time_limit", None), training=training,
            **{k: fields.pop(k) for k in ("vocab_size", "tie_embeddings", "eval_stories",
                                          "decay_fraction") if k in fields})
        config.train_config(Path("init"), Path("eval.txt") if config.eval_data else None)
    except ConfigError as err:
        raise UsageError(config_error_line(err, typed)) from None
    return config


def _check_paths(data: str, eval_data: str | None) -> None:
    path = Path(data).expanduser()
    if not path.exists():
        raise UsageError(f"--data {data}: no such file or directory; pass a .txt corpus file "
                         "or a directory of them")
    if path.is_dir() and not any(p.suffix == ".txt" for p in path.iterdir()):
        raise UsageError(f"--data {data}: the directory holds no .txt file")
    if eval_data is not None and not Path(eval_data).expanduser().is_file():
        raise UsageError(f"--eval-data {eval_data}: no such file; pass a .txt file of "
                         "held-out documents")


def _absolute(path: str) -> str:
    """Stored paths are absolute, so ``--resume`` works from any directory."""
    return str(Path(path).expanduser().resolve())


def config_error_line(err: Any, typed: dict[str, Any] | None = None) -> str:
    """``--kv-heads 3: must be a divisor of heads=4`` from a core ``ConfigError``."""
    value = ",".join(map(str, err.value)) if isinstance(err.value, tuple) else err.value
    raw = (typed or {}).get({"seq_len": "context"}.get(err.field, err.field))
    value = raw if isinstance(raw, str) else value
    return f"{flag_of(err.field)} {value}: must be {err.expected}"


def flag_of(field: str) -> str:
    """The ``genlab pretrain`` flag of a config field (``seq_len`` is ``--context``)."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def check_new_out(out_dir: str | None) -> Path:
    """The output directory of a new run: absent or empty (default runs/<timestamp>-pretrain)."""
    import time

    if out_dir is None:
        base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-pretrain"
        path, n = base, 2
        while path.exists():
            path, n = base.with_name(f"{base.name}-{n}"), n + 1
        return path
    path = Path(out_dir).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--out {out_dir}: already exists and is not empty; choose a new "
                         f"directory, or continue it with --resume {out_dir}")
    return path


def resumed_config(resume_dir: str, out_dir: str | None, fields: dict[str, Any]
                   ) -> tuple[Any, Path]:
    """The stored config of ``resume_dir`` with the allowed overrides applied."""
    from dataclasses import replace

    from genlab.core.pretrain.setup import CONFIG_FILE, PRETRAIN_FILE, read_pretrain_config

    path = Path(resume_dir).expanduser()
    if out_dir is not None and Path(out_dir).resolve() != path.resolve():
        raise UsageError(f"--out {out_dir}: conflicts with --resume {resume_dir}; a resumed "
                         "run continues in its own directory, so drop --out")
    if not (path / CONFIG_FILE).is_file():
        raise UsageError(f"--resume {resume_dir}: no {CONFIG_FILE} there; pass a directory "
                         "written by genlab pretrain")
    if _finished_status(path / PRETRAIN_FILE) not in (None, "stopped"):
        raise UsageError(f"--resume {resume_dir}: this pretraining already finished (see "
                         f"{path / PRETRAIN_FILE}); start a new one with --out")
    extra = sorted(set(fields) - RESUME_OVERRIDES)
    if extra:
        raise UsageError(f"{flag_of(extra[0])}: cannot be changed when resuming; drop it (the "
                         f"settings stored in {path / CONFIG_FILE} are used)")
    try:
        config = read_pretrain_config(path)
        if "time_limit" in fields and config.time_limit_s is None:
            raise UsageError(f"--time-limit: the run in {resume_dir} is not time-boxed; "
                             "resume it without --time-limit")
        config = replace(config, time_limit_s=fields.get("time_limit", config.time_limit_s),
                         decay_fraction=fields.get("decay_fraction", config.decay_fraction))
    except (OSError, ValueError, TypeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"--resume {resume_dir}: cannot use its {CONFIG_FILE} ({first})"
                         ) from None
    return config, path


def _finished_status(record: Path) -> str | None:
    """Status in ``pretrain.json`` (None when absent): a ``stopped`` run may be resumed."""
    import json

    if not record.is_file():
        return None
    try:
        return str(json.loads(record.read_text(encoding="utf-8")).get("status"))
    except (OSError, ValueError):
        return "unreadable"


# --------------------------------------------------------------------------------- running


def _run(config: Any, out: Path, *, resume: bool, quiet: bool) -> int:
    """Drive ``iter_pretrain``, render its events, print the summary; return the exit code."""
    from rich.console import Console

    from genlab.cli.pretrain_progress import make_progress, summary_lines
    from genlab.cli.train_cmd import EXIT_STOPPED, StopOnSignals, exit_code
    from genlab.core.events import RunFinished, RunStarted, StopToken
    from genlab.core.modeling.loading import quiet_transformers
    from genlab.core.pretrain.pipeline import PretrainFinished, iter_pretrain

    quiet_transformers()  # no "Writing model shards" bars between our lines
    created = not out.exists()
    stop, result, last_run, started = StopToken(), None, None, False
    progress = make_progress(Console(stderr=True), config, quiet=quiet)
    try:
        with StopOnSignals(stop, on_first=progress.stopping), progress:
            for event in iter_pretrain(config, out, stop_token=stop, resume=resume):
                started = started or isinstance(event, RunStarted)
                if isinstance(event, PretrainFinished):
                    result = event
                    continue
                progress.handle(event)
                if isinstance(event, RunFinished):
                    last_run = event
                    progress.run_finished(event)
    except KeyboardInterrupt:
        print(f"genlab: aborted; continue from the last checkpoint with: genlab pretrain "
              f"--resume {out}", file=sys.stderr)
        return EXIT_STOPPED
    except Exception as err:
        line = _known_error(err)
        if line is None:
            raise
        if created and not started:  # nothing trained yet: leave no half-made directory
            shutil.rmtree(out, ignore_errors=True)
        fail(line, code=USAGE_EXIT)
    if result is None:
        status = last_run.status if last_run else "failed"
        print(f"genlab: pretraining ended ({status}) without a trained model", file=sys.stderr)
        return exit_code(status) or 1
    print("\n".join(summary_lines(result, out, config, quiet=quiet)))
    if progress.stop_requested:
        print(f"genlab: stopped; continue with: genlab pretrain --resume {out}", file=sys.stderr)
        return EXIT_STOPPED
    return 0 if result.status == "stopped" else exit_code(result.status)


def _known_error(err: Exception) -> str | None:
    """One line for errors users cause (bad data, settings); None for bugs (traceback)."""
    from genlab.core.configs import ConfigError
    from genlab.core.data.packing import DataError
    from genlab.core.modeling.loading import ModelLoadError
    from genlab.core.training.train import TrainSetupError

    if isinstance(err, ConfigError):
        return config_error_line(err)
    if isinstance(err, (DataError, ModelLoadError, TrainSetupError)):
        return " ".join(str(err).replace("--seq-len", "--context").split())
    return None


# ------------------------------------------------------------------------------- rendering
