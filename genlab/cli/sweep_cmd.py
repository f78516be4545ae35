"""``genlab sweep``: run a training sweep spec (grid, random or Bayesian search) and report it.

Owns the command's flags and its rendering. The work is ``genlab.api.sweep`` (the same function
a notebook calls): one line per finished trial and a live line per running trial on stderr,
the output paths at the end. A bad spec, an unusable ``--out`` or a missing model is one
``genlab: error:`` line with exit code 2 before anything is written. Ctrl-C stops the running
trials at their next step (they are not recorded and run again on resume); rerun with the same
``--out`` to continue.

Import-time cost is typer and the standard library only.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from genlab.cli import spec_common
from genlab.cli.common import EXIT_FAILED, EXIT_STOPPED, StopOnSignals
from genlab.cli.options import knob_command
from genlab.cli.runtime_options import runtime_options, spec_overrides

EPILOG = ("Spec format: docs/specs.md; examples: prompts/specs/. Exit codes: 0 done (diverged "
          "or pruned trials are results, not errors); 1 every trial failed; 2 bad spec, --out "
          "or model (nothing written); 130 stopped by Ctrl-C (rerun with the same --out to "
          "continue).")
STUDY_PANEL = "Study and workers"


@knob_command(runtime_options(
    ("threads",), panel=STUDY_PANEL,
    threads_default="1 per trial, so the numbers do not depend on --workers"))
def sweep(
    knobs: dict[str, Any],
    spec: str = typer.Argument(..., metavar="SPEC", show_default=False,
                               help="A sweep spec (.yaml), e.g. "
                                    "prompts/specs/learning-rate.yaml."),
    out: str | None = typer.Option(
        None, "--out", "-o", metavar="DIR", rich_help_panel=spec_common.OUTPUT_PANEL,
        help="Output directory (results.jsonl, trials/<n>/ run directories, report.md, "
             "report.html, study.db). Default: runs/sweep-<timestamp>-<spec name>. An existing "
             "one of the same spec is resumed: finished trials are kept."),
    storage: str | None = typer.Option(
        None, "--storage", metavar="URL", rich_help_panel=STUDY_PANEL,
        help="Optuna storage of the study, e.g. postgresql://user@host/db to share one study "
             "between machines. Default: sqlite:///<out>/study.db."),
    workers: int = typer.Option(
        1, "--workers", "-w", metavar="N", min=1, show_default=False,
        rich_help_panel=STUDY_PANEL,
        help="Local worker processes training trials in parallel; together they run exactly "
             "the spec's trial budget. Default: 1."),
    worker: bool = typer.Option(
        False, "--worker", metavar="", show_default=False, rich_help_panel=STUDY_PANEL,
        help="Join a running sweep as an extra worker (same SPEC, --out and --storage): run "
             "trials only; the first process retrains and reports."),
    model: str | None = spec_common.model_option(),
    set_: list[str] | None = spec_common.set_option(),
    check: bool = spec_common.check_option(),
    force: bool = spec_common.force_option(),
    quiet: bool = spec_common.quiet_option(),
) -> None:
    """Train a model under many hyperparameter settings and compare the runs.

    Each trial is a normal run directory (<out>/trials/<n>), listed by genlab tui's Runs screen.
    results.jsonl gets one row per trial as it finishes; the report sorts trials by the objective.
    It shows loss curves, the objective against each hyperparameter, and grid heatmaps.

    Examples:

        genlab sweep prompts/specs/learning-rate.yaml

        genlab sweep prompts/specs/lora-rank-alpha.yaml --workers 2 --out runs/rank

        genlab sweep my.yaml --model ./tiny --set base.max_steps=5 --set trials=2
    """
    runtime = spec_overrides(knobs, prefix="base.")  # --threads: the spec's base.threads
    parsed = spec_common.load_or_fail(spec, [*(set_ or []), *runtime], model, "sweep")
    if check:
        _print_plan(parsed)
        return
    code = _run(parsed, out, storage, workers, worker, quiet, force)
    if code:
        raise typer.Exit(code)


def _print_plan(spec: Any) -> None:
    dims = ", ".join(_describe_dim(d) for d in spec.search.dims)
    print(f"{spec.source}: sweep {spec.name!r}: method {spec.method}, {spec.trials} trials, "
          f"minimise {spec.objective}, on {spec.model}")
    print(f"  search: {dims}")
    if spec.method == "grid":
        for i, point in enumerate(spec.search.grid()[: spec.trials]):
            print(f"  {i:3d}  {spec_common.describe_params(point)}")
    if spec.retrain_best:
        print(f"  then retrain the best with {spec.retrain_overrides or 'the same settings'}")


def _describe_dim(dim: Any) -> str:
    if dim.is_range:
        scale = "log " if dim.log else ""
        return f"{dim.name} {scale}{dim.kind} [{dim.low:g}, {dim.high:g}]"
    return f"{dim.name} in {{{', '.join(spec_common.short(c) for c in dim.choices)}}}"


def _run(spec: Any, out: str | None, storage: str | None, workers: int, worker: bool,
         quiet: bool, force: bool = False) -> int:
    # torch-free --help: rich, the API and the core load only when the command runs
    from rich.console import Console

    from genlab.api import sweep as run_sweep
    from genlab.cli.sweep_progress import SweepProgress
    from genlab.core.events import StopToken

    console = Console(stderr=True, quiet=quiet)
    stop = StopToken()
    view = SweepProgress(console)
    try:
        with StopOnSignals(stop, on_first=view.stopping), view:
            result = run_sweep(spec, out, storage, workers, on_event=view.handle,
                               stop_token=stop, worker_only=worker, force=force)
    except KeyboardInterrupt:
        print(f"genlab: aborted; finished trials are in {view.out_dir or 'the output directory'}",
              file=sys.stderr)
        return EXIT_STOPPED
    out_dir = result.out_dir
    if result.stopped:
        print(f"genlab: stopped: {len(result.rows)} trials finished in {out_dir}; rerun with "
              f"--out {out_dir} to continue", file=sys.stderr)
        return EXIT_STOPPED
    print(f"{result.out_dir}/results.jsonl ({len(result.rows)} trials)")
    if result.report_path:
        print(result.report_path)
        print(result.html_path)
    if result.best_run_dir:
        print(f"best: {result.best_run_dir}")
    good = sum(v for k, v in result.counts.items() if k != "failed")
    return EXIT_FAILED if result.rows and not good else 0
