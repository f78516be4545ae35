"""``genlab train``: fine-tune a LoRA adapter (or every weight) and watch it learn.

Owns the command's flags and its flow: one flag per ``TrainConfig`` field (``--warmup-ratio`` is
``warmup_ratio``), parsed here into one-line errors, then validated by ``TrainConfig`` itself;
``--resume DIR`` reloads a run's stored config instead. The core's ``iter_train`` does the work
and this module only renders its events (``train_progress``), maps Ctrl-C/SIGTERM onto the
core's stop token (first press: checkpoint and stop; second: abort) and turns the outcome into
an exit code:

    0 completed or early-stopped · 1 failed · 2 bad input · 3 diverged · 130 stopped

Every setup failure (bad flag, missing data, unknown target module, ...) is reported before a
run directory exists, as one ``genlab: error:`` line naming the flag.

Import-time cost is typer and the standard library only: the core (and torch) is imported
inside ``train``, so ``genlab train --help`` is instant.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import typer

from genlab.assets import DEFAULT_MODEL_HELP
from genlab.cli.errors import USAGE_EXIT, UsageError, fail, flag_for

EXIT_FAILED = 1
EXIT_DIVERGED = 3
EXIT_STOPPED = 130

EPILOG = (
    "Exit codes: 0 completed or early-stopped; 1 failed; 2 bad input (nothing written); "
    "3 diverged (loss became nan/inf: try a lower --lr); 130 stopped by Ctrl-C or SIGTERM "
    "after saving a checkpoint (continue with: genlab train --resume RUN_DIR)."
)

DATA = "Model and data"
LORA = "LoRA (--method lora)"
OPTIM = "Optimizer"
SCHEDULE = "Learning-rate schedule"
BATCH = "Batches and length"
EVAL = "Evaluation, early stopping, samples, checkpoints"
RUN = "Hardware and run"

INT_FIELDS = frozenset({
    "seq_len", "rank", "step_size", "warmup_steps", "batch_size", "grad_accum", "max_steps",
    "lr_reference_batch", "seed", "eval_every", "eval_max_batches", "patience",
    "sample_max_new_tokens", "save_every",
})
FLOAT_FIELDS = frozenset({
    "eval_split", "alpha", "dropout", "lr", "momentum", "weight_decay", "gamma", "warmup_ratio",
    "min_lr_ratio", "epochs", "max_grad_norm", "min_delta", "sample_temperature",
})
PATH_FIELDS = frozenset({"model", "data", "eval_data"})


def _opt(flag: str, panel: str, help: str, metavar: str = "", **kwargs: Any) -> Any:
    """An option whose default is None (= not given), so --resume can spot conflicts."""
    return typer.Option(None, flag, metavar=metavar or None, show_default=False,
                        rich_help_panel=panel, help=help, **kwargs)


def train(
    model: str | None = _opt("--model", DATA, "Base model: Hugging Face hub id or local "
                             "directory. " + DEFAULT_MODEL_HELP, "ID|DIR"),
    data: str | None = _opt("--data", DATA, "Training data: .txt, .jsonl, .json, .csv or "
                            ".parquet file, a directory of them, or a hub dataset name. "
                            "Required (unless --resume).", "PATH"),
    eval_data: str | None = _opt("--eval-data", DATA, "Held-out data in the same formats. "
                                 "Default: hold out --eval-split of --data.", "PATH"),
    eval_split: str | None = _opt("--eval-split", DATA, "Fraction of documents held out for "
                                  "evaluation when --eval-data is not given; in [0, 0.5]. "
                                  "Default: 0.1.", "F"),
    text_field: str | None = _opt("--text-field", DATA, "Column holding the text in "
                                  ".jsonl/.json/.csv/.parquet data. Default: text.", "NAME"),
    prompt_field: str | None = _opt("--prompt-field", DATA, "With --completion-field: train "
                                    "on prompt + completion, loss on the completion only. "
                                    "Default: off.", "NAME"),
    completion_field: str | None = _opt("--completion-field", DATA, "See --prompt-field. "
                                        "Default: off.", "NAME"),
    doc_separator: str | None = _opt("--doc-separator", DATA, "Separator between documents in "
                                     ".txt files (\\n means a newline). Default: blank lines.",
                                     "STR"),
    seq_len: str | None = _opt("--seq-len", DATA, "Tokens per packed training sequence; "
                               "integer >= 8. Default: 256.", "N"),
    method: str | None = _opt("--method", LORA, "lora: train an adapter on the frozen base; "
                              "full: train every weight (as for pretraining). Default: lora.",
                              "lora|full"),
    rank: str | None = _opt("--rank", LORA, "LoRA rank r; integer >= 1. Default: 8.", "R"),
    alpha: str | None = _opt("--alpha", LORA, "LoRA alpha; > 0. The update is scaled by "
                             "alpha/r (alpha/sqrt(r) with --rslora). Default: 16.0.", "A"),
    dropout: str | None = _opt("--dropout", LORA, "Dropout on the LoRA input; in [0, 1). "
                               "Default: 0.05.", "P"),
    target_modules: str | None = _opt("--target-modules", LORA, "Comma list of module names "
                                      "to adapt, e.g. q_proj,v_proj. Default: every attention "
                                      "and MLP projection.", "M[,M...]"),
    rslora: bool | None = typer.Option(None, "--rslora/--no-rslora", metavar="",
                                       show_default=False,
                                       rich_help_panel=LORA, help="Rank-stabilised scaling "
                                       "alpha/sqrt(r). Default: off."),
    lr: str | None = _opt("--lr", OPTIM, "Peak learning rate; > 0 (e.g. 2e-4 for LoRA, 1e-5 "
                          "for full). Default: 0.0002.", "LR"),
    optimizer: str | None = _opt("--optimizer", OPTIM, "adamw, adam or sgd. Default: adamw.",
                                 "NAME"),
    momentum: str | None = _opt("--momentum", OPTIM, "SGD momentum; in [0, 1). Default: 0.0.",
                                "M"),
    betas: str | None = _opt("--betas", OPTIM, "Adam/AdamW betas B1,B2, each in [0, 1). "
                             "Default: 0.9,0.999.", "B1,B2"),
    weight_decay: str | None = _opt("--weight-decay", OPTIM, "Decoupled (adamw) or L2 (adam, "
                                    "sgd) weight decay, not on biases/norms; >= 0. "
                                    "Default: 0.0.", "WD"),
    max_grad_norm: str | None = _opt("--max-grad-norm", OPTIM, "Clip the global gradient "
                                     "norm; >= 0, 0 = no clipping. Default: 1.0.", "N"),
    lr_scaling: str | None = _opt("--lr-scaling", OPTIM, "none, or linear: scale --lr by "
                                  "effective batch / --lr-reference-batch. Default: none.",
                                  "none|linear"),
    lr_reference_batch: str | None = _opt("--lr-reference-batch", OPTIM, "Effective batch at "
                                          "which --lr is unscaled; integer >= 1. Default: 8.",
                                          "B"),
    schedule: str | None = _opt("--schedule", SCHEDULE, "After warmup: constant, linear, "
                                "cosine or step. Default: cosine.", "NAME"),
    step_size: str | None = _opt("--step-size", SCHEDULE, "step schedule: multiply the lr by "
                                 "--gamma every N steps; integer >= 1. Default: 100.", "N"),
    gamma: str | None = _opt("--gamma", SCHEDULE, "step schedule decay factor; in (0, 1]. "
                             "Default: 0.5.", "G"),
    warmup_steps: str | None = _opt("--warmup-steps", SCHEDULE, "Linear warmup from 0 to the "
                                    "peak lr; integer >= 0, shorter than the run. Default: 0.",
                                    "N"),
    warmup_ratio: str | None = _opt("--warmup-ratio", SCHEDULE, "Warmup as a fraction of the "
                                    "run, used when --warmup-steps is 0; in [0, 1). "
                                    "Default: 0.0.", "F"),
    min_lr_ratio: str | None = _opt("--min-lr-ratio", SCHEDULE, "Floor of linear/cosine decay "
                                    "as a fraction of the peak lr; in [0, 1]. Default: 0.0.",
                                    "F"),
    batch_size: str | None = _opt("--batch-size", BATCH, "Sequences per micro-batch; integer "
                                  ">= 1. Default: 8.", "B"),
    grad_accum: str | None = _opt("--grad-accum", BATCH, "Micro-batches per optimizer step "
                                  "(effective batch = B x N); integer >= 1. Default: 1.", "N"),
    epochs: str | None = _opt("--epochs", BATCH, "Passes over the data, ignored with "
                              "--max-steps; > 0. Default: 1.0.", "E"),
    max_steps: str | None = _opt("--max-steps", BATCH, "Optimizer steps to run, overrides "
                                 "--epochs; integer >= 1. Default: from --epochs.", "N"),
    seed: str | None = _opt("--seed", BATCH, "Seeds data order, init and dropout; integer "
                            ">= 0. Default: 0.", "S"),
    eval_every: str | None = _opt("--eval-every", EVAL, "Evaluate every N steps and at the "
                                  "end; integer >= 0, 0 = only at the end. Default: 50.", "N"),
    eval_max_batches: str | None = _opt("--eval-max-batches", EVAL, "Cap on batches per "
                                        "evaluation; integer >= 0, 0 = all. Default: 0.", "N"),
    patience: str | None = _opt("--patience", EVAL, "Stop after N evaluations without "
                                "improvement; integer >= 0, 0 = off. Default: 0.", "N"),
    min_delta: str | None = _opt("--min-delta", EVAL, "Smallest eval-loss decrease that counts "
                                 "as an improvement; >= 0. Default: 0.0.", "D"),
    sample_prompts: str | None = _opt("--sample-prompts", EVAL, "File of prompts generated at "
                                      "each evaluation: .txt one per line or .jsonl with a "
                                      "\"prompt\" field. Default: none.", "FILE"),
    sample_prompt: list[str] | None = _opt("--sample-prompt", EVAL, "A prompt generated at "
                                           "each evaluation (repeatable; \\n means a "
                                           "newline).", "TEXT"),
    sample_max_new_tokens: str | None = _opt("--sample-max-new-tokens", EVAL, "New tokens per "
                                             "sample generation; integer >= 1. Default: 48.",
                                             "N"),
    sample_temperature: str | None = _opt("--sample-temperature", EVAL, "Temperature of sample "
                                          "generations; >= 0, 0 = greedy. Default: 0.0.", "T"),
    save_every: str | None = _opt("--save-every", EVAL, "Write a resumable checkpoint every N "
                                  "steps; integer >= 0, 0 = at each evaluation. Default: 0.",
                                  "N"),
    device: str | None = _opt("--device", RUN, "auto (cuda, then mps, then cpu), cpu, cuda, "
                              "cuda:N or mps. Default: auto.", "DEVICE"),
    dtype: str | None = _opt("--dtype", RUN, "auto (bf16 autocast on capable CUDA, fp16 with "
                             "loss scaling on older CUDA, float32 on CPU), float32, bfloat16 "
                             "or float16. Default: auto.", "DTYPE"),
    name: str | None = _opt("--name", RUN, "Run name used in the default run directory "
                            "runs/<timestamp>-<name>. Default: none.", "NAME"),
    out: str | None = _opt("--out", RUN, "Run directory to create. Default: "
                           "runs/<timestamp>-<name>.", "DIR"),
    resume: str | None = _opt("--resume", RUN, "Continue the run in DIR from its last "
                              "checkpoint, with its stored settings (other flags may be given "
                              "only with the same values).", "DIR"),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", show_default=False,
                               rich_help_panel=RUN, help="No progress bar or eval lines; print "
                               "only the run directory at the end."),
) -> None:
    """Fine-tune a model with LoRA (or fully) and watch loss, eval loss and samples change.

    Every flag is a field of the run's config.json, so a run directory alone reproduces or
    resumes it. Ctrl-C once stops after the current step and saves a checkpoint; twice aborts.

    Examples:

        genlab train --model ./tiny --data stories.txt --max-steps 200 --sample-prompt "Once"

        genlab train --model gpt2 --data qa.jsonl --prompt-field q --completion-field a
        --rank 16 --target-modules c_attn --eval-every 20 --patience 3

        genlab train --resume runs/20250101-120000-stories
    """
    # Every parameter is None unless given, and named exactly like its TrainConfig field.
    given = {key: value for key, value in locals().items() if value is not None}
    is_quiet = bool(given.pop("quiet", False))
    out_dir = given.pop("out", None)
    resume_dir = given.pop("resume", None)
    typed = {key: value for key, value in given.items() if isinstance(value, str)}
    try:
        fields = parse_flags(given)
        config = (_resumed_config(resume_dir, fields, out_dir) if resume_dir is not None
                  else _new_config(fields, typed))
    except UsageError as err:
        fail(str(err))
    code = _run(config, out_dir=out_dir, resume_dir=resume_dir, quiet=is_quiet)
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------ flags -> config fields


def parse_flags(given: dict[str, Any]) -> dict[str, Any]:
    """Turn the given flags' strings into TrainConfig field values; raises ``UsageError``."""
    fields: dict[str, Any] = {}
    prompts = list(given.pop("sample_prompt", None) or [])
    prompts_file = given.pop("sample_prompts", None)
    for key, raw in given.items():
        fields[key] = _parse_value(key, raw)
    if prompts_file is not None or prompts:
        fields["sample_prompts"] = tuple(_load_prompts(prompts_file) + [_unescape(p)
                                                                         for p in prompts])
    return fields


