"""``genlab lr-find``: the learning-rate range test, rendered.

Owns the command's flow only. The flags are generated from the knobs: the ``TrainConfig``
fields that shape a step (model, data, LoRA variant, optimizer, batch, hardware; the schedule,
evaluation and run-length knobs do not apply) and ``LrFindConfig``'s sweep settings. The core's
``training.lr_find.iter_lr_find`` does the work; this module draws a bar with the current lr
and smoothed loss, then prints the suggestions and the paths of ``lr_find.png`` and
``lr_find.jsonl``. Exit codes: 0 done, 1 failed, 2 bad input (nothing written), 130 stopped.

The core (and torch) is imported inside the function that runs, so ``--help`` is instant.
"""

from __future__ import annotations

import shlex
from typing import Any

import typer

from genlab.assets import DEFAULT_MODEL_HELP
from genlab.cli import common
from genlab.cli.common import UsageError, config_error_line, fail
from genlab.cli.options import given, knob_command, knob_options, parse_knobs
from genlab.core.configs import ConfigError, LrFindConfig, TrainConfig
from genlab.core.configs.runtime import THREADS_DEFAULT
from genlab.core.configs.training import RUN

EPILOG = (
    "Output: OUT/lr_find.jsonl (one line per step: lr, loss, smoothed loss; then the result) "
    "and OUT/lr_find.png (loss against lr, suggestions marked); default OUT: "
    "runs/lr-find-<timestamp>-<name>. Exit codes: 0 done; 1 failed; 2 bad input (nothing "
    "written); 130 stopped by Ctrl-C (the curve so far is still written)."
)
STEP_FIELDS = ("model", "data", "text_field", "prompt_field", "completion_field",
               "doc_separator", "seq_len", "method", "rank", "alpha", "dropout",
               "target_modules", "rslora", "dora", "init", "rank_pattern", "alpha_pattern",
               "loraplus_ratio", "quantize", "optimizer", "momentum", "betas", "weight_decay",
               "max_grad_norm", "batch_size", "grad_accum", "seed", "device", "dtype",
               "threads", "fused_lora", "compile", "name")
"""The ``TrainConfig`` knobs that shape a step, the ones the range test takes."""
OPTIONS = [
    *knob_options(TrainConfig, include=STEP_FIELDS, default_notes={
        "model": DEFAULT_MODEL_HELP.removeprefix("Default: ").rstrip("."),
        "data": "required", "name": "the model's directory name",
        "threads": THREADS_DEFAULT}),
    *knob_options(LrFindConfig),
]
FIND_FIELDS = frozenset(f for f in LrFindConfig.__dataclass_fields__)


@knob_command(OPTIONS)
def lr_find(
    knobs: dict[str, Any],
    out: str | None = typer.Option(
        None, "--out", metavar="DIR", rich_help_panel=RUN, show_default=False,
        help="Output directory to create (absent or empty). Default: "
             "runs/lr-find-<timestamp>-<name>."),
    force: bool = typer.Option(
        False, "--force", metavar="", show_default=False, rich_help_panel=RUN,
        help="Replace --out even when it holds an earlier lr-find result or files genlab did "
             "not write (its contents are deleted first)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", metavar="", show_default=False, rich_help_panel=RUN,
        help="No progress bar; print only the suggested lr."),
) -> None:
    """Find a good learning rate: train briefly while the lr grows, watch where loss falls.

    The learning-rate range test (Smith 2015; fastai's lr_find): a copy of the start weights
    trains for --steps steps with the lr growing exponentially from --start-lr to --end-lr,
    stopping once the loss explodes. It prints the lr where the smoothed loss falls fastest
    (the suggestion) and the lr of its minimum / 10, and writes the curve as lr_find.png.
    Nothing is written to the model.

    Examples:

        genlab lr-find --data demo/facts/train.jsonl --prompt-field prompt \\
            --completion-field completion --seq-len 64

        genlab lr-find --model ./tiny --data stories.txt --dora --steps 200
    """
    raw = given(knobs)
    typed = {key: value for key, value in raw.items() if isinstance(value, str)}
    try:
        train_config, find_config = _configs(raw, typed)
    except UsageError as err:
        fail(str(err))
    code = _run(train_config, find_config, out, quiet, force)
    if code:
        raise typer.Exit(code)


def _configs(raw: dict[str, Any], typed: dict[str, str]) -> tuple[TrainConfig, LrFindConfig]:
    train_raw = {k: v for k, v in raw.items() if k not in FIND_FIELDS}
    find_raw = {k: v for k, v in raw.items() if k in FIND_FIELDS}
    fields = parse_knobs(TrainConfig, train_raw)
    if "doc_separator" in fields:
        fields["doc_separator"] = common.unescape(fields["doc_separator"])
    fields.setdefault("model", common.default_model())
    flags = {"num_steps": "--steps"}
    try:
        find = LrFindConfig(**parse_knobs(LrFindConfig, find_raw, flags))
    except ConfigError as err:
        raise UsageError(config_error_line(err, flags=flags, typed=typed)) from None
    try:
        return TrainConfig(**fields), find
    except ConfigError as err:
        raise UsageError(config_error_line(err, typed=typed)) from None


def _run(config: TrainConfig, find: LrFindConfig, out: str | None, quiet: bool,
         force: bool = False) -> int:
    # torch-free --help: rich and the core load only when the command runs
    from rich.console import Console

    from genlab.cli.lr_find_progress import LrFindProgress, result_lines
    from genlab.cli.train_cmd import known_error
    from genlab.core.events import LrFindFinished, StopToken
    from genlab.core.training.lr_find import iter_lr_find

    console = Console(stderr=True)
    stop = StopToken()
    progress = LrFindProgress(console, quiet=quiet, total=find.num_steps)
    finished = None
    try:
        with common.StopOnSignals(stop), progress:
            for event in iter_lr_find(config, find, out_dir=out, stop_token=stop, force=force):
                progress.handle(event)
                if isinstance(event, LrFindFinished):
                    finished = event
    except KeyboardInterrupt:
        print("genlab: aborted", flush=True)
        return common.EXIT_STOPPED
    except Exception as err:
        known = known_error(err, progress.step)
        if known is None:
            raise
        fail(*known)
    if finished is None:
        fail("lr-find ended without a result", code=common.EXIT_FAILED)
    if quiet:
        print(f"{finished.suggested_lr:.3g}" if finished.suggested_lr else "none")
    else:
        print("\n".join(result_lines(finished, shlex.quote(config.data))))
    return common.EXIT_STOPPED if finished.stop_reason == "stopped" else common.EXIT_OK
