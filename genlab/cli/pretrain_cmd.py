"""``genlab pretrain``: train a byte-level BPE tokenizer and a small Llama from scratch.

Owns the command's flow. Its flags are generated from the knobs of ``PretrainConfig``,
``ModelShape`` and the training fields of ``TrainConfig`` it passes through (with the
pretraining defaults); they become a ``PretrainConfig`` whose ``training`` dict holds the
optimiser knobs. Every check runs before anything is written, so bad input is one ``genlab:
error:`` line, exit code 2 and no output directory. ``core.pretrain.pipeline.iter_pretrain``
does the work; its training events are drawn by ``pretrain_progress``, and the final
``PretrainFinished`` becomes a summary (bits per byte and the model directory) on stdout. Exit
codes are ``genlab train``'s:

    0 completed (or ended by --time-limit) · 1 failed · 2 bad input · 3 diverged · 130 stopped

The core (and torch) is imported inside the functions that run, so ``--help`` is instant.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import typer

from genlab.cli import common, pretrain_resume
from genlab.cli.common import UsageError, config_error_line, fail
from genlab.cli.options import given, knob_command, knob_options, parse_knobs
from genlab.cli.pretrain_resume import resumed_config
from genlab.core.configs import ConfigError, ModelShape, PretrainConfig, TrainConfig
from genlab.core.configs.pretrain import DATA, EOS_TOKEN, PRETRAIN_TRAINING, TIME
from genlab.core.configs.runtime import THREADS_DEFAULT

EPILOG = (
    "Output: OUT/init/ (tokenizer + initial weights), OUT/run/model/ (the trained model, a "
    "standard Hugging Face directory), OUT/pretrain.json (bits per byte and settings), "
    "OUT/pretrain_config.json (what --resume reads); time-boxed runs also keep OUT/run-stable/. "
    "Exit codes: 0 completed or ended by --time-limit; 1 failed; 2 bad input (nothing "
    "written); 3 diverged (try a lower --lr); 130 stopped by Ctrl-C after a checkpoint "
    "(continue with: genlab pretrain --resume OUT)."
)
TRAINING = "Training"
RUN = "Run"
TRAINING_FIELDS = ("lr", "batch_size", "warmup_steps", "max_steps", "epochs", "weight_decay",
                   "schedule", "eval_every", "save_every", "seed")
"""The ``TrainConfig`` knobs ``genlab pretrain`` exposes (the rest keep ``PRETRAIN_TRAINING``)."""
NOT_TIMED = "Not with --time-limit."
FLAGS = pretrain_resume.FLAGS
DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?"
                      r"(?:(?P<s>\d+(?:\.\d+)?)s?)?$")
BLANK_SEPARATOR = "blank"
PRETRAIN_OPTIONS = [
    *knob_options(PretrainConfig, default_notes={"data": "required (unless --resume)",
                                                 "eval_data": "none"}),
    *knob_options(ModelShape),
    *knob_options(TrainConfig, include=TRAINING_FIELDS, panel=TRAINING,
                  defaults=PRETRAIN_TRAINING,
                  default_notes={"schedule": "cosine to 10% of --lr", "max_steps": "from --epochs"},
                  extras={"max_steps": NOT_TIMED, "epochs": NOT_TIMED, "schedule": NOT_TIMED}),
    *knob_options(TrainConfig, include=("device", "threads"), panel=RUN,
                  default_notes={"threads": THREADS_DEFAULT}),
]


@knob_command(PRETRAIN_OPTIONS)
def pretrain(
    knobs: dict[str, Any],
    doc_separator: str | None = typer.Option(
        None, "--doc-separator", metavar="STR", rich_help_panel=DATA, show_default=False,
        help="Document separator in the .txt files (\\n means a newline), or 'blank' for blank "
             "lines. Default: <|endoftext|> (TinyStories: a line holding only it after each "
             "story)."),
    time_limit: str | None = typer.Option(
        None, "--time-limit", metavar="DURATION", rich_help_panel=TIME, show_default=False,
        help="Train for this long (e.g. 90m, 2h, 1h30m, 45s or seconds) as warmup-stable-decay: "
             "constant lr, then a linear decay to 0 sized to end on time. Default: off (one "
             "cosine run of --max-steps/--epochs)."),
    sample_prompt: list[str] | None = typer.Option(
        None, "--sample-prompt", metavar="TEXT", rich_help_panel=TRAINING, show_default=False,
        help="A prompt continued at each evaluation (repeatable)."),
    out: str | None = typer.Option(
        None, "--out", metavar="DIR", rich_help_panel=RUN, show_default=False,
        help="Output directory to create (new or empty). Default: runs/<timestamp>-pretrain."),
    force: bool = typer.Option(
        False, "--force", metavar="", show_default=False, rich_help_panel=RUN,
        help="Replace --out even when it holds files genlab did not write or another "
             "pretraining (its contents are deleted once the corpus has been read)."),
    resume: str | None = typer.Option(
        None, "--resume", metavar="DIR", rich_help_panel=RUN, show_default=False,
        help="Continue the pretraining in DIR from its last checkpoint with its stored "
             "settings (--time-limit then counts from now)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", metavar="", show_default=False, rich_help_panel=RUN,
        help="No progress; print only the model directory at the end."),
) -> None:
    """Pretrain a tokenizer and a small Llama from scratch; report bits per byte.

    Trains a byte-level BPE tokenizer on --data, builds a LlamaForCausalLM of the given shape,
    trains every weight, and scores the first --eval-stories held-out documents whole (bits
    per byte, comparable across tokenizers). The result is a standard Hugging Face model
    directory that plain transformers loads. Ctrl-C once stops after the current step (the
    final score still runs); twice aborts.

    Examples:

        genlab pretrain --data train.txt --eval-data valid.txt --layers 2 --hidden 64 \\
            --max-steps 300

        genlab pretrain --data tinystories/train.txt --eval-data tinystories/valid.txt \\
            --time-limit 90m --out runs/tinystories

        genlab pretrain --resume runs/tinystories --time-limit 30m
    """
    raw = given({**knobs, "doc_separator": doc_separator, "time_limit": time_limit,
                 "sample_prompt": sample_prompt})
    try:
        fields = parse_flags(raw)
        replace = False
        if resume is not None:
            config, out_path = resumed_config(resume, out, fields)
        else:
            config = build_config(fields, typed=raw)
            out_path, replace = check_new_out(out, force=force)
    except UsageError as err:
        fail(str(err))
    code = _run(config, out_path, resume=resume is not None, quiet=quiet, replace=replace)
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


def parse_flags(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn the given flags' values into typed field values; raises ``UsageError``."""
    raw = given(raw)
    fields: dict[str, Any] = {}
    for cls in (PretrainConfig, ModelShape, TrainConfig):
        fields.update(parse_knobs(cls, raw))
    if "time_limit" in raw:
        fields["time_limit"] = parse_duration(raw["time_limit"])
    if "doc_separator" in raw:
        separator = raw["doc_separator"]
        if not common.unescape(separator).strip():
            raise UsageError(f"--doc-separator {separator!r}: must be a visible string, or "
                             f"'{BLANK_SEPARATOR}' for blank lines")
        fields["doc_separator"] = (None if separator == BLANK_SEPARATOR
                                   else common.unescape(separator))
    if "sample_prompt" in raw:
        fields["sample_prompts"] = tuple(common.unescape(p) for p in raw["sample_prompt"])
    return fields