def _parse_value(key: str, raw: Any) -> Any:
    flag = flag_for(key)
    if key in INT_FIELDS:
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"{flag} {raw}: must be an integer") from None
    if key in FLOAT_FIELDS:
        try:
            return float(raw)
        except ValueError:
            raise UsageError(f"{flag} {raw}: must be a number") from None
    if key == "betas":
        try:
            parts = tuple(float(p) for p in raw.split(","))
        except ValueError:
            parts = ()
        if len(parts) != 2:
            raise UsageError(f"{flag} {raw}: must be two numbers B1,B2 in [0, 1), "
                             "e.g. 0.9,0.999")
        return parts
    if key == "target_modules":
        names = tuple(n.strip() for n in raw.split(",") if n.strip())
        if not names:
            raise UsageError(f"{flag} {raw!r}: must name at least one module, e.g. q_proj,v_proj")
        return names
    if key == "doc_separator":
        return _unescape(raw)
    return raw


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _load_prompts(path: str | None) -> list[str]:
    if path is None:
        return []
    from genlab.core.generation.prompts import PromptFileError, load_prompts

    try:
        return load_prompts(path)
    except PromptFileError as err:
        raise UsageError(f"--sample-prompts {path}: {err}") from None


def config_error_line(err: Any, typed: dict[str, str] | None = None) -> str:
    """One line for a ``ConfigError``: the flag, the value (as typed) and the valid range."""
    flag = flag_for(err.field)
    if err.value in ("", None) and err.field in ("model", "data"):
        return f"{flag} is required: pass {err.expected}"
    value = (typed or {}).get(err.field, _show(err.value))
    return f"{flag} {value}: must be {err.expected}"


