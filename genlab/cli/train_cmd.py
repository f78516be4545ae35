"""``genlab train``: fine-tune a LoRA adapter (or every weight) and watch it learn.

Owns the command's flow. Its flags are generated from ``TrainConfig``'s knobs (one flag per
field: ``--warmup-ratio`` is ``warmup_ratio``, with the field's range and default in the help),
parsed into one-line errors and validated by ``TrainConfig`` itself; ``--resume DIR`` reloads
a run's stored config instead. The core's ``iter_train`` does the work; this module renders
its events (``train_progress``), maps Ctrl-C/SIGTERM onto the core's stop token (first press:
checkpoint and stop; second: abort) and turns the outcome into an exit code:

    0 completed or early-stopped · 1 failed · 2 bad input · 3 diverged · 130 stopped

Every setup failure (bad flag, missing data, unknown target module, ...) is reported before a
run directory exists, as one ``genlab: error:`` line naming the flag.

The core (and torch) is imported inside the functions that run, never at module level, so
``genlab train --help`` is instant.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from genlab.assets import DEFAULT_MODEL_HELP
from genlab.cli import common
from genlab.cli.common import UsageError, config_error_line, fail
from genlab.cli.options import given, knob_command, knob_options, parse_knobs
from genlab.core.configs import ConfigError, TrainConfig
from genlab.core.configs.runtime import THREADS_DEFAULT
from genlab.core.configs.training import EVAL, RUN

EPILOG = (
    "Exit codes: 0 completed or early-stopped; 1 failed; 2 bad input (nothing written); "
    "3 diverged (loss became nan/inf: try a lower --lr); 130 stopped by Ctrl-C or SIGTERM "
    "after saving a checkpoint (continue with: genlab train --resume RUN_DIR)."
)
PATH_FIELDS = frozenset({"model", "data", "eval_data"})
DEFAULT_NOTES = {
    "model": DEFAULT_MODEL_HELP.removeprefix("Default: ").rstrip("."),
    "data": "required (unless --resume)",
    "max_steps": "from --epochs",
    "name": "none",
    "threads": THREADS_DEFAULT,
}
TRAIN_OPTIONS = knob_options(TrainConfig, default_notes=DEFAULT_NOTES)


@knob_command(TRAIN_OPTIONS)
def train(
    knobs: dict[str, Any],
    sample_prompts: str | None = typer.Option(
        None, "--sample-prompts", metavar="FILE", rich_help_panel=EVAL, show_default=False,
        help="File of prompts generated at each evaluation: .txt one per line or .jsonl with "
             "a \"prompt\" field. Default: none."),
    sample_prompt: list[str] | None = typer.Option(
        None, "--sample-prompt", metavar="TEXT", rich_help_panel=EVAL, show_default=False,
        help="A prompt generated at each evaluation (repeatable; \\n means a newline)."),
    out: str | None = typer.Option(
        None, "--out", metavar="DIR", rich_help_panel=RUN, show_default=False,
        help="Run directory to create (new or empty). Default: runs/<timestamp>-<name>."),
    force: bool = typer.Option(
        False, "--force", metavar="", show_default=False, rich_help_panel=RUN,
        help="Replace --out even when it holds files genlab did not write or another run "
             "(its contents are deleted first)."),
    resume: str | None = typer.Option(
        None, "--resume", metavar="DIR", rich_help_panel=RUN, show_default=False,
        help="Continue the run in DIR from its last checkpoint, with its stored settings "
             "(other flags may be given only with the same values)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", metavar="", show_default=False, rich_help_panel=RUN,
        help="No progress bar or eval lines; print only the run directory at the end."),
) -> None:
    """Fine-tune a model with LoRA (or fully) and watch loss, eval loss and samples change.

    Every flag is a field of the run's config.json, so a run directory alone reproduces or
    resumes it. Ctrl-C once stops after the current step and saves a checkpoint; twice aborts.

    Examples:

        genlab train --model ./tiny --data stories.txt --max-steps 200 --sample-prompt "Once"

        genlab train --model gpt2 --data qa.jsonl --prompt-field q --completion-field a \\
            --rank 16 --target-modules c_attn --eval-every 20 --patience 3

        genlab train --resume runs/20250101-120000-stories
    """
    raw = {**given(knobs), "sample_prompts": sample_prompts, "sample_prompt": sample_prompt}
    typed = {key: value for key, value in raw.items() if isinstance(value, str)}
    try:
        fields = parse_flags(raw)
        config = (resumed_config(resume, fields, out) if resume is not None
                  else new_config(fields, typed))
    except UsageError as err:
        fail(str(err))
    code = _run(config, out_dir=out, resume_dir=resume, quiet=quiet, force=force)
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------ flags -> config fields


def parse_flags(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn the given flags' values into TrainConfig field values; raises ``UsageError``."""
    raw = given(raw)
    prompts = [common.unescape(p) for p in raw.pop("sample_prompt", None) or []]
    prompts_file = raw.pop("sample_prompts", None)
    fields = parse_knobs(TrainConfig, raw)
    if "doc_separator" in fields:
        fields["doc_separator"] = common.unescape(fields["doc_separator"])
    if prompts_file is not None or prompts:
        fields["sample_prompts"] = tuple(_load_prompts(prompts_file) + prompts)
    return fields


def _load_prompts(path: str | None) -> list[str]:
    if path is None:
        return []
    # torch-free --help: the core's prompt reader is imported only when a file is given
    from genlab.core.generation.prompts import PromptFileError, load_prompts

    try:
        return load_prompts(path)
    except PromptFileError as err:
        raise UsageError(f"--sample-prompts {path}: {err}") from None


