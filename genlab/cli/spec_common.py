"""What ``genlab compare`` and ``genlab sweep`` share: spec options, loading, one-line errors.

Owns the ``--model``/``--set``/``--check``/``--force`` options of the spec commands and the
spec loading; every "nothing can run" problem (bad spec, unusable output directory, missing
model, unusable ``--storage``) is a ``GenlabError`` from the core, raised before any output
directory exists, which the CLI's error boundary prints as one line with exit code 2.
Imports only typer and the standard library at import time.
"""

from __future__ import annotations

from typing import Any

import typer

from genlab.cli.common import fail

SPEC_PANEL = "Spec"
OUTPUT_PANEL = "Output"


def set_option() -> Any:
    """The repeatable ``--set KEY.PATH=VALUE`` option."""
    return typer.Option(
        None, "--set", metavar="KEY=VALUE", rich_help_panel=SPEC_PANEL,
        help="Override one spec entry before validation; VALUE is YAML (repeatable), e.g. "
             "--set base.max_steps=5 --set trials=2 --set vars.facts=DIR.")


def model_option() -> Any:
    """The ``--model`` option (replaces the spec's model key)."""
    return typer.Option(
        None, "--model", "-m", metavar="ID|DIR", rich_help_panel=SPEC_PANEL,
        help="Model to use instead of the spec's model (default: genlab's shipped model).")


def check_option() -> Any:
    """The ``--check`` option: validate and show the plan, run nothing."""
    return typer.Option(
        False, "--check", metavar="", show_default=False, rich_help_panel=SPEC_PANEL,
        help="Validate the spec and print what would run; run nothing, write nothing.")


def force_option() -> Any:
    """The ``--force`` option: replace an ``--out`` that holds something else."""
    return typer.Option(
        False, "--force", metavar="", show_default=False, rich_help_panel=OUTPUT_PANEL,
        help="Replace --out even when it holds files genlab did not write, another kind of "
             "output or another spec's results (its contents are deleted first).")


def quiet_option() -> Any:
    """The ``--quiet`` option."""
    return typer.Option(False, "--quiet", "-q", metavar="", show_default=False,
                        rich_help_panel=OUTPUT_PANEL,
                        help="No progress on stderr; print only the output paths.")


def load_or_fail(path: str, overrides: list[str] | None, model: str | None, expect: str) -> Any:
    """Load and validate the spec; any problem exits 2 with one line."""
    from genlab.core.specs.common import SpecError
    from genlab.core.specs.loader import load_spec

    try:
        return load_spec(path, overrides=overrides or (), model=model, expect=expect)
    except SpecError as err:
        fail(str(err))


def short(value: Any) -> str:
    """Compact display of a parameter value."""
    # torch-free --help: only called while a command runs
    from genlab.core.generation.grid import format_value

    if isinstance(value, float):
        return f"{value:.4g}"
    return format_value(value)


def describe_params(params: dict[str, Any]) -> str:
    """``lr=0.001 rank=8`` (``model_shape.`` prefixes dropped)."""
    return " ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in params.items())