def _new_config(fields: dict[str, Any], typed: dict[str, str]) -> Any:
    from genlab.cli.sample_args import default_model
    from genlab.core.configs import ConfigError, TrainConfig

    if "model" not in fields:
        fields = {**fields, "model": default_model()}
    try:
        return TrainConfig(**fields)
    except ConfigError as err:
        raise UsageError(config_error_line(err, typed)) from None


def _resumed_config(resume_dir: str, fields: dict[str, Any], out_dir: str | None) -> Any:
    """The stored config of ``resume_dir``; every given flag must have its stored value."""
    from pathlib import Path

    if out_dir is not None and Path(out_dir).resolve() != Path(resume_dir).resolve():
        raise UsageError(f"--out {out_dir}: conflicts with --resume {resume_dir}; a resumed "
                         "run continues in its own directory, so drop --out")
    stored = _read_stored_config(resume_dir)
    stored_fields = stored.to_dict()
    for key, value in fields.items():
        mine = _comparable(key, value)
        if stored_fields.get(key) != mine:
            raise UsageError(f"{flag_for(key)} {_show(mine)}: conflicts with the resumed run "
                             f"({key}={_show(stored_fields.get(key))}); --resume continues a "
                             "run with its stored settings, so drop the flag or start a new run")
    return stored


