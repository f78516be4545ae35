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
from pathlib import Path
from typing import Any

import typer

from genlab.cli import spec_common as common
from genlab.cli.errors import fail

EPILOG = ("Spec format: docs/specs.md; examples: prompts/specs/. Exit codes: 0 done; 2 bad "
          "spec, --out or model (nothing written); 130 stopped by Ctrl-C (finished cells are "
          "kept: rerun with the same --out to finish).")


def compare(
    spec: str = typer.Argument(..., metavar="SPEC", show_default=False,
                               help="A compare spec (.yaml), e.g. "
                                    "prompts/specs/temperature-top-k.yaml."),
    out: str | None = typer.Option(
        None, "--out", "-o", metavar="DIR", rich_help_panel=common.OUTPUT_PANEL,
        help="Output directory (results.jsonl, report.md, report.html). Default: "
             "runs/compare-<timestamp>-<spec name>. An existing one of the same spec is "
             "resumed: finished cells are skipped."),
    model: str | None = common.model_option(),
    set_: list[str] | None = common.set_option(),
    check: bool = common.check_option(),
    quiet: bool = common.quiet_option(),
) -> None:
    """Sample a model under every combination of a spec's settings and report side by side.

    Axes are crossed (every combination) or paired (zipped).
    Each cell generates the spec's samples for every prompt; sample i has the same seed in all.

    Examples:

        genlab compare prompts/specs/temperature-top-k.yaml

        genlab compare my.yaml --model ./tiny --set samples=1 --out runs/cmp
    """
    parsed = common.load_or_fail(spec, set_, model, "compare")
    if check:
        _print_plan(parsed)
        return
    from genlab.core.experiments.compare import prepare_compare

    out_dir, _ = common.prepare_or_fail(lambda: prepare_compare(parsed, out))
    _run(parsed, out_dir, quiet)


def _print_plan(spec: Any) -> None:
    cells = spec.cells()
    print(f"{spec.source}: compare {spec.name!r}: {len(cells)} cells x {len(spec.prompts)} "
          f"prompts x {spec.samples} samples = {len(cells) * spec.rows_per_cell} generations "
          f"on {spec.model}")
    for cell in cells:
        print(f"  {cell.index:3d}  {cell.label}")


def _run(spec: Any, out_dir: Path, quiet: bool) -> None:
    from rich.console import Console

    from genlab.api import compare as run_compare
    from genlab.cli.train_cmd import StopOnSignals
    from genlab.core.events import StopToken
    from genlab.core.modeling.loading import ModelLoadError

    console = Console(stderr=True, quiet=quiet)
    stop = StopToken()
    view = _Progress(console)
    try:
        with StopOnSignals(stop, on_first=view.stopping), view:
            result = run_compare(spec, out_dir, on_event=view.handle, stop_token=stop)
    except ModelLoadError as err:
        fail(str(err).splitlines()[0] if str(err) else "the model could not be loaded")
    except KeyboardInterrupt:
        print(f"genlab: aborted; finished cells are in {out_dir}", file=sys.stderr)
        raise typer.Exit(common.EXIT_STOPPED) from None
    if result.cancelled:
        print(f"genlab: stopped: {len(result.rows)} cells finished in {out_dir}; rerun with "
              f"--out {out_dir} to finish", file=sys.stderr)
        raise typer.Exit(common.EXIT_STOPPED)
    print(f"{result.out_dir}/results.jsonl ({len(result.rows)} cells)")
    print(result.report_path)
    print(result.html_path)


class _Progress:
    """Renders compare events: a progress bar of generations and a line per finished cell."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.console = console
        self.bar = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                            transient=True)
        self.task = None

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def stopping(self) -> None:
        self.console.print("genlab: stopping after the batch in flight (Ctrl-C again to "
                           "abort)", style="yellow", highlight=False)

    def handle(self, event: Any) -> None:
        name = type(event).__name__
        if name == "CompareStarted":
            self.console.print(f"{event.model} · {event.cells} cells ({event.done} already "
                               f"done) · {event.out_dir}", style="dim", markup=False,
                               highlight=False)
            self.task = self.bar.add_task("generating", total=max(1, event.rows))
        elif name == "RowFinished" and self.task is not None:
            self.bar.advance(self.task)
        elif name == "CellFinished":
            texts = [o["text"] for o in event.row.get("outputs", [])]
            first = (texts[0] if texts else "").replace("\n", " ")[:60]
            self.console.print(f"cell {event.index}: {event.label}  {first!r}", markup=False,
                               highlight=False)