def build_config(fields: dict[str, Any], typed: dict[str, Any] | None = None) -> PretrainConfig:
    """A validated ``PretrainConfig`` from parsed flags; every error is a ``UsageError``.

    ``typed`` holds the flags as given, so messages quote the user's spelling (``--lr 0``).
    """
    fields = dict(fields)
    data = fields.pop("data", None)
    if data is None:
        raise UsageError("--data is required: pass a .txt corpus file or a directory of them")
    _check_paths(data, fields.get("eval_data"))
    if "time_limit" in fields:
        for key in ("max_steps", "epochs", "schedule"):
            if key in fields:
                raise UsageError(f"{flag_of(key)} {fields[key]}: cannot be combined with "
                                 "--time-limit, which sizes the run and its schedule itself")
    warmup = fields.get("warmup_steps", PRETRAIN_TRAINING["warmup_steps"])
    if fields.get("max_steps") is not None and warmup >= fields["max_steps"]:
        raise UsageError(f"--warmup-steps {warmup}: must be shorter than --max-steps "
                         f"{fields['max_steps']}")
    training = {k: fields.pop(k) for k in (*TRAINING_FIELDS, "device", "threads",
                                           "sample_prompts")
                if k in fields}
    shape_fields = [f.name for f in ModelShape.__dataclass_fields__.values()]
    try:
        shape = ModelShape(**{k: fields.pop(k) for k in shape_fields if k in fields})
        eval_data = fields.pop("eval_data", None)
        config = PretrainConfig(
            data=_absolute(data), eval_data=_absolute(eval_data) if eval_data else None,
            shape=shape, doc_separator=fields.pop("doc_separator", EOS_TOKEN),
            time_limit_s=fields.pop("time_limit", None), training=training,
            **{k: fields.pop(k) for k in ("vocab_size", "tie_embeddings", "eval_stories",
                                          "eval_split", "decay_fraction") if k in fields})
        config.train_config(Path("init"), Path("eval.txt") if config.eval_data else None)
    except ConfigError as err:
        raise UsageError(config_error_line(err, flags=FLAGS, typed=typed)) from None
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