def _comparable(key: str, value: Any) -> Any:
    """A flag value as config.json stores it: lists for tuples, local paths made absolute."""
    from pathlib import Path

    if isinstance(value, tuple):
        return list(value)
    if key in PATH_FIELDS and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def _read_stored_config(resume_dir: str) -> Any:
    from pathlib import Path

    from genlab.core.configs import ConfigError
    from genlab.core.training.run_dir import read_config

    if not (Path(resume_dir) / "config.json").is_file():
        raise UsageError(f"--resume {resume_dir}: not a genlab run directory (no config.json "
                         "there); pass the directory genlab train printed as its run dir")
    try:
        return read_config(resume_dir)
    except (OSError, ValueError, ConfigError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"--resume {resume_dir}: cannot read its config.json ({first})") from None


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------------- running


def _run(config: Any, *, out_dir: str | None, resume_dir: str | None, quiet: bool) -> int:
    """Drive ``iter_train``, render its events, and return the exit code."""
    from rich.console import Console

    from genlab.cli.train_progress import TrainProgress
    from genlab.core.events import RunFinished, StopToken
    from genlab.core.training.train import iter_train

    main_process = is_main_process()
    console = Console(stderr=True, quiet=not main_process)
    stop = StopToken()
    finished: RunFinished | None = None
    progress = TrainProgress(console, quiet=quiet or not main_process)
    # Resuming passes no config: the core continues with the run's stored one.
    events = iter_train(None if resume_dir else config, out_dir=out_dir, stop_token=stop,
                        resume_from=resume_dir)
    try:
        with StopOnSignals(stop, on_first=progress.stopping), progress:
            for event in events:
                progress.handle(event)
                if isinstance(event, RunFinished):
                    finished = event
    except KeyboardInterrupt:
        return _aborted(progress.run_dir, main_process)
    except Exception as err:
        known = _known_error(err, progress.step)
        if known is None:
            raise
        line, code = known
        if not main_process:  # every rank hits the same setup error; rank 0 says it once
            raise typer.Exit(code) from None
        fail(line, code=code)
    if finished is None:
        fail("training ended without a result (no RunFinished event)", code=EXIT_FAILED)
    if main_process:
        _print_outcome(finished, config, quiet)
    return exit_code(finished.status)


