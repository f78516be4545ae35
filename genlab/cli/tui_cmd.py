"""``genlab tui``: the interactive terminal app (Sample, Train, Runs and Experiments screens).

Owns the command's flags and nothing else: it parses them, builds the app with
``genlab.tui.app.make_app`` and runs it. Import-time cost is typer and the standard library;
Textual is imported when the command runs and torch only later, in the app's background
worker, so the first frame paints before the model starts loading.

Before torch loads, the command asks OpenMP to let idle worker threads sleep
(``OMP_WAIT_POLICY=PASSIVE`` unless the user set it): the app runs model work in several
threads at once (sampling, training, an experiment) next to its own UI thread, and spinning
OpenMP threads then starve both. On a 2-core machine kept busy by other processes, one LoRA
step of the shipped model took 2.7 s with spinning threads and 0.4 s without.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from genlab.assets import DEFAULT_MODEL_HELP
from genlab.cli import common
from genlab.cli.common import UsageError, default_model, fail
from genlab.cli.options import knob_command
from genlab.cli.runtime_options import parse_runtime, runtime_options


@knob_command(runtime_options())
def tui(
    knobs: dict[str, Any],
    model: str | None = typer.Option(
        None, "--model", "-m", metavar="ID|DIR|GGUF",
        help="Base model: Hugging Face hub id, local directory, or a .gguf file (or a "
             "directory holding one). It loads in the background while the app is already "
             "usable. " + DEFAULT_MODEL_HELP),
    gguf_file: str | None = typer.Option(
        None, "--gguf-file", metavar="NAME",
        help="The .gguf file to load when --model is a directory holding several."),
    adapter: list[str] | None = typer.Option(
        None, "--adapter", metavar="NAME=DIR",
        help="LoRA adapter (a PEFT directory) offered in every column's model choice; "
             "repeatable."),
    device: str = typer.Option("auto", "--device",
                               help="auto, cpu, cuda, cuda:N or mps."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
    runs_dir: str = typer.Option("runs", "--runs-dir", metavar="DIR",
                                 help="Where training runs are written and listed."),
) -> None:
    """Explore sampling and training side by side in an interactive terminal app.

    Keys: F1 help · F2 Sample · F3 Train · F4 Runs · F7 Experiments · Ctrl+R run · Esc stop ·
    Ctrl+Q quit.
    """
    # torch-free --help: the argument checks and the app load only when the command runs
    from genlab.cli.sample_args import check_device, check_dtype, parse_adapters

    try:
        chosen = check_model(model)  # a missing local model, checked before any paint
        adapters = parse_adapters(adapter or [])
        device, dtype = check_device(device), check_dtype(dtype)
        check_runs_dir(runs_dir)
        runtime = parse_runtime(knobs)
        if gguf_file is not None:
            chosen = gguf_path(chosen, gguf_file)
    except UsageError as err:
        fail(str(err))

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see above)
    from genlab.tui.app import make_app

    if common.debug_enabled():  # the app's workers read it: tracebacks go to a log file
        os.environ[common.DEBUG_ENV] = "1"
    make_app(model=chosen, adapters=adapters, device=device, dtype=dtype,
             runs_dir=runs_dir, threads=runtime.threads, quantize=runtime.quantize,
             compile=runtime.compile).run()


def check_model(model: str | None) -> str:
    """The shipped model for None; a local path (``./x``, ``/x``, ``~/x``) must exist."""
    from genlab import assets

    if model is None:
        return default_model()
    try:
        return assets.resolve_model(model)
    except assets.ModelNotFound as err:
        raise UsageError(f"--model {model}: {err}; pass an existing model directory or a "
                         "Hugging Face hub id") from None


def check_runs_dir(runs_dir: str) -> None:
    """``--runs-dir`` must be a directory (created when the first run starts) genlab can write."""
    path = Path(runs_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--runs-dir {runs_dir}: is a file, not a directory; pass a directory "
                         "(it is created when the first run starts)")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"--runs-dir {runs_dir}: {existing} is a file, not a directory")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--runs-dir {runs_dir}: {existing} is not writable; pass a directory "
                         "you can write to")


def gguf_path(model: str, gguf_file: str) -> str:
    """``--model DIR --gguf-file NAME`` as the file's path (the TUI loads files by path)."""
    directory = Path(model).expanduser()
    if not directory.is_dir():
        raise UsageError(f"--gguf-file {gguf_file}: --model {model} is not a local directory; "
                         "pass the .gguf file's path as --model")
    path = directory / gguf_file
    if not path.is_file():
        raise UsageError(f"--gguf-file {gguf_file}: no such file in {model}")
    return str(path)
