"""``genlab compare``: run a compare spec (sampling settings side by side) and write a report.

Owns the command's flags and its rendering. The work is ``genlab.api.compare`` (the same
function a notebook calls): a progress bar on stderr while cells run, the output paths at the
end. A bad spec, an unusable ``--out`` or a missing model is one ``genlab: error:`` line with
exit code 2 before anything is written; Ctrl-C stops after the batch in flight (finished cells
are kept; rerun with the same ``--out`` to finish) with exit code 130.

Import-time cost is typer and the standard library only.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from genlab.cli import spec_common
from genlab.cli.common import EXIT_STOPPED, StopOnSignals
from genlab.cli.options import knob_command
from genlab.cli.runtime_options import runtime_options, spec_overrides

EPILOG = ("Spec format: docs/specs.md; examples: prompts/specs/. Exit codes: 0 done; 2 bad "
          "spec, --out or model (nothing written); 130 stopped by Ctrl-C (finished cells are "
          "kept: rerun with the same --out to finish).")


@knob_command(runtime_options(panel=spec_common.SPEC_PANEL))
def compare(
    knobs: dict[str, Any],
    spec: str = typer.Argument(..., metavar="SPEC", show_default=False,
                               help="A compare spec (.yaml), e.g. "
                                    "prompts/specs/temperature-top-k.yaml."),
    out: str | None = typer.Option(
        None, "--out", "-o", metavar="DIR", rich_help_panel=spec_common.OUTPUT_PANEL,
        help="Output directory (results.jsonl, report.md, report.html). Default: "
             "runs/compare-<timestamp>-<spec name>. An existing one of the same spec is "
             "resumed: finished cells are skipped."),
    model: str | None = spec_common.model_option(),
    set_: list[str] | None = spec_common.set_option(),
    check: bool = spec_common.check_option(),
    force: bool = spec_common.force_option(),
    quiet: bool = spec_common.quiet_option(),
) -> None:
    """Sample a model under every combination of a spec's settings and report side by side.

    Axes are crossed (every combination) or paired (zipped).
    Each cell generates the spec's samples for every prompt; sample i has the same seed in all.

    Examples:

        genlab compare prompts/specs/temperature-top-k.yaml

        genlab compare my.yaml --model ./tiny --set samples=1 --out runs/cmp

        genlab compare my.yaml --threads 1 --quantize int8
    """
    runtime = spec_overrides(knobs)  # --threads/--quantize: the spec's threads/quantize keys
    parsed = spec_common.load_or_fail(spec, [*(set_ or []), *runtime], model, "compare")
    if check:
        _print_plan(parsed)
        return
    _run(parsed, out, quiet, force)


def _print_plan(spec: Any) -> None:
    cells = spec.cells()
    print(f"{spec.source}: compare {spec.name!r}: {len(cells)} cells x {len(spec.prompts)} "
          f"prompts x {spec.samples} samples = {len(cells) * spec.rows_per_cell} generations "
          f"on {spec.model}")
    for cell in cells:
        print(f"  {cell.index:3d}  {cell.label}")


def _run(spec: Any, out: str | None, quiet: bool, force: bool = False) -> None:
    # torch-free --help: rich, the API and the core load only when the command runs
    from rich.console import Console

    from genlab.api import compare as run_compare
    from genlab.cli.compare_progress import CompareProgress
    from genlab.core.events import StopToken

    console = Console(stderr=True, quiet=quiet)
    stop = StopToken()
    view = CompareProgress(console)
    try:
        with StopOnSignals(stop, on_first=view.stopping), view:
            result = run_compare(spec, out, on_event=view.handle, stop_token=stop,
                                 force=force)
    except KeyboardInterrupt:
        print(f"genlab: aborted; finished cells are in {out or 'the output directory'}",
              file=sys.stderr)
        raise typer.Exit(EXIT_STOPPED) from None
    out_dir = result.out_dir
    if result.cancelled:
        print(f"genlab: stopped: {len(result.rows)} cells finished in {out_dir}; rerun with "
              f"--out {out_dir} to finish", file=sys.stderr)
        raise typer.Exit(EXIT_STOPPED)
    print(f"{result.out_dir}/results.jsonl ({len(result.rows)} cells)")
    print(result.report_path)
    print(result.html_path)