def exit_code(status: str) -> int:
    """The process exit code for a ``RunFinished.status``."""
    return {"completed": 0, "early-stopped": 0, "stopped": EXIT_STOPPED,
            "diverged": EXIT_DIVERGED}.get(status, EXIT_FAILED)


def _known_error(err: Exception, step: int) -> tuple[str, int] | None:
    """(one-line message, exit code) for errors users cause; None for bugs (traceback)."""
    from genlab.core.configs import ConfigError
    from genlab.core.data.packing import DataError
    from genlab.core.modeling.loading import ModelLoadError
    from genlab.core.training.train import TrainSetupError

    if isinstance(err, ConfigError):
        return config_error_line(err), USAGE_EXIT
    if isinstance(err, (DataError, ModelLoadError, TrainSetupError)):
        return " ".join(str(err).split()) or type(err).__name__, USAGE_EXIT
    if isinstance(err, (MemoryError, RuntimeError)) and "out of memory" in str(err).lower():
        return (f"out of memory at step {step}; try a smaller --batch-size (with --grad-accum "
                "to keep the effective batch) or --seq-len", EXIT_FAILED)
    return None


def _aborted(run_dir: str | None, main_process: bool) -> int:
    if main_process:
        if run_dir:
            print(f"genlab: aborted; continue from the last checkpoint with: "
                  f"genlab train --resume {_quote(run_dir)}", file=sys.stderr)
        else:
            print("genlab: aborted before training started", file=sys.stderr)
    return EXIT_STOPPED


def _print_outcome(finished: Any, config: Any, quiet: bool) -> None:
    from genlab.cli.train_progress import summary_lines

    prompt = config.sample_prompts[0] if config.sample_prompts else "Once upon a time"
    if quiet:
        print(finished.run_dir)
    else:
        print("\n".join(summary_lines(finished, model=config.model, method=config.method,
                                      prompt=prompt)))
    if finished.status == "stopped":
        print(f"genlab: stopped at step {finished.steps}; checkpoint saved. Continue with: "
              f"genlab train --resume {_quote(finished.run_dir)}", file=sys.stderr)
    elif finished.status == "diverged":
        advice = finished.message or (f"at step {finished.steps}; try a lower --lr, e.g. "
                                      f"{config.lr / 10:.3g}")
        if "--lr" not in advice:
            advice += f"; try a lower --lr, e.g. {config.lr / 10:.3g}"
        print(f"genlab: training diverged: {advice} (the saved weights are from the last "
              "good step)", file=sys.stderr)
    elif finished.status == "failed":
        print(f"genlab: training failed: {finished.message or 'see the run directory'}",
              file=sys.stderr)


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(str(path))


def is_main_process() -> bool:
    """False in the non-zero ranks of ``accelerate launch``/torchrun: only rank 0 renders.

    Reads the launcher's environment (``RANK``, as ``accelerate.PartialState`` does) rather
    than building accelerate state here, so the core keeps full control of its Accelerator.
    """
    return int(os.environ.get("RANK", "0") or 0) == 0


class StopOnSignals:
    """Ctrl-C/SIGTERM -> the core's stop token; a second signal aborts with KeyboardInterrupt.

    Args:
        stop: The token ``iter_train`` checks between steps.
        on_first: Called (in the signal handler: keep it tiny) after the first signal.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: Any, on_first: Callable[[], None] | None = None) -> None:
        self.stop = stop
        self.on_first = on_first
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def handle(self, signum: int, frame: Any = None) -> None:
        """First signal: ask the run to stop at the next step. Second: abort now."""
        if self.stop.stopped:
            raise KeyboardInterrupt
        self.stop.stop()
        if self.on_first is not None:
            self.on_first()
