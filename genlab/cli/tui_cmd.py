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

import typer

from genlab.assets import DEFAULT_MODEL_HELP
from genlab.cli.common import UsageError, default_model, fail


def tui(
    model: str | None = typer.Option(
        None, "--model", "-m", metavar="ID|DIR",
        help="Base model: Hugging Face hub id or local directory. It loads in the background "
             "while the app is already usable. " + DEFAULT_MODEL_HELP),
    adapter: list[str] | None = typer.Option(
        None, "--adapter", metavar="NAME=DIR",
        help="LoRA adapter (a PEFT directory) offered in every column's model choice; "
             "repeatable."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
    runs_dir: str = typer.Option("runs", "--runs-dir", metavar="DIR",
                                 help="Where training runs are written and listed."),
) -> None:
    """Explore sampling and training side by side in an interactive terminal app.

    Keys: F1 help · F2 Sample · F3 Train · F4 Runs · F7 Experiments · Ctrl+R run · Esc stop ·
    Ctrl+Q quit.
    """
    # torch-free --help: the argument checks and the app load only when the command runs
    from genlab.cli.sample_args import parse_adapters

    try:
        chosen = model or default_model()  # the shipped model, checked before any paint
        adapters = parse_adapters(adapter or [])
    except UsageError as err:
        fail(str(err))

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see above)
    from genlab.tui.app import make_app

    make_app(model=chosen, adapters=adapters, device=device, dtype=dtype,
             runs_dir=runs_dir).run()