def new_config(fields: dict[str, Any], typed: dict[str, str] | None = None) -> TrainConfig:
    """A validated ``TrainConfig`` (the shipped model when ``--model`` is not given)."""
    if "model" not in fields:
        fields = {**fields, "model": common.default_model()}
    try:
        return TrainConfig(**fields)
    except ConfigError as err:
        raise UsageError(config_error_line(err, typed=typed)) from None


def resumed_config(resume_dir: str, fields: dict[str, Any], out_dir: str | None) -> TrainConfig:
    """The stored config of ``resume_dir``; every given flag must have its stored value."""
    # torch-free --help: the run-directory reader is imported only when resuming
    from genlab.core.training.train import TrainSetupError, read_resumable_config

    if out_dir is not None and Path(out_dir).resolve() != Path(resume_dir).resolve():
        raise UsageError(f"--out {out_dir}: conflicts with --resume {resume_dir}; a resumed "
                         "run continues in its own directory, so drop --out")
    try:
        stored = read_resumable_config(resume_dir)
    except TrainSetupError as err:
        raise UsageError(common.first_line(err)) from None
    stored_fields = stored.to_dict()
    for key, value in fields.items():
        mine = _comparable(key, value)
        if stored_fields.get(key) != mine:
            raise UsageError(f"{common.flag_for(key)} {_show(mine)}: conflicts with the "
                             f"resumed run ({key}={_show(stored_fields.get(key))}); --resume "
                             "continues a run with its stored settings, so drop the flag or "
                             "start a new run")
    return stored


def _comparable(key: str, value: Any) -> Any:
    """A flag value as config.json stores it: lists for tuples, local paths made absolute."""
    if isinstance(value, tuple):
        return list(value)
    if key in PATH_FIELDS and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------------- running


def _run(config: TrainConfig, *, out_dir: str | None, resume_dir: str | None,
         quiet: bool, force: bool = False) -> int:
    """Drive ``iter_train``, render its events, and return the exit code."""
    # torch-free --help: rich and the core load only when the command runs
    from rich.console import Console

    from genlab.cli.train_progress import TrainProgress
    from genlab.core.events import RunFinished, StopToken
    from genlab.core.training.train import iter_train

    main_process = common.is_main_process()
    console = Console(stderr=True, quiet=not main_process)
    stop = StopToken()
    finished: RunFinished | None = None
    progress = TrainProgress(console, quiet=quiet or not main_process)
    # Resuming passes no config: the core continues with the run's stored one.
    events = iter_train(None if resume_dir else config, out_dir=out_dir, stop_token=stop,
                        resume_from=resume_dir, force=force)
    try:
        with common.StopOnSignals(stop, on_first=progress.stopping), progress:
            for event in events:
                progress.handle(event)
                if isinstance(event, RunFinished):
                    finished = event
    except KeyboardInterrupt:
        return _aborted(progress.run_dir, main_process)
    except Exception as err:
        known = known_error(err, progress.step, progress.run_dir, "genlab train --resume")
        if not main_process:  # every rank hits the same error; rank 0 says it once
            raise typer.Exit(known[1] if known else common.EXIT_FAILED) from None
        if known is None:
            raise  # a bug: the error boundary says so (--debug shows the traceback)
        fail(*known)
    if finished is None:
        fail("training ended without a result (no RunFinished event)", code=common.EXIT_FAILED)
    if main_process:
        _print_outcome(finished, config, quiet)
    return common.exit_code(finished.status)


def known_error(err: Exception, step: int, run_dir: str | None = None,
                resume_command: str = "genlab train --resume") -> tuple[str, int] | None:
    """(one-line message, exit code) for an expected failure; None for a bug.

    Once the run directory exists, a failure (a full or read-only disk) is a runtime failure
    (exit 1) and the line says how to continue from the last checkpoint.
    """
    if isinstance(err, (MemoryError, RuntimeError)) and "out of memory" in str(err).lower():
        return (f"out of memory at step {step}; try a smaller --batch-size (with --grad-accum "
                "to keep the effective batch) or --seq-len", common.EXIT_FAILED)
    known = common.expected_error(err)
    if known is None:
        return None
    line, code = known
    if run_dir and step > 0:
        return (f"{line}; the run stopped at step {step}: fix that, then continue with "
                f"{resume_command} {shlex.quote(str(run_dir))}", common.EXIT_FAILED)
    return line, code


def _aborted(run_dir: str | None, main_process: bool) -> int:
    if main_process:
        if run_dir:
            print(f"genlab: aborted; continue from the last checkpoint with: "
                  f"genlab train --resume {shlex.quote(str(run_dir))}", file=sys.stderr)
        else:
            print("genlab: aborted before training started", file=sys.stderr)
    return common.EXIT_STOPPED


def _print_outcome(finished: Any, config: TrainConfig, quiet: bool) -> None:
    from genlab.cli.train_progress import summary_lines

    prompt = config.sample_prompts[0] if config.sample_prompts else "Once upon a time"
    if quiet:
        print(finished.run_dir)
    else:
        print("\n".join(summary_lines(finished, model=config.model, method=config.method,
                                      prompt=prompt)))
    run_dir = shlex.quote(str(finished.run_dir))
    if finished.status == "stopped":
        print(f"genlab: stopped at step {finished.steps}; checkpoint saved. Continue with: "
              f"genlab train --resume {run_dir}", file=sys.stderr)
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
