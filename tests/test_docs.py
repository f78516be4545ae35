"""The command reference (docs/cli.md) is generated from the CLI itself and must stay current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
GENERATED_WITH_TYPER = "0.29.2"
"""docs/cli.md was generated with this typer; other versions format details differently."""
REGENERATE = ("docs/cli.md is stale: regenerate it with "
              "`python -m typer genlab.cli utils docs --name genlab --output docs/cli.md`")


def _commands_and_flags(text: str) -> tuple[list[str], set[str]]:
    """The command headings and every long option named in a generated reference."""
    headings = re.findall(r"^#+ `(genlab[^`]*)`", text, flags=re.M)
    option_names = re.findall(r"^\* `([^`]*)`", text, flags=re.M)  # "* `-t, --temp T`: ..."
    flags = {flag for names in option_names for flag in re.findall(r"--[a-z][a-z0-9-]*", names)}
    return headings, flags


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "genlab.cli", "utils", "docs", "--name", "genlab",
         "--output", str(out)],
        check=True, cwd=ROOT, capture_output=True,
    )
    generated = out.read_text(encoding="utf-8")
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    if typer.__version__ == GENERATED_WITH_TYPER:
        assert generated == committed, REGENERATE
    else:  # another typer renders metavars and spacing its own way: compare the substance
        assert _commands_and_flags(generated) == _commands_and_flags(committed), REGENERATE
    headings, flags = _commands_and_flags(committed)
    assert "genlab sample" in headings and "--temperature" in flags


def test_readme_names_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("sample", "train", "merge", "pretrain", "tui", "compare", "sweep", "report"):
        assert f"genlab {command}" in readme, command