def flag_of(field: str) -> str:
    """The ``genlab pretrain`` flag of a config field (``seq_len`` is ``--context``)."""
    return common.flag_for(field, FLAGS)


def check_new_out(out_dir: str | None, force: bool = False) -> tuple[Path, bool]:
    """The output directory of a new run (default runs/<timestamp>-pretrain), and whether
    its contents are to be replaced (``--force``); absent or empty otherwise."""
    # torch-free --help: the core's io helpers load only when the command runs
    from genlab.core.io import claim_out_dir, fresh_dir
    from genlab.core.pretrain.setup import PRETRAIN_KIND, is_legacy_pretrain_dir

    if out_dir is None:
        return fresh_dir("runs", "pretrain"), False
    path = Path(out_dir).expanduser()
    state = claim_out_dir(path, PRETRAIN_KIND, force=force, is_legacy=is_legacy_pretrain_dir,
                          flag="--out")
    if state == "same" and not force:
        raise UsageError(f"--out {out_dir}: already a genlab pretraining; continue it with "
                         f"--resume {out_dir}, choose another --out, or pass --force to "
                         "replace it")
    return path, state in ("same", "replace")


# --------------------------------------------------------------------------------- running


def _run(config: PretrainConfig, out: Path, *, resume: bool, quiet: bool,
         replace: bool = False) -> int:
    """Drive ``iter_pretrain``, render its events, print the summary; return the exit code."""
    # torch-free --help: rich and the core load only when the command runs
    from rich.console import Console

    from genlab.cli.pretrain_progress import make_progress, summary_lines
    from genlab.core.events import RunFinished, RunStarted, StopToken
    from genlab.core.modeling.loading import quiet_transformers
    from genlab.core.pretrain.pipeline import PretrainFinished, iter_pretrain

    quiet_transformers()  # no "Writing model shards" bars between our lines
    created = not out.exists()
    stop, result, last_run, started = StopToken(), None, None, False
    progress = make_progress(Console(stderr=True), config, quiet=quiet)
    try:
        with common.StopOnSignals(stop, on_first=progress.stopping), progress:
            for event in iter_pretrain(config, out, stop_token=stop, resume=resume,
                                       replace_out=replace):
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
        return common.EXIT_STOPPED
    except Exception as err:
        if created and not started:  # nothing trained yet: leave no half-made directory
            shutil.rmtree(out, ignore_errors=True)
        known = _known_error(err, progress, out if started else None)
        if known is None:
            raise  # a bug: the error boundary says so (--debug shows the traceback)
        fail(*known)
    if result is None:
        status = last_run.status if last_run else "failed"
        print(f"genlab: pretraining ended ({status}) without a trained model", file=sys.stderr)
        return common.exit_code(status) or common.EXIT_FAILED
    print("\n".join(summary_lines(result, out, config, quiet=quiet)))
    if progress.stop_requested:
        print(f"genlab: stopped; continue with: genlab pretrain --resume {out}", file=sys.stderr)
        return common.EXIT_STOPPED
    return 0 if result.status == "stopped" else common.exit_code(result.status)


def _known_error(err: Exception, progress: Any, out: Path | None) -> tuple[str, int] | None:
    """(one line, exit code) for an expected failure; None for a bug."""
    from genlab.cli.train_cmd import known_error

    if isinstance(err, ConfigError):
        return config_error_line(err, flags=FLAGS), common.EXIT_USAGE
    step = getattr(progress, "step", 0) or 0
    known = known_error(err, step, str(out) if out else None, "genlab pretrain --resume")
    return (known[0].replace("--seq-len", "--context"), known[1]) if known else None
